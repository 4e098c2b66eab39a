"""`python -m jppo.bench`: the throughput benchmark."""

from jppo.bench.throughput import main

raise SystemExit(main())
