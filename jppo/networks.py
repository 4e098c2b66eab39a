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

from jppo.config import HParams, PPOConfig

_ACTIVATIONS = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
}

HIDDEN_GAIN = math.sqrt(2.0)


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
                kernel_init=nn.initializers.orthogonal(HIDDEN_GAIN),
                bias_init=nn.initializers.zeros,
            )(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return x


def _head(features: int, name: str) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=nn.initializers.orthogonal(1.0),
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

    def setup(self) -> None:
        self.torso = MLP(self.torso_hidden, self.activation)
        self.policy_torso = MLP(self.policy_hidden, self.activation)
        self.policy_head = _head(self.action_dim, "policy_head")
        self.value_torso = MLP(self.value_hidden, self.value_activation, self.value_layer_norm)
        self.value_head = _head(1, "value_head")
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
        return self.value_head(self.value_torso(self.torso(obs)))[..., 0]

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
