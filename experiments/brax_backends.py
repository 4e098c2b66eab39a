"""Env-steps/s of Brax's physics pipelines vs MuJoCo Playground (MJX) on this machine.

Each case is a jitted ``lax.scan`` rollout of ``--envs`` vmapped envs for
``--steps`` steps with uniform random actions in [-1, 1]; compile time is taken
once, then the rollout runs ``--repeats`` times and the median wall time gives
env-steps/s. "adapter" cases go through ``envs.make``'s whole stack (auto-reset
with a fresh reset drawn every step, final observation, episode statistics);
"raw" cases step the bare physics env, no reset, to show what the adapter costs.

    python experiments/brax_backends.py                        # every case
    python experiments/brax_backends.py --cases adapter-generalized raw-generalized

Playground cases need the `playground` package (not a jppo dependency); they are
skipped with a note when it is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax

from jppo import envs
from jppo.envs.brax import BraxEnv

BRAX_ENV = "inverted_pendulum"
PLAYGROUND_ENV = "CartpoleBalance"  # Playground has no inverted_pendulum; the same cart-pole


def adapter_rollout(env: Any, params: Any, num_envs: int, num_steps: int) -> Callable:
    """``key -> final obs`` of a scanned rollout through jppo's env stack."""
    action_dim = env.action_space(params).shape[0]

    def run(key: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, num_envs), params)

        def body(carry, step_key):
            state, _ = carry
            action_key, env_key = jax.random.split(step_key)
            action = jax.random.uniform(action_key, (num_envs, action_dim), minval=-1.0)
            obs, state, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(env_key, num_envs), state, action, params)
            return (state, obs), None

        (_, obs), _ = jax.lax.scan(body, (state, obs), jax.random.split(key, num_steps))
        return obs

    return run


def raw_rollout(raw_env: Any, num_envs: int, num_steps: int) -> Callable:
    """``key -> final obs`` of a scanned rollout of a bare brax-style env (no reset)."""

    def run(key: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(key)
        state = jax.vmap(raw_env.reset)(jax.random.split(reset_key, num_envs))

        def body(state, step_key):
            action = jax.random.uniform(step_key, (num_envs, raw_env.action_size), minval=-1.0)
            return jax.vmap(raw_env.step)(state, action), None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return state.obs

    return run


def timed(run: Callable, num_envs: int, num_steps: int, repeats: int) -> dict[str, Any]:
    """Compile once, then the median of ``repeats`` timed runs."""
    key = jax.random.PRNGKey(0)
    start = time.perf_counter()
    compiled = jax.jit(run).lower(key).compile()
    compile_s = time.perf_counter() - start
    seconds = []
    for i in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.PRNGKey(i + 1)))
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {"compile_s": round(compile_s, 2), "run_s": [round(s, 3) for s in seconds],
            "env_steps_per_s": round(num_envs * num_steps / median)}


def playground_env() -> Any:
    """Playground's cart-pole on MJX's JAX implementation (its default, warp, needs a GPU)."""
    from mujoco_playground import registry

    config = registry.get_default_config(PLAYGROUND_ENV)
    config.impl = "jax"
    return registry.load(PLAYGROUND_ENV, config=config)


def build(case: str, num_envs: int, num_steps: int) -> Callable:
    kind, backend = case.split("-", 1)
    if backend == "playground":
        raw = playground_env()
        if kind == "raw":
            return raw_rollout(raw, num_envs, num_steps)
        env = BraxEnv(raw, f"playground/{PLAYGROUND_ENV}", "mjx")
        return adapter_rollout(env, env.default_params, num_envs, num_steps)
    if kind == "raw":
        import brax.envs

        raw = brax.envs.get_environment(BRAX_ENV, backend=backend)
        return raw_rollout(raw, num_envs, num_steps)
    env, params = envs.make(f"brax/{BRAX_ENV}", backend=backend)
    return adapter_rollout(env, params, num_envs, num_steps)


CASES = ("adapter-generalized", "raw-generalized", "adapter-positional", "adapter-mjx",
         "raw-mjx", "adapter-playground", "raw-playground")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for case in args.cases:
        try:
            run = build(case, args.envs, args.steps)
        except ImportError as err:
            print(json.dumps({"case": case, "skipped": str(err)}), flush=True)
            continue
        result = timed(run, args.envs, args.steps, args.repeats)
        print(json.dumps({"case": case, "envs": args.envs, "steps": args.steps,
                          "device": jax.devices()[0].device_kind, **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
