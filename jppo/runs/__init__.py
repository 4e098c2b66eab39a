"""Running experiments: experiment files, the chunked runner, checkpoints, results and progress.

Kept free of imports so `jppo.runs.devices` can set XLA flags before JAX starts.
"""
