"""What run.json records about where a run came from: the experiment, every
resolved config, the library versions, the platform and devices.

The benchmarks record the same `versions()` beside their figures.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import jax

from jppo import envs
from jppo.core.networks import resolve_torso_kind
from jppo.runs import faults, multihost, results, rundir
from jppo.runs.divergence_watch import STOPPED_EARLY
from jppo.runs.experiment import Experiment

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "gymnax", "chex", "numpy", "orbax-checkpoint",
             "pyarrow", "brax", "mujoco")


def versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def prepare_run_dir(out: Path, exp: Experiment, resume: bool, devices: Any = None) -> None:
    """Check the run directory (`rundir.prepare`) and write run.json from process 0;
    programs stopped by stop_when_diverged in an earlier session stay stopped."""
    info = results.jsonable({**run_info(exp), **rundir.resume_fields(exp, devices)})
    before = rundir.prepare(out, info, resume)
    if STOPPED_EARLY in before:
        info[STOPPED_EARLY] = before[STOPPED_EARLY]
    multihost.barrier("jppo: run directory checked")  # by every process, before the write
    if multihost.is_main():
        try:
            results.write_run_info(out, info)
        except OSError as error:
            raise faults.RunError(faults.describe(error, "write run.json")) from None


def run_info(exp: Experiment) -> dict[str, Any]:
    """What run.json records: the experiment, every resolved config, the torso kind
    each (variant, env) resolved to, the platform."""
    return {
        "name": exp.name,
        "envs": list(exp.envs),
        "seeds": exp.seeds,
        "first_seed": exp.first_seed,
        "baseline": exp.baseline_variant,
        "experiment": results.jsonable(exp.to_dict()),
        "variants": {
            name: {"overrides": results.jsonable(exp.variants[name]),
                   "config": results.jsonable(dataclasses.asdict(exp.variant_config(name)))}
            for name in exp.variants
        },
        "torso_kind": resolved_torso_kinds(exp),
        "versions": versions(),
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "process_count": jax.process_count(),
    }


def resolved_torso_kinds(exp: Experiment) -> dict[str, dict[str, str]]:
    """The encoder each variant gets on each env ("auto" resolved by the
    observation's shape): `{variant: {env: "mlp" | "cnn"}}`."""
    shapes = {env: envs.env_spec(*exp.make_env(env)).obs_shape for env in exp.envs}
    return {variant: {env: resolve_torso_kind(exp.variant_config(variant).torso_kind, shape)
                      for env, shape in shapes.items()}
            for variant in exp.variants}
