"""Benchmarks run by ``teleconsult bench <name>``; see each module."""
