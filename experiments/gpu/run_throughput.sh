#!/usr/bin/env bash
# Throughput of every env family on one GPU (bare machine with jax[cuda]), with
# compile times: installs the carried wheels as run_families.sh does, then
#   CartPole-v1          jppo bench --vs-reference (jppo and the reference, alternating)
#   Breakout-MinAtar     jppo bench, MLP torso (torso_kind=mlp) and CNN torso
#   brax/inverted_pendulum  jppo bench (the physics family)
#   recurrent            jppo bench on CartPole-NoVelocity-v1 with one shared GRU of 128
#                        (torso_rnn) and the per-network cells
#   study                jppo bench --study 8 at 16 seeds (one program vs the reference per variant)
# at SEEDS (default 1 64 1024). Results go to $OUT (or ./gpu-out), one JSON per row.
# CPU smoke test at a tiny budget: SMOKE=1 WHEELS=none SEEDS="1 2" bash experiments/gpu/run_throughput.sh
set -euo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
WHEELS=${WHEELS:-.whl-gpu}
PY=${PY:-python3}
if [ "$WHEELS" != none ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
export PYTHONUNBUFFERED=1
$PY -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
SEEDS=${SEEDS:-1 64 1024}
if [ -n "${SMOKE:-}" ]; then  # a few updates per row: checks the script, measures nothing
  STEPS="--steps 2048"; VS="--pairs 1 --seconds 0.2"; STUDY="--steps 512 --rounds 1 --study 2"
  NET="--set num_envs=4 --set num_steps=16 --set update_epochs=1 --set num_minibatches=2"
  BRAX_NET="$NET"
else
  STEPS=""; VS="--pairs ${PAIRS:-3} --seconds ${SECONDS_PER:-2}"; STUDY="--study 8"; NET=""
  BRAX_NET="--set num_envs=16 --set num_steps=64"
fi
bench() {  # tag, then jppo bench arguments
  local tag=$1; shift
  echo "== $tag" >&2
  $PY -m jppo.bench "$@" > "$OUT/$tag.json" && tail -n 5 "$OUT/$tag.json"
}
RNN="--set torso_hidden=[128] --set policy_hidden=[128] --set value_hidden=[128] --set activation=relu"
bench cartpole_vs_reference --vs-reference --seeds $SEEDS $VS $NET
bench breakout_mlp --env Breakout-MinAtar --seeds $SEEDS $STEPS --set torso_kind=mlp $NET
bench breakout_cnn --env Breakout-MinAtar --seeds $SEEDS $STEPS --set torso_kind=cnn $NET
bench brax_inverted_pendulum --env brax/inverted_pendulum --seeds $SEEDS $STEPS $BRAX_NET
bench recurrent_shared_gru --env CartPole-NoVelocity-v1 --seeds $SEEDS $STEPS $RNN \
  --set torso_rnn=128 $NET
bench recurrent_per_network_gru --env CartPole-NoVelocity-v1 --seeds $SEEDS $STEPS $RNN \
  --set policy_rnn=128 --set value_rnn=128 $NET
bench study_8x16 --seeds 16 $STUDY $NET
