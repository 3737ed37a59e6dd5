"""Benchmarks run by ``python -m backend bench NAME``; results go to docs/benchmarks.md."""
