"""What a user's strategy function must be, checked when it is registered and
again, in one line naming the strategy, when it is first traced.

A registered value loss that takes two arguments, returns a vector or is not
callable used to be accepted and then fail deep inside a compile as a JAX
shape error. Registration checks what it can (callable, how many positional
arguments), and the function is wrapped so that a failure or a wrong output
shape while tracing names the strategy and its contract.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

# class name -> function field -> (positional arguments, contract in words, scalar output?)
CONTRACTS: dict[str, dict[str, tuple[int, str, bool]]] = {
    "ValueLoss": {
        "loss": (1, "loss(inputs: ValueLossInputs) -> a scalar loss", True),
        "clip_fraction": (1, "clip_fraction(inputs: ValueLossInputs) -> a scalar", True),
    },
    "ValueTarget": {
        "encode": (2, "encode(returns, norm_state) -> an array shaped like returns", False),
        "decode": (2, "decode(values, norm_state) -> an array shaped like values", False),
        "track": (4, "track(params, norm_state, targets, hparams) -> (params, norm_state)",
                  False),
        "loss_scale": (1, "loss_scale(targets) -> a scalar", True),
    },
    "AdvantageNorm": {
        "minibatch": (2, "minibatch(advantages, hparams) -> advantages of the same shape",
                      False),
        "batch": (2, "batch(advantages, hparams) -> advantages of the same shape", False),
    },
    "PolicyLoss": {
        "loss": (1, "loss(inputs: PolicyLossInputs) -> a scalar loss", True),
        "clip_fraction": (1, "clip_fraction(inputs: PolicyLossInputs) -> a scalar", True),
        "adapt": (3, "adapt(coef, kl, hparams) -> the next coef, a scalar", True),
    },
}


class StrategyError(ValueError):
    """A user strategy broke its contract (one line: strategy, function, contract)."""


def checked(field: str, name: str, strategy: Any) -> Any:
    """`strategy` (a ValueLoss, ValueTarget, AdvantageNorm or PolicyLoss) with each function
    checked and wrapped; raises StrategyError at once where it cannot work."""
    contracts = CONTRACTS.get(type(strategy).__name__, {})
    changes = {}
    for attribute, (arity, contract, scalar) in contracts.items():
        function = getattr(strategy, attribute)
        if function is None or getattr(function, "jppo_checked", False):
            continue
        label = f"{field} {name!r}: {attribute}"
        _check_signature(label, function, arity, contract)
        changes[attribute] = _guarded(label, function, contract, scalar)
    return type(strategy)(**{**_fields(strategy), **changes}) if changes else strategy


def _fields(strategy: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(strategy, f.name) for f in dataclasses.fields(strategy)}


def _check_signature(label: str, function: Any, arity: int, contract: str) -> None:
    if not callable(function):
        raise StrategyError(f"{label}={function!r} is invalid: allowed is a function "
                            f"{contract}")
    try:
        inspect.signature(function).bind(*range(arity))
    except TypeError:
        raise StrategyError(f"{label}{_signature(function)} is invalid: allowed is a function "
                            f"taking {arity} positional argument(s), {contract}") from None
    except ValueError:  # a builtin without a signature: checked when traced
        pass


def _signature(function: Any) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return ""


def _guarded(label: str, function: Callable[..., Any], contract: str, scalar: bool
             ) -> Callable[..., Any]:
    @functools.wraps(function)
    def guarded(*args: Any) -> Any:
        try:
            out = function(*args)
        except StrategyError:
            raise
        except Exception as error:
            text = str(error).strip().splitlines()
            raise StrategyError(f"{label} raised {type(error).__name__}: "
                                f"{text[0] if text else ''} (contract: {contract})") from error
        shape = getattr(out, "shape", None)
        if scalar and shape != ():
            raise StrategyError(f"{label} returned {_shown(out)}: allowed is a scalar "
                                f"(contract: {contract}); e.g. take jnp.mean of it")
        return out

    guarded.jppo_checked = True  # type: ignore[attr-defined]
    return guarded


def _shown(out: Any) -> str:
    shape = getattr(out, "shape", None)
    return f"an array of shape {tuple(shape)}" if shape is not None else \
        f"a {type(out).__name__}"
