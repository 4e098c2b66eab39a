"""The `jppo` command: `jppo train` (one config, many seeds) and `jppo envs`."""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from jppo.config import CONFIG_FIELDS, make_config
from jppo.diagnostics import final_episode_return


def parse_assignments(items: Sequence[str], what: str) -> dict[str, Any]:
    """`["lr=3e-4", "value_hidden=(256,128)"]` -> dict, values read as Python literals
    (bare words stay strings)."""
    parsed: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{what} {item!r} is invalid: allowed is NAME=VALUE")
        try:
            parsed[name.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed[name.strip()] = text
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jppo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one config on many seeds at once")
    train.add_argument("--env", default="CartPole-v1", help="environment id (see `jppo envs`)")
    train.add_argument("--seeds", type=int, default=64, help="number of seeds run in parallel")
    train.add_argument("--first-seed", type=int, default=0)
    train.add_argument("--total-timesteps", type=float, default=None,
                       help="env steps per seed (default: the config's)")
    train.add_argument("--out", default=None, help="run directory for config, metrics, summary")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="FIELD=VALUE",
                       help=f"override a PPOConfig field; fields: {', '.join(CONFIG_FIELDS)}")
    train.add_argument("--env-param", dest="env_params", action="append", default=[],
                       metavar="FIELD=VALUE", help="override a gymnax EnvParams field")
    train.add_argument("--reward-scale", type=float, default=None,
                       help="multiply rewards (stress test for return scale)")
    train.add_argument("--chunk-updates", type=int, default=50,
                       help="updates per jitted chunk between progress lines")

    sub.add_parser("envs", help="list the environment ids")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "envs":
        import envs

        print("\n".join(envs.list_envs()))
        return 0
    try:
        overrides = parse_assignments(args.overrides, "--set")
        if args.total_timesteps is not None:
            overrides["total_timesteps"] = args.total_timesteps
        config = make_config(**overrides)
        env_overrides = parse_assignments(args.env_params, "--env-param")
        from jppo.runner import run

        print(f"jppo train: {args.env}, {args.seeds} seeds x {config.total_timesteps:,} steps, "
              f"{config.num_updates} updates")
        result = run(
            config, args.env, args.seeds, args.out,
            first_seed=args.first_seed, env_overrides=env_overrides,
            reward_scale=args.reward_scale, chunk_updates=args.chunk_updates,
        )
    except ValueError as error:
        print(f"jppo: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result.metrics, args.first_seed))
    print(f"compile {result.compile_seconds:.1f} s, run {result.run_seconds:.1f} s, "
          f"{result.steps_per_second:,.0f} env-steps/s "
          f"({result.env_steps:,} env steps over {args.seeds} seeds)")
    if args.out:
        print(f"results in {args.out}/ (config.json, metrics.npz, summary.json)")
    return 0


def format_summary(metrics: dict[str, np.ndarray], first_seed: int = 0, per_line: int = 8) -> str:
    """Per-seed final return (last 10% of updates) in a grid, then across-seed stats."""
    final = final_episode_return(metrics)
    ev = np.asarray(metrics["explained_variance"])[:, -1]
    lines = ["final episode return per seed (mean of episodes in the last 10% of updates):"]
    for start in range(0, len(final), per_line):
        block = final[start : start + per_line]
        row = " ".join(f"{x:8.1f}" for x in block)
        first, last = first_seed + start, first_seed + start + len(block) - 1
        lines.append(f"  seeds {first:>4}-{last:<4} {row}")
    lines.append(
        f"across {len(final)} seeds: mean {np.nanmean(final):.2f}  std {np.nanstd(final):.2f}  "
        f"min {np.nanmin(final):.2f}  median {np.nanmedian(final):.2f}  "
        f"max {np.nanmax(final):.2f}  | explained variance (last update) "
        f"mean {np.nanmean(ev):.3f}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
