"""Benchmarks of Cordon's roles, runnable as scripts (``python benchmarks/edge_bench.py``)."""
