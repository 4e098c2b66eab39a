"""`make bench`: throughput, compile time, memory and fraction of peak, as JSON.

Each seed count runs in its own process so that peak memory is that run's own
and one measurement cannot disturb the next. Throughput is env steps of the
compiled `train` (metrics on) divided by its wall time (best of two runs),
compile excluded. The largest seed count is measured again with
`diagnostics=False` to report what the diagnostics cost.

    python -m jppo.bench                      # 1, 16, 64 seeds on CartPole-v1
    python -m jppo.bench --seeds 1 64 1024    # other seed counts
    python -m jppo.bench --seeds 64 --devices 1 2   # seeds sharded over 1 vs 2 devices

`--devices N` shards the seed axis over the first N devices (a mesh with a
"seeds" axis); on a CPU the process is given N host devices with
`--xla_force_host_platform_device_count`.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from jppo import envs
from jppo.bench.children import child_environ
from jppo.bench.flops import flops_per_env_step, matmul_gflops
from jppo.bench.options import BenchOptions, parse
from jppo.core.config import PPOConfig, make_config
from jppo.core.train import make_train
from jppo.runs.experiment import parse_assignments
from jppo.runs.mesh import seed_keys, seed_mesh
from jppo.runs.provenance import versions

# Env steps per seed for each seed count: long enough (several seconds) that
# dispatch and warm-up are noise, short enough for a 2-core CPU.
DEFAULT_STEPS = {1: 500_000, 16: 131_072, 64: 65_536}


def measure(env_name: str, num_seeds: int, config: PPOConfig, devices: int = 1
            ) -> dict[str, Any]:
    """Compile and run `num_seeds` vmapped seeds, sharded over `devices`; report
    time and memory."""
    env, env_params = envs.make(env_name)
    trainer = make_train(config, env, env_params)
    sharding = NamedSharding(seed_mesh(devices), PartitionSpec("seeds"))
    keys = jax.device_put(seed_keys(num_seeds), sharding)
    start = time.perf_counter()
    program = jax.jit(jax.vmap(trainer), in_shardings=sharding, out_shardings=sharding)
    compiled = program.lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    run_seconds = min(_timed(compiled, keys) for _ in range(2))  # best of two: less noise
    env_steps = num_seeds * config.num_updates * config.batch_size
    memory = compiled.memory_analysis()
    program_bytes = None
    if memory is not None:
        program_bytes = int(memory.temp_size_in_bytes + memory.argument_size_in_bytes
                            + memory.output_size_in_bytes)
    flops = flops_per_env_step(config, trainer.spec)["total"]
    sps = env_steps / run_seconds
    return {
        "seeds": num_seeds,
        "devices": devices,
        "env_steps": env_steps,
        "env_steps_per_s": round(sps),
        "compile_s": round(compile_seconds, 2),
        "run_s": round(run_seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "program_mb": None if program_bytes is None else round(program_bytes / 2**20, 2),
        "network_gflop_per_s": round(sps * flops / 1e9, 2),
    }


def _timed(compiled: Any, keys: jax.Array) -> float:
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    return time.perf_counter() - start


def _measure_in_subprocess(env_name: str, seeds: int, steps: int, overrides: list[str],
                           devices: int = 1) -> dict:
    cmd = [sys.executable, "-m", "jppo.bench", "--one", str(seeds), "--env", env_name,
           "--steps", str(steps), "--devices", str(devices),
           *[arg for o in overrides for arg in ("--set", o)]]
    env = child_environ()
    if devices > 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark for {seeds} seeds failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
    }


def _versus_reference(options: BenchOptions, config: PPOConfig) -> int:
    from jppo.bench.versus import versus

    rows = []
    for seeds, devices in itertools.product(options.seeds, options.devices):
        row = versus(options.env, seeds, config, devices, options.pairs, options.seconds,
                     options.reference_devices)
        rows.append(row)
        print(f"# {seeds} seeds: jppo on {devices} device(s) {row['jppo_env_steps_per_s']:,} "
              f"vs reference on {row['reference_devices']} "
              f"{row['reference_env_steps_per_s']:,} env-steps/s, "
              f"ratio {row['ratio_median']}", file=sys.stderr, flush=True)
    print(json.dumps({"env": options.env, "machine": machine(), "versions": versions(),
                      "vs_reference": rows}, indent=2))
    return 0


STUDY_STEPS = 32_768  # env steps per run of a study, by default


def _study(options: BenchOptions, overrides: dict[str, Any]) -> int:
    from jppo.bench.study import study

    config = make_config(**{"total_timesteps": options.steps or STUDY_STEPS, **overrides})
    rows = []
    for seeds in options.seeds:
        row = study(options.env, config, options.study, seeds, options.rounds)
        rows.append(row)
        print(f"# study of {options.study} variants x {seeds} seeds: jppo "
              f"{row['jppo_wall_s_median']} s, reference once per variant "
              f"{row['reference_wall_s_median']} s, ratio {row['ratio_median']}",
              file=sys.stderr, flush=True)
    print(json.dumps({"env": options.env, "machine": machine(), "versions": versions(),
                      "study": rows}, indent=2))
    return 0


def _eval_cost(options: BenchOptions, overrides: dict[str, Any]) -> int:
    from jppo.bench.eval_cost import eval_cost

    rows = []
    for seeds in options.seeds:
        steps = options.steps or DEFAULT_STEPS.get(seeds, max(16_384, 4_194_304 // seeds))
        config = make_config(**{**overrides, "total_timesteps": steps})
        row = eval_cost(options.env, config, seeds, options.rounds)
        rows.append(row)
        print(f"# evaluation at {seeds} seeds ({row['evaluations']} evaluations): "
              f"{row['env_steps_per_s_on']:,} env-steps/s on, {row['env_steps_per_s_off']:,} "
              f"off, cost {row['cost_fraction_median']:.1%}", file=sys.stderr, flush=True)
    print(json.dumps({"env": options.env, "machine": machine(), "versions": versions(),
                      "eval_cost": rows}, indent=2))
    return 0


def _profile(options: BenchOptions, config: PPOConfig) -> int:
    from jppo.bench import profile

    peak = matmul_gflops()
    reports = [profile.with_bounds(profile.profile(config, options.env, seeds), peak)
               for seeds in options.seeds]
    print(json.dumps({"env": options.env, "machine": machine(), "matmul_gflop_per_s": peak,
                      "profiles": reports}, indent=2))
    print(f"\nmeasured fp32 matmul: {peak:.0f} GFLOP/s\n", file=sys.stderr)
    print(profile.markdown(reports), file=sys.stderr)
    if jax.default_backend() == "cpu":  # the trace names ops on CPU threads only
        trainer = make_train(config, *envs.make(options.env))
        seeds = max(options.seeds)
        print(f"\nslowest operations of the learn phase at {seeds} seeds (ms per update):",
              file=sys.stderr)
        for name, ms in profile.top_ops(trainer, seeds):
            print(f"  {ms:8.3f}  {name}", file=sys.stderr)
    return 0


def orthogonal_init_check(num_seeds: int, repeats: int = 5) -> dict[str, Any]:
    """Householder vs LAPACK orthogonal init of the default network's kernels,
    vmapped over `num_seeds`: compile and run time, and the largest difference.
    Not on CPU, where the vmapped LAPACK QR can deadlock (see jppo.core.networks)."""
    import flax.linen as nn

    from jppo.core.networks import householder_orthogonal

    if jax.default_backend() == "cpu":
        raise SystemExit("--init-check runs on accelerators only: vmapped LAPACK QR can "
                         "deadlock a CPU")
    shapes = [(4, 64), (64, 64), (64, 2), (4, 64), (64, 64), (64, 1)]
    keys = seed_keys(num_seeds)
    report: dict[str, Any] = {"seeds": num_seeds, "shapes": shapes}
    outputs = {}
    for name, init in (("householder", householder_orthogonal(1.0)),
                       ("lapack", nn.initializers.orthogonal(1.0))):
        def kernels(key, init=init):
            return [init(k, s) for k, s in zip(jax.random.split(key, len(shapes)), shapes,
                                                strict=True)]
        start = time.perf_counter()
        compiled = jax.jit(jax.vmap(kernels)).lower(keys).compile()
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            outputs[name] = jax.block_until_ready(compiled(keys))
            times.append(time.perf_counter() - start)
        report[name] = {"compile_s": round(compile_s, 3),
                        "run_ms_median": round(1e3 * sorted(times)[repeats // 2], 3)}
    report["max_abs_difference"] = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(outputs["householder"], outputs["lapack"], strict=True))
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m jppo.bench ARGS`."""
    return benchmark(parse(argv))


def benchmark(options: BenchOptions) -> int:
    """The benchmark the options ask for, its JSON on stdout; `jppo bench` calls this."""
    overrides = parse_assignments(options.set, "--set")
    if options.vs_reference:
        return _versus_reference(options, make_config(**overrides))
    if options.study:
        return _study(options, overrides)
    if options.eval_cost:
        return _eval_cost(options, overrides)
    if options.profile:
        return _profile(options, make_config(**overrides))
    if options.init_check:
        print(json.dumps(orthogonal_init_check(max(options.seeds)), indent=2))
        return 0
    if options.one is not None:
        config = make_config(**{**overrides, "total_timesteps": options.steps})
        print(json.dumps(measure(options.env, options.one, config, options.devices[0])))
        return 0
    print(json.dumps(_throughput(options, overrides), indent=2))
    return 0


def _throughput(options: BenchOptions, overrides: dict[str, Any]) -> dict[str, Any]:
    """Every (seeds, devices) pair in a fresh process, then the diagnostics' cost."""
    config = make_config(**overrides)
    spec = envs.env_spec(*envs.make(options.env))
    flops = flops_per_env_step(config, spec)
    peak = matmul_gflops()
    results = []
    for seeds, devices in itertools.product(options.seeds, options.devices):
        steps = options.steps or DEFAULT_STEPS.get(seeds, max(16_384, 4_194_304 // seeds))
        row = _measure_in_subprocess(options.env, seeds, steps, list(options.set), devices)
        row["fraction_of_matmul_peak"] = round(row["network_gflop_per_s"] / peak, 4)
        results.append(row)
        print(f"# {seeds} seeds on {devices} device(s): {row['env_steps_per_s']:,} env-steps/s",
              file=sys.stderr)
    return {
        "env": options.env,
        "config": {k: overrides[k] for k in sorted(overrides)} or "default PPOConfig",
        "machine": machine(),
        "versions": versions(),
        "matmul_fp32_gflop_per_s": round(peak, 1),
        "flops_per_env_step": flops,
        "results": results,
        "diagnostics_on_vs_off": _diagnostics_cost(options, results),
    }


def _diagnostics_cost(options: BenchOptions, results: list[dict[str, Any]]
                      ) -> dict[str, Any]:
    """The largest seed count again with the diagnostics off."""
    seeds = max(options.seeds)
    steps = options.steps or DEFAULT_STEPS.get(seeds, max(16_384, 4_194_304 // seeds))
    devices = options.devices[0]
    off = _measure_in_subprocess(options.env, seeds, steps, [*options.set, "diagnostics=False"],
                                 devices)
    on = next(r for r in results if r["seeds"] == seeds and r["devices"] == devices)
    return {
        "seeds": seeds,
        "env_steps_per_s_on": on["env_steps_per_s"],
        "env_steps_per_s_off": off["env_steps_per_s"],
        "cost_fraction": round(1.0 - on["env_steps_per_s"] / off["env_steps_per_s"], 4),
    }


if __name__ == "__main__":
    raise SystemExit(main())
