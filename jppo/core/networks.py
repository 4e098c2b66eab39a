"""Flax actor-critic: policy and value networks, optionally on a shared torso.

Separate networks are the default (they beat shared ones on classic control).
The value head's depth, width, LayerNorm, activation and output init gain are
configurable because a badly scaled critic is the most common PPO failure.

Output gains are applied after init by scaling the orthogonal(1.0) kernel, so
they can be traced hyperparameters (orthogonal(g) == g * orthogonal(1)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jppo.core import strategies
from jppo.core.config import HParams, PPOConfig

_ACTIVATIONS = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
}

HIDDEN_GAIN = math.sqrt(2.0)


def householder_q(a: jax.Array) -> jax.Array:
    """Q of the QR decomposition of a tall `(n, m)` matrix, with sign(diag R) > 0.

    Plain jnp ops (reflections in two `fori_loop`s) instead of LAPACK: XLA's CPU
    QR kernel, once batched by `vmap` over seeds, splits work onto the same
    intra-op thread pool it runs on and deadlocks a 2-core machine. The
    positive-diagonal QR is unique, so this equals `jnp.linalg.qr` up to
    rounding.
    """
    n, m = a.shape
    rows = jnp.arange(n)

    def reflect(j, carry):
        r, vectors = carry
        x = jnp.where(rows >= j, r[:, j], 0.0)
        x_j = x[j]
        alpha = -jnp.where(x_j >= 0, 1.0, -1.0) * jnp.linalg.norm(x)
        v = x.at[j].add(-alpha)
        v = v / jnp.maximum(jnp.linalg.norm(v), 1e-30)
        r = r - 2.0 * jnp.outer(v, v @ r)
        return r, vectors.at[j].set(v)

    r, vectors = jax.lax.fori_loop(0, m, reflect, (a, jnp.zeros((m, n), a.dtype)))

    def apply(k, q):
        v = vectors[m - 1 - k]
        return q - 2.0 * jnp.outer(v, v @ q)

    q = jax.lax.fori_loop(0, m, apply, jnp.eye(n, m, dtype=a.dtype))
    signs = jnp.where(jnp.diagonal(r) >= 0, 1.0, -1.0).astype(a.dtype)
    return q * signs[None, :]


def orthogonal(scale: float = 1.0) -> nn.initializers.Initializer:
    """The orthogonal initializer every jppo layer uses; see `householder_orthogonal`."""
    return householder_orthogonal(scale)


def householder_orthogonal(scale: float = 1.0) -> nn.initializers.Initializer:
    """Drop-in for `nn.initializers.orthogonal(scale)` (same draws, same matrices)
    that is safe to vmap on CPU; see `householder_q`."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        n_rows, n_cols = math.prod(shape) // shape[-1], shape[-1]
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        q = householder_q(jax.random.normal(key, tall, dtype))
        if n_rows < n_cols:
            q = q.T
        return scale * q.reshape(shape)

    return init


class MLP(nn.Module):
    """Dense -> [LayerNorm] -> activation, per hidden size; orthogonal(sqrt 2) init."""

    hidden: Sequence[int]
    activation: str
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = nn.Dense(
                width,
                kernel_init=orthogonal(HIDDEN_GAIN),
                bias_init=nn.initializers.zeros,
            )(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return x


def _head(features: int, name: str) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=orthogonal(1.0),
        bias_init=nn.initializers.zeros,
        name=name,
    )


class ActorCritic(nn.Module):
    """`policy(obs)` -> logits or (mean, log_std); `value(obs)` -> V(obs)."""

    action_dim: int
    discrete: bool
    activation: str = "tanh"
    torso_hidden: Sequence[int] = ()
    policy_hidden: Sequence[int] = (64, 64)
    value_hidden: Sequence[int] = (64, 64)
    value_activation: str = "tanh"
    value_layer_norm: bool = False
    value_outputs: int = 1  # > 1: logits over value bins (HL-Gauss)

    def setup(self) -> None:
        self.torso = MLP(self.torso_hidden, self.activation)
        self.policy_torso = MLP(self.policy_hidden, self.activation)
        self.policy_head = _head(self.action_dim, "policy_head")
        self.value_torso = MLP(self.value_hidden, self.value_activation, self.value_layer_norm)
        self.value_head = _head(self.value_outputs, "value_head")
        if not self.discrete:
            self.policy_log_std = self.param(
                "policy_log_std", nn.initializers.zeros, (self.action_dim,)
            )

    def policy(self, obs: jax.Array) -> tuple[jax.Array, ...]:
        out = self.policy_head(self.policy_torso(self.torso(obs)))
        if self.discrete:
            return (out,)
        return out, self.policy_log_std

    def value(self, obs: jax.Array) -> jax.Array:
        """The critic's raw output: a scalar per observation, or bin logits."""
        out = self.value_head(self.value_torso(self.torso(obs)))
        return out[..., 0] if self.value_outputs == 1 else out

    def __call__(self, obs: jax.Array) -> tuple[tuple[jax.Array, ...], jax.Array]:
        return self.policy(obs), self.value(obs)


def make_network(config: PPOConfig, action_dim: int, discrete: bool) -> ActorCritic:
    return ActorCritic(
        action_dim=action_dim,
        discrete=discrete,
        activation=config.activation,
        torso_hidden=tuple(config.torso_hidden),
        policy_hidden=tuple(config.policy_hidden),
        value_hidden=tuple(config.value_hidden),
        value_activation=config.value_activation or config.activation,
        value_layer_norm=config.value_layer_norm,
        value_outputs=strategies.of(config).value_loss.head.outputs(config),
    )


def init_params(
    network: ActorCritic, key: jax.Array, obs_dim: int, hparams: HParams
) -> dict:
    """Initialise, then apply the traced output gains and initial log-std."""
    params = network.init(key, jnp.zeros((1, obs_dim), jnp.float32))
    inner = dict(params["params"])
    inner["policy_head"] = _scale_kernel(inner["policy_head"], hparams.policy_output_gain)
    inner["value_head"] = _scale_kernel(inner["value_head"], hparams.value_output_gain)
    if "policy_log_std" in inner:
        inner["policy_log_std"] = jnp.full_like(inner["policy_log_std"], hparams.log_std_init)
    return {"params": inner}


def _scale_kernel(layer: dict, gain: jax.Array) -> dict:
    return {**layer, "kernel": layer["kernel"] * gain}


PARAM_GROUPS = ("policy", "value", "torso")


def param_group(top_level_name: str) -> str:
    """Which optimizer group ("policy", "value", "torso") a top-level module belongs to."""
    for group in PARAM_GROUPS:
        if top_level_name.startswith(group):
            return group
    raise ValueError(f"parameter {top_level_name!r} belongs to no group {PARAM_GROUPS}")


def param_labels(params: dict) -> dict:
    """A pytree of group labels shaped like `params`, for `optax.multi_transform`."""
    labels = {}
    for name, sub in params["params"].items():
        group = param_group(name)
        labels[name] = jax.tree.map(lambda _, g=group: g, sub)
    return {"params": labels}
