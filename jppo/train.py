"""`make_train`: one PPO program from environment step to optimizer update.

`train(key, hparams)` is pure: `jax.jit(jax.vmap(train))(keys, hparams)` runs
many seeds (and a batched `HParams` runs a sweep) in one compiled program.
`init` and `update` are exposed so a host loop can run the very same update in
chunks.

Per update: a `lax.scan` rollout with the envs vmapped (only the policy runs
inside the scan); the critic then evaluates all observations and all final
observations in two batched calls, which also gives the truncation bootstrap
V(final observation) for free; GAE by reverse scan; `update_epochs` shuffled
passes of `num_minibatches` optimizer steps. Metrics are one scalar per update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from jppo import distributions, losses, strategies
from jppo import normalize as norm
from jppo.config import HParams, PPOConfig, validate_hparams
from jppo.gae import actor_critic_targets
from jppo.networks import ActorCritic, init_params, make_network, param_labels
from jppo.optim import group_norms, learning_rates_in_force, make_optimizer

Metrics = dict[str, jax.Array]


@struct.dataclass
class NormState:
    """Normalizer statistics; always carried (a few scalars) so that the state's
    structure does not depend on which normalizers are switched on."""

    obs: norm.RunningStats  # raw observations
    returns: norm.RunningStats  # discounted returns, for reward scaling
    running_return: jax.Array  # (num_envs,) discounted return so far
    targets: norm.RunningStats  # critic targets in head space, for the relative clip
    popart: norm.PopArtStats


@struct.dataclass
class TrainState:
    """Everything needed to continue training: a checkpoint is exactly this."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_count: jax.Array
    norm: NormState


@struct.dataclass
class TrainResult:
    state: TrainState
    metrics: Metrics  # each leaf (num_updates,), or (seeds, num_updates) under vmap


@struct.dataclass
class Transition:
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array


@struct.dataclass
class Batch:
    obs: jax.Array  # as the networks saw it (normalized if obs_norm)
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array  # V_old in return units
    advantage: jax.Array
    target: jax.Array  # critic target in return units


class Collected(NamedTuple):
    """One rollout and everything derived from it before optimization."""

    env_state: Any
    obs: jax.Array  # next observation to act on (raw)
    traj: Transition
    raw_obs: jax.Array  # (num_steps, num_envs, obs_dim) for observation statistics
    rewards: jax.Array  # as the learner sees them (scaled if reward_scaling)
    values: jax.Array
    advantages: jax.Array
    targets: jax.Array
    params: Any  # after PopArt's rescale of the value head
    norm: NormState


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Callable `train(key, hparams=None) -> TrainResult` plus its parts."""

    config: PPOConfig
    spec: envs.EnvSpec
    network: ActorCritic
    init: Callable[[jax.Array, HParams], TrainState]
    update: Callable[[TrainState, HParams], tuple[TrainState, Metrics]]
    run_updates: Callable[[TrainState, HParams, int], tuple[TrainState, Metrics]]
    # The update's parts, for profiling: rollout(state, hparams, key),
    # collect(state, hparams, key, critic_lambda), learn(state, collected, hparams, key)
    phases: Mapping[str, Callable[..., Any]] = dataclasses.field(
        default_factory=dict, hash=False, compare=False)

    def __call__(self, key: jax.Array, hparams: HParams | None = None) -> TrainResult:
        hparams = self.config.hparams() if hparams is None else hparams
        validate_hparams(hparams)
        state = self.init(key, hparams)
        state, metrics = self.run_updates(state, hparams, self.config.num_updates)
        return TrainResult(state=state, metrics=metrics)

    @property
    def num_updates(self) -> int:
        return self.config.num_updates


def make_train(config: PPOConfig, env: Any, env_params: Any) -> Trainer:
    """Build the pure train function for `config` on a wrapped env (see `envs.make`)."""
    config.validate()
    spec = envs.env_spec(env, env_params)
    network = make_network(config, spec.num_actions if spec.discrete else spec.action_dim,
                           spec.discrete)
    unroll = scan_unroll(config)
    chosen = strategies.of(config)
    target_kind = chosen.value_target
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset_envs = jax.vmap(env.reset, in_axes=(0, None))

    def policy(params: Any, obs: jax.Array) -> tuple[jax.Array, ...]:
        return network.apply(params, obs, method=ActorCritic.policy)

    def head(params: Any, obs: jax.Array) -> jax.Array:
        """The critic's prediction in head space (scalar; expected bin for HL-Gauss)."""
        out = network.apply(params, obs, method=ActorCritic.value)
        return chosen.value_loss.head.value(out, config)

    encode, decode = target_kind.encode, target_kind.decode

    def observe(obs: jax.Array, ns: NormState, hparams: HParams) -> jax.Array:
        return norm.normalize_obs(obs, ns.obs, hparams.obs_clip) if config.obs_norm else obs

    def init(key: jax.Array, hparams: HParams) -> TrainState:
        key, net_key, env_key = jax.random.split(key, 3)
        params = init_params(network, net_key, spec.obs_dim, hparams)
        opt_state = make_optimizer(config, hparams, params).init(params)
        obs, env_state = reset_envs(jax.random.split(env_key, config.num_envs), env_params)
        ns = NormState(
            obs=norm.update_stats(norm.init_stats((spec.obs_dim,)), obs),
            returns=norm.init_stats(),
            running_return=jnp.zeros((config.num_envs,), jnp.float32),
            targets=norm.init_stats(),
            popart=norm.init_popart(),
        )
        state = TrainState(params, opt_state, env_state, obs, key, jnp.zeros((), jnp.int32), ns)
        if config.value_pretrain_updates:
            state = pretrain_critic(state, hparams)
        return state

    def rollout(state: TrainState, hparams: HParams, key: jax.Array):
        """Act with the current policy; observations are stored as the networks saw them."""
        params, ns = state.params, state.norm

        def env_step(carry, step_key):
            env_state, obs = carry
            action_key, env_key = jax.random.split(step_key)
            seen = observe(obs, ns, hparams)
            dist = policy(params, seen)
            action = distributions.sample(action_key, dist, spec.discrete)
            log_prob = distributions.log_prob(dist, action, spec.discrete)
            next_obs, env_state, reward, terminated, truncated, info = step_envs(
                jax.random.split(env_key, config.num_envs), env_state, action, env_params
            )
            transition = Transition(
                seen, action, log_prob, reward.astype(jnp.float32),
                terminated, truncated, observe(info["final_observation"], ns, hparams),
            )
            return (env_state, next_obs), (transition, obs)

        keys = jax.random.split(key, config.num_steps)
        env_state = envs.reset_episode_totals(state.env_state)
        (env_state, obs), (traj, raw_obs) = jax.lax.scan(env_step, (env_state, state.obs), keys,
                                                         unroll=unroll)
        return env_state, obs, traj, raw_obs

    def learner_rewards(traj: Transition, ns: NormState, hparams: HParams):
        """Rewards as the learner sees them, and the updated return statistics."""
        if not config.reward_scaling:
            return traj.reward, ns
        done = jnp.logical_or(traj.terminated, traj.truncated)
        seen, final = norm.discounted_returns(traj.reward, done, ns.running_return,
                                              hparams.gamma)
        returns = norm.update_stats(ns.returns, seen)
        ns = ns.replace(returns=returns, running_return=final)
        return norm.scale_rewards(traj.reward, returns, hparams.reward_clip), ns

    def targets_of(params, traj: Transition, rewards, ns: NormState, hparams: HParams,
                   critic_lambda: jax.Array):
        values = decode(head(params, traj.obs), ns)
        next_values = decode(head(params, traj.final_obs), ns)
        advantages, targets = actor_critic_targets(
            rewards, values, next_values, traj.terminated, traj.truncated,
            hparams.gamma, hparams.gae_lambda, critic_lambda, unroll,
        )
        return values, advantages, targets

    def track_targets(params, ns: NormState, targets: jax.Array, hparams: HParams):
        """PopArt: move the target moments and rescale the value head to match."""
        return target_kind.track(params, ns, targets, hparams)

    def track_observations(ns: NormState, raw_obs: jax.Array) -> NormState:
        """Observation statistics move after the update, never during it, so the
        stored log-probabilities stay those of the policy that acted."""
        return ns.replace(obs=norm.update_stats(ns.obs, raw_obs)) if config.obs_norm else ns

    def flatten(batch: Batch) -> Batch:
        """(num_steps, num_envs, ...) -> (batch_size, ...)."""
        return jax.tree.map(lambda x: x.reshape((config.batch_size, *x.shape[2:])), batch)

    def value_loss_fn(params, mb: Batch, ns: NormState, hparams: HParams, loss_scale):
        """Value loss in head space (divided by `loss_scale`), and its clip fraction."""
        output = network.apply(params, mb.obs, method=ActorCritic.value)
        inputs = strategies.ValueLossInputs(
            output=output,
            pred=chosen.value_loss.head.value(output, config) / loss_scale,
            old=encode(mb.value, ns) / loss_scale,
            target=encode(mb.target, ns) / loss_scale,
            clip_eps=chosen.value_clip_mode.clip_eps(hparams.value_clip_eps, ns, loss_scale),
            hparams=hparams,
            config=config,
        )
        return chosen.value_loss.loss(inputs), chosen.value_loss.clip_fraction(inputs)

    def policy_loss_fn(params, mb: Batch, hparams: HParams, ent_coef):
        dist = policy(params, mb.obs)
        log_prob = distributions.log_prob(dist, mb.action, spec.discrete)
        entropy = jnp.mean(distributions.entropy(dist, spec.discrete))
        advantage = chosen.advantage_norm.minibatch(mb.advantage, hparams)
        policy_loss = losses.clipped_surrogate(log_prob, mb.log_prob, advantage, hparams.clip_eps)
        kl_k1, kl_k3 = losses.approx_kl(log_prob, mb.log_prob)
        stats = {
            "policy_loss": policy_loss,
            "entropy": entropy,
            "approx_kl": kl_k3,
            "approx_kl_k1": kl_k1,
            "clip_fraction": losses.clip_fraction(log_prob, mb.log_prob, hparams.clip_eps),
        }
        return policy_loss - ent_coef * entropy, stats

    def loss_fn(params, mb: Batch, ns: NormState, hparams: HParams, ent_coef, loss_scale):
        actor, stats = policy_loss_fn(params, mb, hparams, ent_coef)
        value_loss, value_clip = value_loss_fn(params, mb, ns, hparams, loss_scale)
        total = actor + hparams.vf_coef * value_loss
        return total, {**stats, "value_loss": value_loss, "value_clip_fraction": value_clip,
                       "total_loss": total}

    def term_norms_on_torso(params, mb, ns, hparams, ent_coef, loss_scale):
        """Norms of the policy-term and value-term gradients on the shared torso:
        the direct evidence of value dominance (seed report 000)."""
        actor_grads = jax.grad(lambda p: policy_loss_fn(p, mb, hparams, ent_coef)[0])(params)
        value_grads = jax.grad(
            lambda p: hparams.vf_coef * value_loss_fn(p, mb, ns, hparams, loss_scale)[0]
        )(params)
        return {"grad_norm_policy_term_torso": group_norms(actor_grads)["torso"],
                "grad_norm_value_term_torso": group_norms(value_grads)["torso"]}

    def optimize(state: TrainState, batch: Batch, ns: NormState, hparams: HParams,
                 key: jax.Array, ent_coef, loss_scale):
        params, opt_state = state.params, state.opt_state
        tx = make_optimizer(config, hparams, params)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        kl_limit = 1.5 * hparams.target_kl
        clip = chosen.grad_clip

        def minibatch_step(carry, mb: Batch):
            params, opt_state, stopped = carry
            (_, stats), grads = grad_fn(params, mb, ns, hparams, ent_coef, loss_scale)
            grad_norm = optax.tree.norm(grads)
            norms = group_norms(grads) if config.diagnostics or clip.needs_group_norms else {}
            clip_norm = clip.clip_norm(grad_norm, norms)  # the norm the clip acts on
            updates, new_opt_state = tx.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if config.kl_early_stop:
                # SB3 semantics: a minibatch whose KL already exceeds the limit is
                # not applied, and neither is anything after it in this update.
                stopped = jnp.logical_or(stopped, stats["approx_kl"] > kl_limit)
                new_params, new_opt_state = jax.tree.map(
                    lambda new, old: jnp.where(stopped, old, new),
                    (new_params, new_opt_state), (params, opt_state),
                )
            stats = {**stats, "grad_norm": grad_norm,
                     "grad_clip_ratio": clip_norm / hparams.max_grad_norm,
                     "grad_clipped": (clip_norm > hparams.max_grad_norm).astype(jnp.float32),
                     "steps_applied": 1.0 - stopped.astype(jnp.float32)}
            if config.diagnostics:
                stats.update({f"grad_norm_{g}": n for g, n in norms.items()})
            return (new_params, new_opt_state, stopped), stats

        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, config.batch_size)
            shuffled = jax.tree.map(
                lambda x: jnp.take(x, order, axis=0).reshape(
                    (config.num_minibatches, config.minibatch_size, *x.shape[1:])
                ),
                batch,
            )
            return jax.lax.scan(minibatch_step, carry, shuffled)

        keys = jax.random.split(key, config.update_epochs)
        carry = (params, opt_state, jnp.zeros((), bool))
        (params, opt_state, _), stats = jax.lax.scan(epoch, carry, keys)
        applied = stats.pop("steps_applied")
        summary = jax.tree.map(jnp.mean, stats)
        if config.diagnostics and config.torso_hidden:
            # Two extra backward passes, so measured once per update: on the first
            # minibatch, at the parameters the update starts from.
            first = jax.tree.map(lambda x: x[: config.minibatch_size], batch)
            summary.update(term_norms_on_torso(state.params, first, ns, hparams, ent_coef,
                                               loss_scale))
        summary["epochs_completed"] = jnp.sum(applied) / config.num_minibatches
        return params, opt_state, summary

    def entropy_coef(update_count: jax.Array, hparams: HParams) -> jax.Array:
        """ent_coef -> ent_coef_final over the updates, by the `ent_schedule` strategy."""
        steps = max(config.num_updates - 1, 1)
        return chosen.ent_schedule.make(hparams.ent_coef, hparams.ent_coef_final,
                                        steps)(update_count)

    def learn(state: TrainState, c: Collected, hparams: HParams, key: jax.Array):
        """The optimization phase of an update: `update_epochs` passes of minibatch steps."""
        advantages = chosen.advantage_norm.batch(c.advantages, hparams)
        loss_scale = target_kind.loss_scale(c.targets)
        batch = flatten(Batch(c.traj.obs, c.traj.action, c.traj.log_prob, c.values, advantages,
                              c.targets))
        ent_coef = entropy_coef(state.update_count, hparams)
        params, opt_state, stats = optimize(
            state.replace(params=c.params), batch, c.norm, hparams, key, ent_coef, loss_scale
        )
        return params, opt_state, {**stats, "ent_coef": ent_coef}

    def update(state: TrainState, hparams: HParams) -> tuple[TrainState, Metrics]:
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        c = collect(state, hparams, rollout_key, hparams.critic_lambda)
        params, opt_state, stats = learn(state, c, hparams, epoch_key)
        env_state, obs, ns = c.env_state, c.obs, c.norm
        values, targets = c.values, c.targets
        ns = track_observations(ns, c.raw_obs)
        update_count = state.update_count + 1
        metrics = {
            **stats,
            **_episode_metrics(env_state),
            **_rollout_metrics(values, targets, c.advantages, c.rewards),
            **{
                f"lr_{group}": lr
                for group, lr in learning_rates_in_force(
                    config, hparams, update_count * config.steps_per_update
                ).items()
            },
        }
        if config.diagnostics:
            metrics.update(_scale_metrics(values, targets, ns, config))
            if not spec.discrete:
                metrics["log_std_mean"] = jnp.mean(params["params"]["policy_log_std"])
        new_state = TrainState(params, opt_state, env_state, obs, key, update_count, ns)
        return new_state, metrics

    def collect(state: TrainState, hparams: HParams, key: jax.Array,
                critic_lambda: jax.Array) -> Collected:
        """What an update and a pretraining step share: act, turn rewards into
        learner rewards, compute advantages and targets, track target statistics
        (and PopArt's rescale of the value head)."""
        env_state, obs, traj, raw_obs = rollout(state, hparams, key)
        rewards, ns = learner_rewards(traj, state.norm, hparams)
        values, advantages, targets = targets_of(state.params, traj, rewards, ns, hparams,
                                                 critic_lambda)
        params, ns = track_targets(state.params, ns, targets, hparams)
        ns = ns.replace(targets=norm.update_stats(ns.targets, encode(targets, ns)))
        return Collected(env_state, obs, traj, raw_obs, rewards, values, advantages, targets,
                         params, ns)

    def pretrain_critic(state: TrainState, hparams: HParams) -> TrainState:
        """VC-PPO value pretraining: critic-only updates on rollouts of the initial
        policy with lambda = 1 targets. A separate Adam (discarded afterwards)
        touches only value-group parameters; the PPO optimizer starts fresh."""
        labels = param_labels(state.params)
        tx = optax.adam(hparams.value_lr, eps=hparams.adam_eps)

        def value_only(grads):
            return jax.tree.map(
                lambda g, label: g if label == "value" else jnp.zeros_like(g), grads, labels
            )

        def one(carry, _):
            state, opt_state = carry
            key, rollout_key = jax.random.split(state.key)
            c = collect(state, hparams, rollout_key, jnp.ones(()))
            batch = flatten(Batch(c.traj.obs, c.traj.action, c.traj.log_prob, c.values,
                                  c.advantages, c.targets))
            grads = jax.grad(lambda p: value_loss_fn(p, batch, c.norm, hparams,
                                                     jnp.ones(()))[0])(c.params)
            updates, opt_state = tx.update(value_only(grads), opt_state, c.params)
            params = optax.apply_updates(c.params, updates)
            return (state.replace(params=params, env_state=c.env_state, obs=c.obs, key=key,
                                  norm=track_observations(c.norm, c.raw_obs)), opt_state), None

        (state, _), _ = jax.lax.scan(one, (state, tx.init(state.params)), None,
                                     length=config.value_pretrain_updates)
        return state.replace(env_state=envs.reset_episode_totals(state.env_state))

    def run_updates(state: TrainState, hparams: HParams, num_updates: int):
        return jax.lax.scan(lambda s, _: update(s, hparams), state, None, length=num_updates)

    phases = {"rollout": rollout, "collect": collect, "learn": learn}
    return Trainer(config, spec, network, init, update, run_updates, phases)


def scan_unroll(config: PPOConfig) -> int:
    """Env steps per loop trip of the time scans. On a GPU every trip of a
    `while` loop costs launches and a host round trip for its predicate, which
    dominates small batches. H100, 1 seed: 97k env-steps/s at 1, 171k at 8,
    207k at 32; at 1024 seeds 8 and 32 are equal, and compile time is 12, 19
    and 45 s. On CPU unrolling measured no faster and compiles slower."""
    if config.scan_unroll:
        return min(config.scan_unroll, config.num_steps)
    return 1 if jax.default_backend() == "cpu" else min(8, config.num_steps)


def _episode_metrics(env_state: Any) -> Metrics:
    """Mean return/length of the episodes that finished in this update (NaN if none)."""
    return_sum, length_sum, count = envs.episode_totals(env_state)
    safe = jnp.maximum(count, 1)
    return {
        "episode_return": jnp.where(count > 0, return_sum / safe, jnp.nan),
        "episode_length": jnp.where(count > 0, length_sum / safe, jnp.nan),
        "episodes_finished": count.astype(jnp.float32),
    }


def _rollout_metrics(
    values: jax.Array, targets: jax.Array, advantages: jax.Array, rewards: jax.Array
) -> Metrics:
    return {
        "explained_variance": losses.explained_variance(values, targets),
        "value_mean": jnp.mean(values),
        "target_mean": jnp.mean(targets),
        "target_std": jnp.std(targets),
        "advantage_mean": jnp.mean(advantages),
        "advantage_std": jnp.std(advantages),
        "reward_mean": jnp.mean(rewards),
    }


def _scale_metrics(values: jax.Array, targets: jax.Array, ns: NormState,
                   config: PPOConfig) -> Metrics:
    target_sigma = strategies.of(config).value_target.sigma
    if target_sigma is not None:
        sigma = target_sigma(ns)
    elif config.reward_scaling:
        sigma = ns.returns.std
    else:
        sigma = jnp.ones(())
    return {
        "value_std": jnp.std(values),
        "target_abs_max": jnp.max(jnp.abs(targets)),
        "normalizer_sigma": sigma,
    }
