"""The job ledger: PostgreSQL tables and the functions that move jobs between states."""
