"""Two answers to plasticity and representation loss, as pure functions over
parameter pytrees (docs/network-variants.md).

Shrink-and-perturb (Ash & Adams 2020; with LayerNorm for on-policy RL, Juliani &
Ash 2024): every `shrink_perturb_every` updates, each parameter of the chosen
groups moves to

    theta <- alpha * theta + sigma * theta_fresh,

theta_fresh a new draw of the network's initialization (its output gains and
zero biases included). Adam's moments are kept. The policy's state-independent
`policy_log_std` is left alone: shrinking it would change exploration, not
features.

PFO (Moalla et al. 2024, "No Representation, No Trust"): the PPO trust region
bounds the policy's outputs, not its features, and the actor's representation
collapses; PFO adds

    L_PFO = E_s [ sum_l || phi_l(s; theta) - phi_l(s; theta_old) ||^2 ]

to the loss, phi_l the pre-activations of the actor's hidden layers (the
shared torso's included), theta_old the parameters that collected the rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jppo.core.networks import PREACTIVATION, ActorCritic, param_group

KEPT = ("policy_log_std",)  # top-level parameters shrink-and-perturb never touches


def groups_of(choice: str) -> tuple[str, ...]:
    """"policy+value" -> ("policy", "value"): the `shrink_perturb_groups` knob."""
    return tuple(choice.split("+"))


def shrink_perturb(params: Any, fresh: Any, alpha: jax.Array, sigma: jax.Array,
                   groups: Sequence[str]) -> Any:
    """alpha * params + sigma * fresh on the top-level modules of `groups`; the
    others (and `KEPT`) unchanged."""
    def mix(name: str, current: Any) -> Any:
        if name in KEPT or param_group(name) not in groups:
            return current
        return jax.tree.map(lambda p, f: alpha * p + sigma * f, current, fresh["params"][name])

    return {"params": {name: mix(name, sub) for name, sub in params["params"].items()}}


def scheduled_shrink_perturb(params: Any, fresh_params: Any, update_count: jax.Array,
                             every: int, alpha: jax.Array, sigma: jax.Array,
                             groups: Sequence[str]) -> Any:
    """`shrink_perturb` when `update_count` (the updates done, this one counted)
    is a multiple of `every`, else `params`: a `lax.cond`, so the update stays
    one compiled program (under `vmap` both sides run and one is selected)."""
    return jax.lax.cond(update_count % every == 0,
                        lambda p: shrink_perturb(p, fresh_params(), alpha, sigma, groups),
                        lambda p: p, params)


def policy_preactivations(network: ActorCritic, params: Any, obs: jax.Array
                          ) -> list[jax.Array]:
    """The pre-activations of each hidden layer the policy runs on `obs`
    (feed-forward networks), in a fixed order: what PFO compares."""
    _, sown = network.apply(params, obs, method=ActorCritic.policy, mutable=["intermediates"])
    return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(sown)
            if PREACTIVATION in jax.tree_util.keystr(path)]


def pfo_penalty(current: Sequence[jax.Array], rollout: Sequence[jax.Array]) -> jax.Array:
    """E_s sum_l ||phi_l - phi_l_old||^2, the old pre-activations held fixed."""
    squares = [jnp.sum((now - jax.lax.stop_gradient(old)) ** 2, axis=-1)
               for now, old in zip(current, rollout, strict=True)]
    return jnp.mean(sum(squares))

