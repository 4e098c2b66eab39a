"""Benchmarks: throughput (`python -m jppo.bench`), per-phase profile, and the reference PPO."""
