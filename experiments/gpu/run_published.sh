#!/usr/bin/env bash
# The published rows (experiments/published/*.toml) on a GPU: one program per row,
# 16 seeds, the published budgets, MinAtar first (Breakout leads). Each row trains
# into $RUNS/ROW (checkpointed per chunk; RESUME=1 continues) and adds its record
# to $OUT/published_gpu.json (+ .md). Merge into the committed table with
#   python -m experiments.published.run --merge gpu-out/published_gpu.json
# Knobs: ROWS="breakout asterix ..." SEEDS=16 STEPS=(published) RESUME=1
#        PYTHON=python3 PUBLISHED_ARGS="--set eval_episodes=32"
# On a bare machine with jax[cuda], the carried wheels (cp312, manylinux) are
# installed first, fetched beforehand on a machine with an index:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     -d .whl-gpu gymnax==1.0.1 gymnasium==1.3.0 Farama-Notifications==0.0.6 \
#     rliable==1.2.0 arch==7.2.0 seaborn==0.13.2
# CPU test at a tiny budget (what the test suite's runner test does per row):
#   PYTHON=.venv/bin/python SEEDS=2 STEPS=16384 PUBLISHED_ARGS="--set eval_episodes=2" \
#     OUT=/tmp/gpu-out RUNS=/tmp/gpu-runs bash experiments/gpu/run_published.sh
set -euo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
RUNS=${RUNS:-/tmp/published-runs}
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl-gpu}
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    || echo "no nvidia-smi: not a GPU machine"; } | tee "$OUT/gpu.txt"
"$PYTHON" -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
"$PYTHON" -c "import gymnax, rliable, experiments.published.run" \
  || { echo "run_published: a module is missing (see above); carry the wheels in $WHEELS"; exit 1; }
ROWS=${ROWS:-breakout asterix freeway space_invaders cartpole acrobot pendulum mountaincar mountaincar_continuous}
for row in $ROWS; do
  start=$(date +%s)
  "$PYTHON" -m experiments.published.run --only "$row" --seeds "${SEEDS:-16}" \
    ${STEPS:+--steps "$STEPS"} ${RESUME:+--resume} --out-root "$RUNS" \
    --json "$OUT/published_gpu.json" --readme "$OUT/no-readme" ${PUBLISHED_ARGS:-} \
    > "$OUT/$row.log" 2>&1 || echo "run_published: $row failed (see $OUT/$row.log)"
  echo "$row: $(( $(date +%s) - start )) s"; tail -n 3 "$OUT/$row.log"
done
cat "$OUT/published_gpu.md" 2>/dev/null || true
