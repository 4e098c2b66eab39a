"""Checking env-param overrides against the field they replace, before an env runs.

An override such as ``max_steps_in_episode="long"`` would otherwise surface as
a JAX tracing error deep inside ``reset``, and ``max_steps_in_episode=-5``
would train on one-step episodes and report a final return of 1.0. Each
override is checked against the type of the field's current value (an int
field takes integers, a float field numbers, a flag bools, an array field an
array of its shape) and against the few ranges known by field name; the error
is one line naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np


class Range(NamedTuple):
    low: float
    high: float
    integer: bool
    words: str


# Ranges by field name, shared by every environment that has the field.
KNOWN_RANGES: dict[str, Range] = {
    "max_steps_in_episode": Range(1, math.inf, True, "an integer >= 1"),
}
PROBABILITY = Range(0.0, 1.0, False, "a probability in [0, 1]")  # fields named *_prob


def _invalid(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{name}={value!r} is invalid: allowed is {allowed}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _coerce_scalar(name: str, value: Any, current: Any) -> Any:
    """`value` converted to the type of the field's `current` value."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise _invalid(name, value, "True or False")
        return value
    if isinstance(current, numbers.Integral):
        whole = _is_real(value) and math.isfinite(value) and float(value).is_integer()
        if not whole:
            known = _range(name)
            raise _invalid(name, value, known.words if known else "an integer")
        return int(value)
    if isinstance(current, numbers.Real):
        if not _is_real(value) or math.isnan(value):
            raise _invalid(name, value, "a number (not NaN)")
        return float(value)
    if isinstance(current, str) and not isinstance(value, str):
        raise _invalid(name, value, "a string")
    return value


def _coerce_array(name: str, value: Any, current: Any) -> Any:
    """An array field keeps its shape and dtype."""
    shape, dtype = np.shape(current), np.asarray(current).dtype
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise _invalid(name, value, f"an array of shape {shape} of {dtype}") from None
    if array.shape != shape or (array.dtype.kind == "f" and np.isnan(array).any()):
        raise _invalid(name, value, f"an array of shape {shape} of {dtype} (no NaN)")
    return array


def _range(name: str) -> Range | None:
    if name in KNOWN_RANGES:
        return KNOWN_RANGES[name]
    return PROBABILITY if name.endswith("_prob") else None


def _check_range(name: str, value: Any) -> None:
    known = _range(name)
    if known is None:
        return
    inside = _is_real(value) and known.low <= value <= known.high
    if not inside or (known.integer and not float(value).is_integer()):
        raise _invalid(name, value, known.words)


def checked_overrides(params: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` of fields of `params`, each checked against the field's current
    value and converted to its type; a one-line ValueError names a bad one."""
    checked = {}
    for name, value in overrides.items():
        current = getattr(params, name)
        if np.ndim(current) > 0:
            checked[name] = _coerce_array(name, value, current)
            continue
        if hasattr(current, "dtype"):  # a 0-d array: its Python scalar decides the type
            current = np.asarray(current).item()
        coerced = _coerce_scalar(name, value, current)
        _check_range(name, coerced)
        checked[name] = coerced
    return checked


def apply_param_overrides(params: Any, overrides: dict[str, Any], *,
                          check_values: bool = True) -> Any:
    """``params.replace(**overrides)``, rejecting fields the params do not have
    and (``check_values``) values of the wrong type or range (`checked_overrides`);
    a family whose params have a validator of their own (Brax) passes False.

    ``replace`` on a flax dataclass raises an opaque TypeError for a typo;
    naming the field and the valid ones saves a debugging round trip.
    """
    valid = sorted(field.name for field in dataclasses.fields(params))
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown env param field(s) {', '.join(map(repr, unknown))} for "
            f"{type(params).__qualname__}; valid fields: {', '.join(valid)}"
        )
    if not overrides:
        return params
    return params.replace(**(checked_overrides(params, overrides) if check_values else overrides))
