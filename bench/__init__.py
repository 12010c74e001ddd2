"""Benchmarks of container start on Kuryr against Docker's bridge and kuryr-libnetwork.

Run as ``python -m bench`` (``make bench``) on the local stack; writes docs/benchmarks.md,
docs/benchmarks.json and bench/results/latest.json."""
