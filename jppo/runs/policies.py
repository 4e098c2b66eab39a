"""Trained policies out of a run: `load_policy`, policy files, evaluation.

`load_policy(run_dir, variant=..., env=..., seed=...)` restores one run's
parameters and observation statistics from the run directory's latest
checkpoint; `load_policy(path)` reads a policy file written by
`Policy.save` (`jppo export`), which holds everything acting needs, so it
works without the run directory. Either way `policy.act(obs, key,
deterministic=True)` (feed-forward) or `policy.step(obs, key, carry, reset)`
(recurrent, from `policy.initial_carry(batch)`) acts through
`jppo.core.acting`, exactly as the in-run evaluation does.

A policy file is one msgpack blob (flax.serialization): `params`,
`obs_stats` (count, mean, m2) and `meta`, a JSON text with the network's
constructor fields, the env spec, the env (id, parameter overrides, reward
scale) and the evaluation settings.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import numbers
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jppo import envs
from jppo.core import acting
from jppo.core import normalize as norm
from jppo.core.networks import ActorCritic
from jppo.runs import checkpoint, results

FORMAT = "jppo-policy"
VERSION = 1
NETWORK_FIELDS = tuple(name for name in ActorCritic.__dataclass_fields__
                       if name not in ("parent", "name"))


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    """The env a policy was trained on, as the run made it."""

    name: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    reward_scale: float | None = None

    def make(self) -> tuple[Any, Any]:
        """The wrapped env and params (one object per description, so repeated
        evaluations reuse their compiled program)."""
        return _made_env(self.name, json.dumps(self.overrides, sort_keys=True),
                         self.reward_scale)


@functools.lru_cache(maxsize=8)
def _made_env(name: str, overrides: str, reward_scale: float | None) -> tuple[Any, Any]:
    return envs.make(name, reward_scale=reward_scale, **json.loads(overrides))


@dataclasses.dataclass(frozen=True)
class Policy:
    """One trained policy: `params` (the whole actor-critic), the observation
    statistics it normalizes with, and a pure, jittable `act`."""

    actor: acting.Actor
    inputs: acting.PolicyInputs
    spec: envs.EnvSpec
    env: EnvInfo
    eval_episodes: int
    eval_max_steps: int  # 0: the env's max_steps_in_episode
    source: dict[str, Any] = dataclasses.field(default_factory=dict)  # run, variant, seed

    @property
    def params(self) -> Any:
        return self.inputs.params

    @property
    def recurrent(self) -> bool:
        """Whether the policy carries state between steps (`policy_rnn` or
        `torso_rnn` > 0)."""
        return bool(self.actor.network.rnn_width("policy"))

    def act(self, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        """The action of a feed-forward policy for raw observations `obs` (any
        leading batch axes): normalized as in training, then the mode (or a
        sample). Pure: `jax.jit(policy.act, static_argnames="deterministic")`."""
        if self.recurrent:
            network = self.actor.network
            knob = "torso_rnn" if network.torso_rnn else "policy_rnn"
            raise ValueError(f"{knob}={network.rnn_width('policy')} makes this policy "
                             "recurrent: act has no state; allowed is policy.step(obs, key, "
                             "carry, reset) with carry = policy.initial_carry(batch)")
        self.batch_of(obs)
        return acting.act(self.actor, self.inputs, obs, key, deterministic)

    def batch_of(self, obs: Any) -> tuple[int, ...]:
        """The leading batch axes of `obs`; a one-line error for observations of
        another shape than the env's the policy was trained on."""
        shape, expected = tuple(jnp.shape(obs)), self.spec.obs_shape
        if shape[len(shape) - len(expected):] != expected or len(shape) < len(expected):
            raise ValueError(f"obs of shape {shape} is invalid for this policy: allowed is "
                             f"{self.env.name}'s observations, shape {expected}, with any "
                             "leading batch axes")
        return shape[:len(shape) - len(expected)]

    def check_carry(self, carry: Any, batch: tuple[int, ...]) -> None:
        """A one-line error unless `carry` has the structure and shapes of
        `initial_carry(batch)` (None for a feed-forward policy)."""
        expected = jax.eval_shape(lambda: self.initial_carry(batch))
        try:
            given = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)),
                                 carry)
            same = jax.tree.structure(given) == jax.tree.structure(expected) and all(
                a.shape == b.shape for a, b in zip(jax.tree.leaves(given),
                                                   jax.tree.leaves(expected), strict=True))
        except (TypeError, ValueError):
            same = False
        if not same:
            shapes = jax.tree.map(lambda x: x.shape, expected)
            raise ValueError(f"carry={_described(carry)} is invalid for this policy and batch "
                             f"{batch}: allowed is policy.initial_carry({batch}) (shapes "
                             f"{shapes}), then the carry step returned")

    def initial_carry(self, batch: int | tuple[int, ...]) -> Any:
        """The policy's state at an episode start for `batch` leading axes
        (None for a feed-forward policy)."""
        return acting.initial_carry(self.actor, batch)

    def step(self, obs: jax.Array, key: jax.Array, carry: Any, reset: jax.Array,
             deterministic: bool = True) -> tuple[jax.Array, Any]:
        """(action, next carry) for raw `obs` (leading batch axes), restarting the
        carry where `reset` (the observation begins an episode), exactly as the
        run's evaluation steps. Works for feed-forward policies too (carry None).
        Pure: `jax.jit(policy.step, static_argnames="deterministic")`."""
        self.check_carry(carry, self.batch_of(obs))
        action, _, _, carry = acting.act_step(self.actor, self.inputs, obs, key, deterministic,
                                              carry, jnp.asarray(reset, bool))
        return action, carry

    def evaluate(self, key: jax.Array, episodes: int | None = None, *,
                 deterministic: bool = True, env: Any = None) -> acting.EvalResult:
        """`episodes` (default: the run's eval_episodes) vmapped episodes on the
        run's env (or `env`, an env or `(env, env_params)`), as the run evaluated."""
        bare, params = (env if isinstance(env, tuple) else (env, None)) if env is not None \
            else self.env.make()
        wrapped, params = envs.wrap(bare, params)
        limit = acting.episode_limit(params, self.eval_max_steps)
        if limit is None:
            raise ValueError(f"env {self.env.name!r} has no max_steps_in_episode: allowed is "
                             "an env with one, or a policy with eval_max_steps set")
        if episodes is None:
            episodes = self.eval_episodes
        if isinstance(episodes, bool) or not isinstance(episodes, numbers.Integral) or episodes < 1:
            raise ValueError(f"episodes={episodes!r} is invalid: allowed is an integer >= 1, "
                             f"or None for the run's eval_episodes ({self.eval_episodes})")
        return _evaluate(self.actor, self.inputs, wrapped, params, key, int(episodes), limit,
                         deterministic)

    def save(self, path: str | Path) -> Path:
        """Write the self-contained policy file (atomically)."""
        meta = {"format": FORMAT, "version": VERSION,
                "network": {name: results.jsonable(getattr(self.actor.network, name))
                            for name in NETWORK_FIELDS},
                "obs_norm": self.actor.obs_norm,
                "spec": results.jsonable(dataclasses.asdict(self.spec)),
                "env": dataclasses.asdict(self.env), "eval_episodes": self.eval_episodes,
                "eval_max_steps": self.eval_max_steps, "source": self.source,
                "obs_clip": float(self.inputs.obs_clip)}
        stats = self.inputs.obs_stats
        blob = {"meta": json.dumps(meta, default=str),
                "params": jax.tree.map(np.asarray, self.inputs.params),
                "obs_stats": {"count": np.asarray(stats.count), "mean": np.asarray(stats.mean),
                              "m2": np.asarray(stats.m2)}}
        path = Path(path)
        results.atomic_write_bytes(path, serialization.msgpack_serialize(blob))
        return path


def _described(carry: Any) -> str:
    """A carry as shapes, not values (a carry of arrays would print their entries)."""
    if carry is None:
        return "None"
    try:
        return str(jax.tree.map(lambda x: tuple(jnp.shape(x)), carry))
    except (TypeError, ValueError):
        return type(carry).__name__


@functools.partial(jax.jit, static_argnames=("actor", "env", "episodes", "max_steps",
                                             "deterministic"))
def _evaluate(actor: acting.Actor, inputs: acting.PolicyInputs, env: Any, env_params: Any,
              key: jax.Array, episodes: int, max_steps: int, deterministic: bool
              ) -> acting.EvalResult:
    return acting.evaluate(actor, inputs, env, env_params, key, episodes, max_steps,
                           deterministic)


def _tuples(value: Any) -> Any:
    """Lists back to the tuples a frozen, hashable network or spec wants."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


# --------------------------------------------------------------- loading


def load_policy(source: str | Path, variant: str | None = None, env: str | None = None,
                seed: int | None = None) -> Policy:
    """A policy from a run directory (the latest checkpoint of `variant` on `env`,
    seed `seed`; defaults: the baseline variant, the first env, the first seed)
    or from a policy file (`jppo export`)."""
    path = Path(source)
    if path.is_file():
        if (variant, env, seed) != (None, None, None):
            raise ValueError(f"{path} is a policy file: variant, env and seed select a run "
                             "inside a run directory; allowed is load_policy(path) alone")
        return read_policy_file(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a run directory nor a policy file")
    seeds, policies = load_run_policies(path, variant, env)
    chosen = seeds[0] if seed is None else seed
    if chosen not in seeds:
        raise ValueError(f"seed={chosen!r} is invalid: the run has seeds {seeds}")
    return policies[seeds.index(chosen)]


def read_policy_file(path: str | Path) -> Policy:
    """The policy a `Policy.save` wrote; one-line errors for other files."""
    path = Path(path)
    try:
        blob = serialization.msgpack_restore(path.read_bytes())
        meta = json.loads(blob["meta"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a jppo policy file ({type(error).__name__})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path} is not a jppo policy file of version {VERSION} "
                         f"(format {meta.get('format')!r}, version {meta.get('version')!r})")
    spec = envs.EnvSpec(**{k: _tuples(v) for k, v in meta["spec"].items()})
    network = ActorCritic(**{k: _tuples(v) for k, v in meta["network"].items()})
    actor = acting.Actor(network, spec.discrete, acting.nvec_of(spec.action_nvec),
                         meta["obs_norm"])
    stats = norm.RunningStats(**{k: jnp.asarray(v) for k, v in blob["obs_stats"].items()})
    inputs = acting.PolicyInputs(jax.tree.map(jnp.asarray, blob["params"]), stats,
                                 jnp.asarray(meta["obs_clip"], jnp.float32))
    return Policy(actor, inputs, spec, EnvInfo(**meta["env"]), meta["eval_episodes"],
                  meta["eval_max_steps"], meta.get("source", {}))


def load_run_policies(run_dir: Path, variant: str | None, env: str | None
                      ) -> tuple[list[int], list[Policy]]:
    """Every seed's policy of one (variant, env) of a run directory, from one
    restore of its program's latest checkpoint."""
    from jppo.core.train import make_train
    from jppo.runs import experiment, planning

    info = results.read_run_info(run_dir)
    exp = experiment.from_dict(info["experiment"], source=str(run_dir / results.RUN_INFO))
    variant = variant if variant is not None else exp.baseline_variant
    env = env if env is not None else exp.envs[0]
    if variant not in exp.variants:
        raise ValueError(f"variant={variant!r} is invalid: the run has variants "
                         f"{list(exp.variants)}")
    if env not in exp.envs:
        raise ValueError(f"env={env!r} is invalid: the run has envs {list(exp.envs)}")
    program = next(p for p in planning.plan(exp) if p.env == env and variant in p.variants)
    bare, env_params = exp.make_env(env)
    trainer = make_train(program.config, bare, env_params)
    state = _restore_latest(run_dir, program, exp, trainer)
    first = program.variants.index(variant) * exp.seeds
    seeds = list(range(exp.first_seed, exp.first_seed + exp.seeds))
    config = exp.variant_config(variant)
    actor = acting.Actor(trainer.network, trainer.spec.discrete,
                         acting.nvec_of(trainer.spec.action_nvec), config.obs_norm)
    where = EnvInfo(env, dict(exp.env_params.get(env, {})), exp.reward_scale)
    policies = []
    for i, seed in enumerate(seeds):
        one = jax.tree.map(lambda x, i=i: x[first + i], state)
        inputs = acting.PolicyInputs(one.params, one.norm.obs,
                                     jnp.asarray(config.resolved("obs_clip"), jnp.float32))
        source = {"run": str(run_dir), "variant": variant, "env": env, "seed": seed,
                  "updates": int(one.update_count)}
        policies.append(Policy(actor, inputs, trainer.spec, where, config.eval_episodes,
                               config.eval_max_steps, source))
    return seeds, policies


def _restore_latest(run_dir: Path, program: Any, exp: Any, trainer: Any) -> Any:
    """The program's batched train state at its latest checkpoint, on one device."""
    from jppo.runs.mesh import seed_keys

    folder = Path(run_dir) / checkpoint.CHECKPOINTS_DIR / program.checkpoint_name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: the run has no checkpoint of "
                                f"{program.name} to load a policy from")
    runs = len(program.variants) * exp.seeds
    keys = jnp.tile(seed_keys(exp.seeds, exp.first_seed), (len(program.variants), 1))
    hparams = jax.tree.map(lambda x: jnp.repeat(x, exp.seeds, axis=0), program.hparams)
    shapes = jax.eval_shape(jax.vmap(trainer.init), keys, hparams)
    manager = checkpoint.manager(Path(run_dir).absolute(), program.checkpoint_name)
    try:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"{folder} holds no checkpoint to load a policy from")
        sharding = NamedSharding(Mesh(np.asarray(jax.devices()[:1]), ("seeds",)),
                                 PartitionSpec("seeds"))
        return jax.device_get(checkpoint.restore(manager, step, shapes, runs, sharding))
    finally:
        manager.close()


def format_evaluation(rows: list[tuple[int, np.ndarray, np.ndarray]]) -> str:
    """(seed, returns, lengths) per seed as a Markdown table, plus a mean row."""
    header = ["seed", "episodes", "mean return", "std", "min", "max", "mean length"]
    lines = [header]
    for seed, returns, lengths in rows:
        lines.append([str(seed), str(len(returns)), f"{np.mean(returns):.2f}",
                      f"{np.std(returns):.2f}", f"{np.min(returns):.2f}",
                      f"{np.max(returns):.2f}", f"{np.mean(lengths):.1f}"])
    if len(rows) > 1:
        means = [float(np.mean(r)) for _, r, _ in rows]
        lines.append(["all", str(sum(len(r) for _, r, _ in rows)),
                      f"{np.mean(means):.2f}", f"{np.std(means):.2f}", f"{np.min(means):.2f}",
                      f"{np.max(means):.2f}", f"{np.mean([np.mean(n) for *_, n in rows]):.1f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(cells) for cells in lines[1:])])
