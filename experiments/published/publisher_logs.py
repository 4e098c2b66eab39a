"""What the publisher's own runs logged: the training curves inside its checkpoints.

gymnax-blines commits the result of each training run as a pickle,
`agents/<env>/{ppo, ppo0.001, ppo0.0001, es}.pkl`, holding the run's config and
the evaluation returns it logged while training (`log_steps`, `log_return`: each
the mean return of 164 episodes of the sampled policy). The published figures
(the gymnax README's "Ckpt (Return)" column, "PPO, ES" for classic control) are
single runs, so these logs say which run a figure comes from and how far apart
the publisher's own runs of one config end. Every version of every such file
in the repository's history is read (a checkpoint replaced later keeps its
earlier log in git).

    git clone https://github.com/RobertTLange/gymnax-blines /tmp/gymnax-blines
    python -m experiments.published.publisher_logs /tmp/gymnax-blines

writes `experiments/published/publisher_logs.json`, which the published-vs-jppo
table reads. The pickles also hold flax parameters and config objects of
packages jppo does not install; the reader builds only containers, numbers
and numpy arrays and replaces any other class by an inert mapping, so loading
runs no code from the file.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
LOGS_JSON = HERE / "publisher_logs.json"
CHECKPOINTS = ("ppo.pkl", "ppo0.001.pkl", "ppo0.0001.pkl", "es.pkl")
CONFIG_KEYS = ("train_type", "num_train_steps", "num_train_envs", "n_steps", "n_minibatch",
               "epoch_ppo", "lr_begin", "lr_end", "gamma", "entropy_coeff", "max_grad_norm",
               "network_name")
SAFE = {("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float",
                                   "str", "bytes", "bool", "complex")}
SAFE |= {("collections", "OrderedDict"), ("copyreg", "_reconstructor"),
         ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
         ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
         ("numpy._core.multiarray", "scalar")}


class Inert(dict):
    """Stands in for any class outside `SAFE`: keeps its state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        self["__state__"] = state


class DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE or module.startswith("numpy.dtypes"):
            return super().find_class(module, name)
        return Inert


def load(data: bytes) -> dict:
    return DataOnly(io.BytesIO(data)).load()


def summarize(run: dict) -> dict[str, Any]:
    """A run's config and where its logged evaluation return ended: the last
    evaluation, the mean of those in its last 10% of steps, and the best."""
    steps = [int(s) for s in run["log_steps"]]
    returns = [float(np.asarray(r)) for r in run["log_return"]]
    tail = [r for s, r in zip(steps, returns, strict=True) if s >= 0.9 * steps[-1]]
    config = run["train_config"]
    return {"config": {k: config[k] for k in CONFIG_KEYS if k in config},
            "evaluations": len(returns), "last_step": steps[-1],
            "final": round(returns[-1], 2), "last_10pct_mean": round(float(np.mean(tail)), 2),
            "best": round(max(returns), 2)}


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True,
                          capture_output=True).stdout


def versions(repo: Path, path: str) -> list[tuple[str, str]]:
    """(commit, date) of every commit that changed `path`, newest first."""
    out = git(repo, "log", "--format=%H %ad", "--date=short", "--", path).decode()
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def read_repository(repo: Path, envs: Sequence[str]) -> dict[str, list[dict]]:
    """Per env, every committed version of every checkpoint, summarized."""
    found: dict[str, list[dict]] = {}
    for env in envs:
        for name in CHECKPOINTS:
            path = f"agents/{env}/{name}"
            for commit, date in versions(repo, path):
                run = load(git(repo, "show", f"{commit}:{path}"))
                found.setdefault(env, []).append(
                    {"file": path, "commit": commit, "date": date, **summarize(run)})
    return found


def main(argv: Sequence[str] | None = None) -> int:
    from experiments.published.table import ROWS
    from jppo.runs.results import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="a clone of gymnax-blines")
    parser.add_argument("--out", type=Path, default=LOGS_JSON)
    args = parser.parse_args(argv)
    head = git(args.repo, "rev-parse", "HEAD").decode().strip()
    runs = read_repository(args.repo, [row.env for row in ROWS.values()])
    record = {"source": "https://github.com/RobertTLange/gymnax-blines", "commit": head,
              "measure": "log_return: mean return of 164 sampled-policy episodes per "
                         "evaluation, logged during training", "runs": runs}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    for env, found in runs.items():
        for run in found:
            print(f"{env:26s} {run['file'].split('/')[-1]:14s} {run['date']}  final "
                  f"{run['final']:8.1f}  last 10% {run['last_10pct_mean']:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
