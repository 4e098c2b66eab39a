"""The learning phase of one recurrent update, compiled alone, A/B alternating.

Each program is `jppo.bench.profile.phase_programs(...)["learn"]` (the 16
minibatch steps of one update, 2 seeds vmapped) of a jppo package (`jppo`, or
an older copy named `jppo_before` on `--before-path`) at PureJaxRL's recurrent
architecture on CartPole-v1 plus the given knobs; the rounds alternate the
programs and the minimum and median ms per call are printed:

    python experiments/learn_phase_ab.py --before-path DIR "jppo_before:diagnostics=False" \\
        "jppo:diagnostics=False" "jppo:diagnostics=False;scan_unroll=8"
"""

from __future__ import annotations

import argparse
import ast
import importlib
import statistics
import sys
import time

import jax

from jppo import envs

ARCH = dict(torso_hidden=(128,), policy_hidden=(128,), value_hidden=(128,), activation="relu",
            torso_rnn=128, eval_every=0, total_timesteps=8192)


def learn_program(spec: str, seeds: int):
    """`package:field=value;...` -> (compiled learning phase, its arguments)."""
    package, _, fields = spec.partition(":")
    knobs = {name: ast.literal_eval(value) for name, value in
             (field.split("=", 1) for field in fields.split(";") if field)}
    jppo = importlib.import_module(package)
    profile = importlib.import_module(f"{package}.bench.profile")
    trainer = jppo.make_train(jppo.PPOConfig(**{**ARCH, **knobs}), *envs.make("CartPole-v1"))
    fn, args = profile.phase_programs(trainer, seeds)["learn"]
    return jax.jit(fn).lower(*args).compile(), args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("programs", nargs="+")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--before-path", default=None)
    args = parser.parse_args(argv)
    sys.path[:0] = [args.before_path] if args.before_path else []
    programs = {spec: learn_program(spec, args.seeds) for spec in args.programs}
    times: dict[str, list[float]] = {spec: [] for spec in programs}
    for _ in range(args.rounds):
        for spec, (compiled, inputs) in programs.items():
            jax.block_until_ready(compiled(*inputs))
            start = time.perf_counter()
            jax.block_until_ready(compiled(*inputs))
            times[spec].append(1e3 * (time.perf_counter() - start))
    for spec, ms in times.items():
        print(f"min {min(ms):7.1f}  median {statistics.median(ms):7.1f} ms  {spec}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
