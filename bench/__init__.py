"""Benchmarks: one command each (see each module)."""
