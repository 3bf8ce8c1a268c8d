"""The chaos battery: `make chaos` breaks a stack of its own under load, then checks the ledger."""
