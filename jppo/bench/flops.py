"""FLOP counts and the measured matmul peak, shared by the throughput benchmark and
the per-phase profile: the network FLOPs per env step divide a measured rate into
GFLOP/s, and the matmul rate says what fraction of the device that is."""

from __future__ import annotations

import itertools
import time

import jax
import jax.numpy as jnp

from jppo import envs
from jppo.core import networks
from jppo.core.config import PPOConfig


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 matrix-multiply rate of the default device, GFLOP/s."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, b).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = matmul(a, b)
    out.block_until_ready()
    return 2.0 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def dense_flops(sizes: list[int]) -> int:
    """Multiply-adds of a chain of dense layers, counted as 2 FLOPs each."""
    return sum(2 * a * b for a, b in itertools.pairwise(sizes))


def head_flops(config: PPOConfig, inputs: int, rnn: int, dense: list[int]) -> int:
    """One network's own layers: its recurrent cell (if any), then its dense chain."""
    if not rnn:
        return dense_flops([inputs, *dense])
    return networks.CELLS[config.rnn_cell].cost(inputs, rnn) + dense_flops([rnn, *dense])


def flops_per_env_step(config: PPOConfig, spec: envs.EnvSpec) -> dict[str, float]:
    """Analytic network FLOPs per env step (environment dynamics excluded).

    Rollout: one policy forward. Critic: forwards on the observation and on the
    final observation. Learning: `update_epochs` passes of forward + backward
    (about 3x a forward) through policy and critic.
    """
    out = spec.num_actions if spec.discrete else spec.action_dim
    obs_shape = spec.obs_shape or (spec.obs_dim,)
    kind = networks.ENCODERS[networks.resolve_torso_kind(config.torso_kind, obs_shape)]
    encoder, encoded = kind.cost(obs_shape)  # one encoder shared, or one per network
    torso_out = config.torso_hidden[-1] if config.torso_hidden else encoded
    torso = encoder + dense_flops([encoded, *config.torso_hidden]) if config.torso_hidden else 0
    if config.torso_rnn:  # the shared cell, after the torso
        torso += networks.CELLS[config.rnn_cell].cost(torso_out, config.torso_rnn)
        torso_out = config.torso_rnn
    own = 0 if config.torso_hidden else encoder
    policy = torso + own + head_flops(config, torso_out, config.policy_rnn,
                                      [*config.policy_hidden, out])
    value = torso + own + head_flops(config, torso_out, config.value_rnn,
                                     [*config.value_hidden, 1])
    rollout, critic, learn = policy, 2 * value, config.update_epochs * 3 * (policy + value)
    return {"rollout": rollout, "critic": critic, "learn": learn,
            "total": rollout + critic + learn}
