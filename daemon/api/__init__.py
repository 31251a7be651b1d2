"""The EC2 Query API (see docs/api.md)."""
