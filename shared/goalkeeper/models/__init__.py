"""Pydantic models of the public API: events, goals, accounts."""
