"""`python -m jppo.bench`: the throughput benchmark."""

import sys

from jppo.bench import children

if children.spawns_children(sys.argv[1:]):
    children.leave_accelerator_memory_to_children()

# JAX starts with this import, after the setting above.
from jppo.bench.throughput import main

raise SystemExit(main())
