#!/usr/bin/env bash
# GPU figures for the environment families on a bare machine with jax[cuda]:
# installs the carried wheels (gymnax, brax and what they import), then
#   MODE=bench  ENVS="..."   jppo bench at SEEDS for each env (JSON per env)
#   MODE=learn  TASKS="..."  experiments/learning_results.py at the GPU budgets
# Results go to $OUT (or ./gpu-out). The wheels, fetched beforehand on a
# machine with an index (cp312, manylinux):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     -d .whl-gpu gymnax==1.0.1 gymnasium==1.3.0 Farama-Notifications==0.0.6 brax==0.14.2 \
#     mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 mujoco-mjx==3.17.0 \
#     trimesh==5.2.0 ml_collections==1.1.0 jaxopt==0.8.5 glfw==2.11.0 PyOpenGL==3.1.10 \
#     tensorboardX==2.6.5
set -euo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
WHEELS=${WHEELS:-.whl-gpu}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$WHEELS"/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
case "${MODE:-bench}" in
  bench)
    for env in ${ENVS:-Breakout-MinAtar experiments.custom_env:make_env brax/inverted_pendulum}; do
      tag=$(echo "$env" | tr "/:." "___")
      python3 -m jppo.bench --env "$env" --seeds ${SEEDS:-1 64 1024 4096} ${BENCH_ARGS:-} \
        > "$OUT/bench_$tag.json"
      cat "$OUT/bench_$tag.json"
    done ;;
  learn)
    python3 experiments/learning_results.py --only ${TASKS:-Breakout-MinAtar brax/inverted_pendulum} \
      --json "$OUT/learning_gpu.json" ;;
esac
