"""Accounts: users, their tokens, quotas and the audit log."""
