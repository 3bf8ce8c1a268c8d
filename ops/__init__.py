"""Operator commands behind `switchyard jobs` and `switchyard queues`: ledger reads and repairs."""
