"""A single-file reference PPO: the yardstick for `jppo bench --vs-reference`.

Standard PPO for a discrete-action gymnax environment, written the
straightforward way (one flax module holding actor and critic, the critic run
inside the rollout scan, GAE by reverse scan, minibatches gathered through a
permutation, clipped value loss, global-norm clip + Adam with a linear decay).
It shares nothing with jppo's train step except the vmap-safe orthogonal
initializer, which only matters at init: flax's LAPACK-based one deadlocks a
2-core CPU once vmapped over seeds.

`make_reference_train(settings, env_name)` returns `train(key) -> returns`
(built from the module-level pieces below, each a function of the static `Parts`),
the mean return of the episodes finished in each update (NaN if none), so that
`jax.jit(jax.vmap(train))(keys)` is directly comparable with jppo's `train`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import optax

from jppo.core.networks import orthogonal


class ReferenceSettings(NamedTuple):
    """Standard PPO on CartPole (the CleanRL / PureJaxRL numbers)."""

    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    lr: float = 2.5e-4
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    hidden: int = 64
    value_output_gain: float = 1.0  # init gain of the critic's output layer


class ReferenceActorCritic(nn.Module):
    action_dim: int
    hidden: int = 64
    value_gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        def dense(features: int, gain: float) -> nn.Dense:
            return nn.Dense(features, kernel_init=orthogonal(gain),
                            bias_init=nn.initializers.zeros)

        a = nn.tanh(dense(self.hidden, math.sqrt(2))(x))
        a = nn.tanh(dense(self.hidden, math.sqrt(2))(a))
        logits = dense(self.action_dim, 0.01)(a)
        c = nn.tanh(dense(self.hidden, math.sqrt(2))(x))
        c = nn.tanh(dense(self.hidden, math.sqrt(2))(c))
        value = dense(1, self.value_gain)(c)
        return logits, jnp.squeeze(value, axis=-1)


class EpisodeLog(NamedTuple):
    """Running return per env, and sums over the episodes finished this update."""

    running: jax.Array
    finished_sum: jax.Array
    finished_count: jax.Array


class Transition(NamedTuple):
    done: jax.Array
    action: jax.Array
    value: jax.Array
    reward: jax.Array
    log_prob: jax.Array
    obs: jax.Array


Runner = tuple  # (params, opt_state, env_state, obs, running_return, key)


@dataclasses.dataclass(frozen=True)
class ReferenceTrainer:
    """`train(key)`, and its `init` / `run_updates` parts for chunked timing."""

    init: Callable[[jax.Array], Runner]
    run_updates: Callable[[Runner, int], tuple[Runner, jax.Array]]
    num_updates: int

    def __call__(self, key: jax.Array) -> jax.Array:
        return self.run_updates(self.init(key), self.num_updates)[1]


class Parts(NamedTuple):
    """The static pieces of the reference program."""

    settings: ReferenceSettings
    env: Any
    env_params: Any
    network: ReferenceActorCritic
    tx: optax.GradientTransformation
    num_updates: int
    minibatch_size: int


def make_reference_train(settings: ReferenceSettings, env_name: str = "CartPole-v1"
                         ) -> ReferenceTrainer:
    p = make_parts(settings, env_name)
    return ReferenceTrainer(functools.partial(init, p), functools.partial(run_updates, p),
                            p.num_updates)


def make_parts(settings: ReferenceSettings, env_name: str) -> Parts:
    s = settings
    env, env_params = gymnax.make(env_name)
    num_updates = s.total_timesteps // (s.num_envs * s.num_steps)
    minibatch_size = s.num_envs * s.num_steps // s.num_minibatches
    network = ReferenceActorCritic(env.action_space(env_params).n, s.hidden,
                                   s.value_output_gain)

    def linear_schedule(count: jax.Array) -> jax.Array:
        progress = count // (s.num_minibatches * s.update_epochs) / num_updates
        return s.lr * (1.0 - progress)

    tx = optax.chain(optax.clip_by_global_norm(s.max_grad_norm),
                     optax.adam(learning_rate=linear_schedule, eps=1e-5))
    return Parts(s, env, env_params, network, tx, num_updates, minibatch_size)


def init(p: Parts, key: jax.Array) -> Runner:
    key, net_key, env_key = jax.random.split(key, 3)
    obs_shape = p.env.observation_space(p.env_params).shape
    params = p.network.init(net_key, jnp.zeros((1, *obs_shape)))
    obs, env_state = jax.vmap(p.env.reset, in_axes=(0, None))(
        jax.random.split(env_key, p.settings.num_envs), p.env_params)
    return (params, p.tx.init(params), env_state, obs, jnp.zeros((p.settings.num_envs,)), key)


def run_updates(p: Parts, runner: Runner, count: int) -> tuple[Runner, jax.Array]:
    return jax.lax.scan(functools.partial(update, p), runner, None, count)


def update(p: Parts, runner, _):
    s = p.settings
    params, opt_state, env_state, obs, running, key = runner
    log = EpisodeLog(running, jnp.zeros(()), jnp.zeros((), jnp.int32))
    (params, env_state, obs, log, key), traj = jax.lax.scan(
        functools.partial(env_step, p), (params, env_state, obs, log, key), None, s.num_steps)
    _, last_value = p.network.apply(params, obs)
    advantages, targets = gae(p, traj, last_value)
    key, epoch_key = jax.random.split(key)
    (params, opt_state, *_), _ = jax.lax.scan(
        functools.partial(update_epoch, p),
        (params, opt_state, traj, advantages, targets, epoch_key), None, s.update_epochs)
    mean_return = jnp.where(log.finished_count > 0,
                            log.finished_sum / jnp.maximum(log.finished_count, 1), jnp.nan)
    return (params, opt_state, env_state, obs, log.running, key), mean_return


def env_step(p: Parts, runner, _):
    params, env_state, obs, log, key = runner
    key, action_key, step_key = jax.random.split(key, 3)
    logits, value = p.network.apply(params, obs)
    action = jax.random.categorical(action_key, logits)
    log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
    obs_next, env_state, reward, terminated, truncated, _ = jax.vmap(
        p.env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(step_key, p.settings.num_envs), env_state, action, p.env_params)
    done = jnp.logical_or(terminated, truncated)
    running = log.running + reward
    log = EpisodeLog(jnp.where(done, 0.0, running),
                     log.finished_sum + jnp.sum(jnp.where(done, running, 0.0)),
                     log.finished_count + jnp.sum(done))
    transition = Transition(done, action, value, reward, log_prob, obs)
    return (params, env_state, obs_next, log, key), transition


def gae(p: Parts, traj: Transition, last_value: jax.Array):
    s = p.settings

    def step(carry, t: Transition):
        advantage, next_value = carry
        not_done = 1.0 - t.done
        delta = t.reward + s.gamma * next_value * not_done - t.value
        advantage = delta + s.gamma * s.gae_lambda * not_done * advantage
        return (advantage, t.value), advantage

    _, advantages = jax.lax.scan(step, (jnp.zeros_like(last_value), last_value), traj,
                                 reverse=True)
    return advantages, advantages + traj.value


def update_epoch(p: Parts, carry, _):
    s = p.settings
    params, opt_state, traj, advantages, targets, key = carry
    key, perm_key = jax.random.split(key)
    batch_size = s.num_envs * s.num_steps
    order = jax.random.permutation(perm_key, batch_size)
    flat = jax.tree.map(lambda x: x.reshape((batch_size, *x.shape[2:])),
                        (traj, advantages, targets))
    shuffled = jax.tree.map(
        lambda x: jnp.take(x, order, axis=0).reshape(
            (s.num_minibatches, p.minibatch_size, *x.shape[1:])), flat)

    def minibatch(state, mb):
        params, opt_state = state
        grads = jax.grad(functools.partial(loss_fn, p))(params, *mb)
        updates, opt_state = p.tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, opt_state), _ = jax.lax.scan(minibatch, (params, opt_state), shuffled)
    return (params, opt_state, traj, advantages, targets, key), None


def loss_fn(p: Parts, params, batch: Transition, advantages, targets):
    s = p.settings
    logits, value = p.network.apply(params, batch.obs)
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, batch.action[:, None], axis=-1)[:, 0]
    value_clipped = batch.value + jnp.clip(value - batch.value, -s.clip_eps, s.clip_eps)
    value_loss = 0.5 * jnp.maximum(jnp.square(value - targets),
                                   jnp.square(value_clipped - targets)).mean()
    ratio = jnp.exp(log_prob - batch.log_prob)
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    actor_loss = -jnp.minimum(ratio * adv,
                              jnp.clip(ratio, 1 - s.clip_eps, 1 + s.clip_eps) * adv).mean()
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1).mean()
    return actor_loss + s.vf_coef * value_loss - s.ent_coef * entropy
