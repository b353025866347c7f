"""Benchmarks that start the real server and real clients (see bench/README.md)."""
