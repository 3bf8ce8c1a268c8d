"""Diagnostic job types for operators and tests."""
