"""The audit log: every verification, login, token and certificate event."""
