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
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from jppo import distributions, losses
from jppo.config import HParams, PPOConfig, validate_hparams
from jppo.gae import actor_critic_targets
from jppo.networks import ActorCritic, init_params, make_network
from jppo.optim import learning_rates_in_force, make_optimizer

Metrics = dict[str, jax.Array]


@struct.dataclass
class TrainState:
    """Everything needed to continue training: a checkpoint is exactly this."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_count: jax.Array


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
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Callable `train(key, hparams=None) -> TrainResult` plus its parts."""

    config: PPOConfig
    spec: envs.EnvSpec
    network: ActorCritic
    init: Callable[[jax.Array, HParams], TrainState]
    update: Callable[[TrainState, HParams], tuple[TrainState, Metrics]]
    run_updates: Callable[[TrainState, HParams, int], tuple[TrainState, Metrics]]

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
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset_envs = jax.vmap(env.reset, in_axes=(0, None))

    def policy(params: Any, obs: jax.Array) -> tuple[jax.Array, ...]:
        return network.apply(params, obs, method=ActorCritic.policy)

    def value(params: Any, obs: jax.Array) -> jax.Array:
        return network.apply(params, obs, method=ActorCritic.value)

    def init(key: jax.Array, hparams: HParams) -> TrainState:
        key, net_key, env_key = jax.random.split(key, 3)
        params = init_params(network, net_key, spec.obs_dim, hparams)
        opt_state = make_optimizer(config, hparams, params).init(params)
        obs, env_state = reset_envs(jax.random.split(env_key, config.num_envs), env_params)
        return TrainState(params, opt_state, env_state, obs, key, jnp.zeros((), jnp.int32))

    def rollout(params: Any, env_state: Any, obs: jax.Array, key: jax.Array):
        def env_step(carry, step_key):
            env_state, obs = carry
            action_key, env_key = jax.random.split(step_key)
            dist = policy(params, obs)
            action = distributions.sample(action_key, dist, spec.discrete)
            log_prob = distributions.log_prob(dist, action, spec.discrete)
            next_obs, env_state, reward, terminated, truncated, info = step_envs(
                jax.random.split(env_key, config.num_envs), env_state, action, env_params
            )
            transition = Transition(
                obs, action, log_prob, reward.astype(jnp.float32),
                terminated, truncated, info["final_observation"],
            )
            return (env_state, next_obs), transition

        keys = jax.random.split(key, config.num_steps)
        return jax.lax.scan(env_step, (env_state, obs), keys)

    def loss_fn(params: Any, mb: Batch, hparams: HParams):
        dist = policy(params, mb.obs)
        new_value = value(params, mb.obs)
        log_prob = distributions.log_prob(dist, mb.action, spec.discrete)
        entropy = jnp.mean(distributions.entropy(dist, spec.discrete))
        advantage = losses.normalize(mb.advantage) if config.normalize_advantages else mb.advantage
        policy_loss = losses.clipped_surrogate(log_prob, mb.log_prob, advantage, hparams.clip_eps)
        if config.value_loss == "clipped":
            value_loss = losses.clipped_value_loss(
                new_value, mb.value, mb.target, hparams.value_clip_eps
            )
        else:
            value_loss = losses.mse_value_loss(new_value, mb.target)
        total = policy_loss + hparams.vf_coef * value_loss - hparams.ent_coef * entropy
        kl_k1, kl_k3 = losses.approx_kl(log_prob, mb.log_prob)
        stats = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "total_loss": total,
            "approx_kl": kl_k3,
            "approx_kl_k1": kl_k1,
            "clip_fraction": losses.clip_fraction(log_prob, mb.log_prob, hparams.clip_eps),
            "value_clip_fraction": losses.value_clip_fraction(
                new_value, mb.value, hparams.value_clip_eps
            ),
        }
        return total, stats

    def optimize(params, opt_state, batch: Batch, hparams: HParams, key: jax.Array):
        tx = make_optimizer(config, hparams, params)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        def minibatch_step(carry, mb: Batch):
            params, opt_state = carry
            (_, stats), grads = grad_fn(params, mb, hparams)
            grad_norm = optax.tree.norm(grads)
            updates, opt_state = tx.update(grads, opt_state, params)
            stats = {**stats, "grad_norm": grad_norm,
                     "grad_clipped": (grad_norm > hparams.max_grad_norm).astype(jnp.float32)}
            return (optax.apply_updates(params, updates), opt_state), stats

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
        (params, opt_state), stats = jax.lax.scan(epoch, (params, opt_state), keys)
        return params, opt_state, jax.tree.map(jnp.mean, stats)

    def update(state: TrainState, hparams: HParams) -> tuple[TrainState, Metrics]:
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        env_state = envs.reset_episode_totals(state.env_state)
        (env_state, obs), traj = rollout(state.params, env_state, state.obs, rollout_key)

        values = value(state.params, traj.obs)
        next_values = value(state.params, traj.final_obs)
        advantages, targets = actor_critic_targets(
            traj.reward, values, next_values, traj.terminated, traj.truncated,
            hparams.gamma, hparams.gae_lambda, hparams.critic_lambda,
        )
        batch = jax.tree.map(
            lambda x: x.reshape((config.batch_size, *x.shape[2:])),
            Batch(traj.obs, traj.action, traj.log_prob, values, advantages, targets),
        )
        params, opt_state, stats = optimize(
            state.params, state.opt_state, batch, hparams, epoch_key
        )
        update_count = state.update_count + 1
        metrics = {
            **stats,
            **_episode_metrics(env_state),
            **_rollout_metrics(values, targets, advantages, traj.reward),
            **{
                f"lr_{group}": lr
                for group, lr in learning_rates_in_force(
                    config, hparams, update_count * config.steps_per_update
                ).items()
            },
        }
        new_state = TrainState(params, opt_state, env_state, obs, key, update_count)
        return new_state, metrics

    def run_updates(state: TrainState, hparams: HParams, num_updates: int):
        return jax.lax.scan(lambda s, _: update(s, hparams), state, None, length=num_updates)

    return Trainer(config, spec, network, init, update, run_updates)


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
