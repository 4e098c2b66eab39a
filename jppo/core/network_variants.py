"""Combination checks of the network-variant knobs (docs/network-variants.md):
one-line errors, before anything compiles, for settings the blocks or the
PFO loss cannot honour."""

from __future__ import annotations

from typing import Any


def validate(config: Any) -> None:
    """Raise a ValueError naming the field, its value and what is allowed."""
    for head in ("policy", "value"):
        _check_block(config, head)
    if config.pfo and (config.policy_rnn or config.torso_rnn):
        raise ValueError(f"pfo=True is invalid with a recurrent policy (policy_rnn="
                         f"{config.policy_rnn}, torso_rnn={config.torso_rnn}): the penalty "
                         "compares feed-forward pre-activations; allowed is pfo=False, or "
                         "policy_rnn=0 and torso_rnn=0")


def _check_block(config: Any, head: str) -> None:
    block, hidden = getattr(config, f"{head}_block"), getattr(config, f"{head}_hidden")
    if block != "simba":
        return
    if not hidden or len(set(hidden)) != 1:
        raise ValueError(f"{head}_hidden={tuple(hidden)} is invalid with {head}_block='simba': "
                         "the residual blocks add to one stream of one width; allowed is one "
                         "or more equal widths, e.g. (64, 64) for two blocks of width 64")
    if getattr(config, f"{head}_layer_norm"):
        raise ValueError(f"{head}_layer_norm=True is invalid with {head}_block='simba': SimBa "
                         "blocks already normalize (pre-LayerNorm and a final LayerNorm); "
                         f"allowed is {head}_layer_norm=False, or {head}_block='mlp'")
