"""Alembic migrations of the ledger and the domains' tables."""
