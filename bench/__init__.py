"""Spool's benchmarks, B1..B7 (`make bench`; docs/benchmarks.md explains each and records the latest figures)."""
