"""How many parameters a run's policy has, from its config and env name, without
training or compiling: the gradient rules compare the clipped policy gradient with
adam_eps per parameter, which is what Adam's denominator sees.

A clipped gradient norm G spread over N parameters gives each an RMS gradient of
G / sqrt(N); Adam's step g / (sqrt(v) + eps) halves where that nears eps. The same
norm is healthy on a 4.6k-parameter CartPole policy and crushing on a 30k-parameter
MinAtar one, so the rules read G / sqrt(N) where N is known (a jppo run whose env
can be built here) and fall back to G where it is not (another trainer's logs).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jppo.core.config import PPOConfig
from jppo.core.networks import make_network, param_group


def policy_parameters(config: PPOConfig, env: str) -> int | None:
    """The number of parameters in the policy group (the ones `grad_norm_policy`
    measures), or None where the env cannot be built here (an env object or
    module the diagnosis cannot import, a family that is not installed)."""
    try:
        return _count(config, env)
    except Exception:  # any env that cannot be rebuilt here: the rules fall back
        return None


@functools.lru_cache(maxsize=256)
def _count(config: PPOConfig, env: str) -> int:
    from jppo import envs

    wrapped, params = envs.make(env)
    spec = envs.env_spec(wrapped, params)
    network = make_network(config, spec.num_actions if spec.discrete else spec.action_dim,
                           spec.discrete, spec.obs_shape)
    obs = jnp.zeros((1, *spec.obs_shape), jnp.float32)
    shapes = jax.eval_shape(network.init, jax.random.key(0), obs)["params"]
    return sum(math.prod(leaf.shape) for name, sub in shapes.items()
               if param_group(name) == "policy" for leaf in jax.tree.leaves(sub))
