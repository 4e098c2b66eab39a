"""Four value-loss variants x 16 seeds as ONE compiled program.

Rewards are scaled x100 so returns reach the thousands; the variants cross the
value coefficient (0.05 vs 1.0) with the absolute value clip (eps = 0.2, the
standard) vs effectively no clip (eps = 1e6). Both knobs are traced
hyperparameters, so the grid is a vmap axis, not four programs.

    python experiments/sweep_value_clip.py     # writes sweep_value_clip.md
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

import jppo
from jppo import envs
from jppo.analysis.metrics import final_episode_return

SEEDS = 16
REWARD_SCALE = 100.0


def main() -> None:
    env, env_params = envs.make("CartPole-v1", reward_scale=REWARD_SCALE)
    base = jppo.PPOConfig(total_timesteps=200_704)
    grid = jppo.sweep(base, vf_coef=[0.05, 1.0], value_clip_eps=[0.2, 1e6])
    keys, hparams = grid.tile(SEEDS)
    program = jax.jit(jax.vmap(jppo.make_train(base, env, env_params)))

    start = time.perf_counter()
    compiled = program.lower(keys, hparams).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(keys, hparams))
    run_s = time.perf_counter() - start

    metrics = grid.split(jax.device_get(result.metrics))
    steps = len(grid) * SEEDS * base.num_updates * base.batch_size
    lines = [
        f"`python experiments/sweep_value_clip.py`: CartPole-v1, rewards x{REWARD_SCALE:g}, "
        f"{len(grid)} variants x {SEEDS} seeds x {base.num_updates * base.batch_size:,} steps "
        f"in one program on {jax.device_count()} {jax.default_backend().upper()} device: "
        f"compile {compile_s:.1f} s, run {run_s:.1f} s ({steps / run_s:,.0f} env-steps/s).",
        "",
        "| vf_coef | value_clip_eps | final return (÷100) mean ± std | value-clip fraction "
        "| explained variance | grad clip ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i, setting in enumerate(grid.settings):
        m = {k: v[i] for k, v in metrics.items()}
        final = final_episode_return(m) / REWARD_SCALE
        last = slice(-max(1, base.num_updates // 10), None)
        lines.append(
            f"| {setting['vf_coef']:g} | {setting['value_clip_eps']:g} | "
            f"{final.mean():.1f} ± {final.std():.1f} | "
            f"{np.nanmean(m['value_clip_fraction'][:, last]):.3f} | "
            f"{np.nanmean(m['explained_variance'][:, last]):.3f} | "
            f"{np.nanmean(m['grad_clip_ratio'][:, last]):.1f} |"
        )
    text = "\n".join(lines) + "\n"
    (Path(__file__).parent / "sweep_value_clip.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
