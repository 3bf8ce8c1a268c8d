"""The work Switchyard does, one package per domain."""
