"""The training engine: config and knobs, networks, losses, strategies and the jitted train step.

Nothing here reads or writes files; `jppo.runs` drives it and `jppo.analysis` reads what it logs.
"""
