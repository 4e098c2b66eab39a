"""Host-side loop: the jitted update, run in chunks, with results on disk.

The runner never re-implements the math: it calls the trainer's `init` and
`run_updates` (the same scan `train` uses), vmapped over seeds, and between
chunks appends the chunk's metrics to the run directory with an atomic
replace, so a crash loses at most the chunk in flight.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jppo.config import HParams, PPOConfig, validate_hparams
from jppo.diagnostics import final_episode_return, summarize
from jppo.train import Trainer, TrainState, make_train

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "gymnax", "chex", "numpy")


@dataclasses.dataclass
class RunResult:
    metrics: dict[str, np.ndarray]  # each (seeds, updates)
    state: TrainState
    summary: dict[str, float]
    compile_seconds: float
    run_seconds: float
    env_steps: int

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / max(self.run_seconds, 1e-9)


def seed_keys(num_seeds: int, first_seed: int = 0) -> jax.Array:
    """Seed i's key is `PRNGKey(first_seed + i)`, so seed i of a batch equals a solo run."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(first_seed, first_seed + num_seeds))


def pick_chunk_size(num_updates: int, target: int) -> int:
    """The largest divisor of `num_updates` not above `target`, so one compiled
    chunk covers the run; falls back to `target` (one extra compile for the
    remainder) when the divisors are all tiny."""
    target = max(1, min(target, num_updates))
    divisor = max(d for d in range(1, target + 1) if num_updates % d == 0)
    return divisor if divisor * 4 >= target else target


def versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_metrics(path: Path, metrics: dict[str, np.ndarray]) -> None:
    """Metrics as a NumPy .npz: one `(seeds, updates)` float array per name."""
    buffer = io.BytesIO()
    np.savez(buffer, **metrics)
    atomic_write_bytes(path, buffer.getvalue())


def load_metrics(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(path)) as data:
        return {name: data[name] for name in data.files}


def run(
    config: PPOConfig,
    env_name: str,
    num_seeds: int,
    out_dir: str | Path | None = None,
    *,
    first_seed: int = 0,
    hparams: HParams | None = None,
    env_overrides: dict[str, Any] | None = None,
    reward_scale: float | None = None,
    chunk_updates: int = 50,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Train `num_seeds` seeds of `config` on `env_name`, chunk by chunk."""
    if not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"num_seeds={num_seeds!r} is invalid: allowed is an integer >= 1")
    hparams = config.hparams() if hparams is None else hparams
    validate_hparams(hparams)
    env, env_params = envs.make(env_name, reward_scale=reward_scale, **(env_overrides or {}))
    trainer = make_train(config, env, env_params)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _write_run_info(
            out, config, hparams, env_name, num_seeds, first_seed, env_overrides, reward_scale
        )

    keys = seed_keys(num_seeds, first_seed)
    chunk = pick_chunk_size(config.num_updates, chunk_updates)
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)))

    t0 = time.perf_counter()
    state = init(keys, hparams)
    runners = {chunk: _compile_chunk(trainer, state, hparams, chunk)}
    remainder = config.num_updates % chunk
    if remainder:
        runners[remainder] = _compile_chunk(trainer, state, hparams, remainder)
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - t0

    history: dict[str, list[np.ndarray]] = {}
    merged: dict[str, np.ndarray] = {}
    done, run_seconds = 0, 0.0
    steps_per_update = config.batch_size * num_seeds
    while done < config.num_updates:
        size = min(chunk, config.num_updates - done)
        t = time.perf_counter()
        state, metrics = runners[size](state, hparams)
        metrics = jax.device_get(metrics)
        run_seconds += time.perf_counter() - t
        done += size
        for name, values in metrics.items():
            history.setdefault(name, []).append(np.asarray(values))
        merged = {name: np.concatenate(parts, axis=1) for name, parts in history.items()}
        if out is not None:
            save_metrics(out / "metrics.npz", merged)
        if log is not None:
            log(_progress_line(done, config.num_updates, steps_per_update, run_seconds, merged))

    result = RunResult(
        metrics=merged,
        state=state,
        summary=summarize(merged),
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        env_steps=steps_per_update * config.num_updates,
    )
    if out is not None:
        summary = {
            **result.summary,
            "final_return_per_seed": final_episode_return(merged).tolist(),
            "env_steps_per_second": result.steps_per_second,
            "compile_seconds": compile_seconds,
            "run_seconds": run_seconds,
        }
        atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return result


def _compile_chunk(trainer: Trainer, state: TrainState, hparams: HParams, size: int):
    def chunk(state: TrainState, hparams: HParams):
        return trainer.run_updates(state, hparams, size)

    batched = jax.vmap(chunk, in_axes=(0, None))
    return jax.jit(batched, donate_argnums=0).lower(state, hparams).compile()


def _progress_line(
    done: int, total: int, steps_per_update: int, seconds: float, metrics: dict[str, np.ndarray]
) -> str:
    recent = final_episode_return(metrics, fraction=0.05)
    steps = done * steps_per_update
    return (
        f"update {done:>6}/{total}  env-steps {steps:>12,}  "
        f"{steps / max(seconds, 1e-9):>11,.0f} steps/s  "
        f"recent return {np.nanmean(recent):9.2f}"
    )


def _write_run_info(
    out: Path,
    config: PPOConfig,
    hparams: HParams,
    env_name: str,
    num_seeds: int,
    first_seed: int,
    env_overrides: dict[str, Any] | None,
    reward_scale: float | None,
) -> None:
    info = {
        "env": env_name,
        "env_overrides": env_overrides or {},
        "reward_scale": reward_scale,
        "num_seeds": num_seeds,
        "first_seed": first_seed,
        "config": dataclasses.asdict(config),
        "hparams": {k: np.asarray(v).tolist() for k, v in dataclasses.asdict(hparams).items()},
        "versions": versions(),
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
    }
    atomic_write_bytes(out / "config.json", json.dumps(info, indent=2).encode())
