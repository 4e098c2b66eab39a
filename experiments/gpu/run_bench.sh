#!/usr/bin/env bash
# GPU benchmark on a bare machine with jax[cuda]: installs the carried wheels
# (gymnax and its pure-Python needs), then runs jppo bench --vs-reference over
# SEEDS and the orthogonal-initializer check. Results go to $OUT (or ./gpu-out).
# The wheels, fetched beforehand on a machine with an index:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     -d .whl gymnax==1.0.1 gymnasium==1.3.0 Farama-Notifications==0.0.6
set -euo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
SEEDS=${SEEDS:-1 64 1024 4096 16384}
python3 -m jppo.bench --init-check --seeds 4096 > "$OUT/init_check.json" || true
cat "$OUT/init_check.json"
python3 -m jppo.bench --vs-reference --seeds $SEEDS --pairs "${PAIRS:-3}" \
  --seconds "${SECONDS_PER:-2}" ${BENCH_ARGS:-} > "$OUT/${TAG:-vs_reference}.json"
cat "$OUT/${TAG:-vs_reference}.json"
