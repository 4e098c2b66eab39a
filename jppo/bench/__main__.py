"""`python -m jppo.bench`: the throughput benchmark."""

import sys

from jppo.bench import children
from jppo.bench.options import parse

options = parse(sys.argv[1:])  # no JAX yet: tyro only
if options.spawns_children():
    children.leave_accelerator_memory_to_children()

# JAX starts with this import, after the setting above.
from jppo.bench.throughput import benchmark  # noqa: E402

raise SystemExit(benchmark(options))
