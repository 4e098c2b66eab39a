"""Knob declarations: each `PPOConfig` field says once what it accepts, whether it
is traced, and what it does.

    gamma: float = knob(0.99, "discount factor", Interval(0.0, 1.0, hi_inc=True), traced=True)

`knob(...)` returns a `dataclasses.field` whose metadata carries a `Knob`, the way
rejax marks traced fields on its dataclass. Validation, `HParams`, the sweepable
set, the runner's program grouping and the `jppo config` listing all read these
declarations back with `declared(PPOConfig)`, so a new knob is one line.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

METADATA_KEY = "knob"


def invalid(name: str, value: Any, allowed: str) -> ValueError:
    """The one error format for a bad field: `FIELD=VALUE is invalid: allowed is ...`."""
    return ValueError(f"{name}={value!r} is invalid: allowed is {allowed}")


class Allowed(Protocol):
    """What a knob accepts: described in words, checked, and coerced from TOML/CLI input."""

    def describe(self) -> str: ...

    def check(self, name: str, value: Any) -> None: ...

    def coerce(self, value: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Interval:
    """A real number (or a batch of them) in an interval; checks arrays entry-wise
    so a sweep's stacked hyperparameters are checked like a single config."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_inc: bool = False
    hi_inc: bool = False

    def describe(self) -> str:
        left = ("[" if self.lo_inc else "(") + f"{self.lo:g}"
        right = f"{self.hi:g}" + ("]" if self.hi_inc else ")")
        return f"a number in {left}, {right}"

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, str | bytes | bool):
            raise invalid(name, value, self.describe())
        try:
            given = np.asarray(value)
            array = given.astype(np.float64)
        except (TypeError, ValueError):
            raise invalid(name, value, self.describe()) from None
        ok_lo = array >= self.lo if self.lo_inc else array > self.lo
        ok_hi = array <= self.hi if self.hi_inc else array < self.hi
        bad = ~(ok_lo & ok_hi) | np.isnan(array)
        if np.any(bad):
            if array.ndim:
                index = int(np.argmax(bad.ravel()))
                raise ValueError(f"{name}={_shown(given.ravel()[index])!r} (entry {index} of a "
                                 f"batch) is invalid: allowed is {self.describe()}")
            plain = value if isinstance(value, int | float) else _shown(given)
            raise invalid(name, plain, self.describe())

    def coerce(self, value: Any) -> Any:
        return value


def _shown(entry: Any) -> float:
    """A float32 entry as the number it was written as (float32 -0.001, not
    -0.0010000000474974513), so an error quotes the user's value."""
    entry = np.asarray(entry)
    return float(str(entry)) if entry.dtype == np.float32 else float(entry)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a fixed tuple of names (a variant of the program)."""

    options: tuple[str, ...]

    def describe(self) -> str:
        return f"one of {list(self.options)}"

    def check(self, name: str, value: Any) -> None:
        if value not in self.options:
            raise invalid(name, value, self.describe())

    def coerce(self, value: Any) -> Any:
        return value


class Names(Protocol):
    def describe(self) -> str: ...

    def __contains__(self, name: object) -> bool: ...


@dataclasses.dataclass(frozen=True)
class Registered:
    """One of the names registered in a strategy registry, read when checked, so a
    variant registered from the user's module is valid (and listed) everywhere."""

    registry: Names

    def describe(self) -> str:
        return self.registry.describe()

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str) or value not in self.registry:
            raise invalid(name, value, self.describe())

    def coerce(self, value: Any) -> Any:
        return value


@dataclasses.dataclass(frozen=True)
class Integer:
    """A whole number >= `minimum`; integral floats such as 5e5 become ints.
    `optional`: None is accepted too (the knob's doc says what it stands for)."""

    minimum: int = 1
    optional: bool = False

    def describe(self) -> str:
        whole = f"an integer >= {self.minimum}"
        return f"{whole}, or None" if self.optional else whole

    def check(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < self.minimum:
            raise invalid(name, value, self.describe())

    def coerce(self, value: Any) -> Any:
        return int(value) if isinstance(value, float) and value.is_integer() else value


@dataclasses.dataclass(frozen=True)
class Flag:
    """A bool; 1 or "yes" are rejected rather than guessed."""

    def describe(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise invalid(name, value, self.describe())

    def coerce(self, value: Any) -> Any:
        return value


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Layer widths; TOML and JSON give lists, the config keeps tuples (hashable)."""

    def describe(self) -> str:
        return "a tuple of positive ints"

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, tuple) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in value
        ):
            raise invalid(name, value, self.describe())

    def coerce(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A finite (low, high) pair with low < high; `optional`: None is accepted
    too (the knob's doc says what it then stands for)."""

    optional: bool = False

    def describe(self) -> str:
        pair = "a finite (low, high) pair with low < high"
        return f"{pair}, or None" if self.optional else pair

    def check(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if not (isinstance(value, tuple) and len(value) == 2
                and all(isinstance(x, numbers.Real) and math.isfinite(x) for x in value)
                and value[0] < value[1]):
            raise invalid(name, value, self.describe())

    def coerce(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


@dataclasses.dataclass(frozen=True)
class Knob:
    """The declaration of one config field.

    `traced`: the value is data of the compiled program (sweepable; variants that
    differ only in traced knobs share a compile). `hparam`: it is also a field of
    `HParams`; false for a knob such as `lr` that is only read through the
    `fallback` of others. `fallback`: the field whose value a `None` stands for.
    `action_space`: the only kind of action space ("continuous" or "discrete") the
    knob acts on; None: every kind.
    """

    doc: str
    allowed: Allowed
    traced: bool = False
    hparam: bool = False
    fallback: str | None = None
    action_space: str | None = None

    def check(self, name: str, value: Any) -> None:
        """Validate `value`; `None` is accepted exactly when a fallback is declared."""
        if value is None and self.fallback is not None:
            return
        self.allowed.check(name, value)


ACTION_SPACES = ("continuous", "discrete")


def knob(default: Any, doc: str, allowed: Allowed, *, traced: bool = False,
         hparam: bool | None = None, fallback: str | None = None,
         action_space: str | None = None) -> Any:
    """A dataclass field with its `Knob` in the metadata; `hparam` defaults to `traced`."""
    hparam = traced if hparam is None else hparam
    if hparam and not traced:
        raise TypeError("a static knob cannot be an HParams field: declare it traced=True")
    if action_space not in (None, *ACTION_SPACES):
        raise TypeError(f"action_space={action_space!r}: allowed is one of {ACTION_SPACES}")
    declaration = Knob(doc, allowed, traced, hparam, fallback, action_space)
    return dataclasses.field(default=default, metadata={METADATA_KEY: declaration})


def declared(cls: type) -> dict[str, Knob]:
    """Every field's `Knob`, in field order; a field without one is an error."""
    found = {}
    for field in dataclasses.fields(cls):
        if METADATA_KEY not in field.metadata:
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with knob(...)")
        found[field.name] = field.metadata[METADATA_KEY]
    return found


def defaults(cls: type) -> dict[str, Any]:
    return {field.name: field.default for field in dataclasses.fields(cls)}


# ------------------------------------------------------------------ listings


def rows(cls: type) -> list[tuple[str, str, str, str, str]]:
    """(name, default, allowed, traced/static, doc) per knob, in field order."""
    values = defaults(cls)
    return [(name, _default_text(values[name], k), _allowed_text(k),
             "traced" if k.traced else "static", k.doc)
            for name, k in declared(cls).items()]


def markdown(cls: type) -> str:
    """The knob table as Markdown (the manual's knob page, `jppo config --markdown`)."""
    lines = ["| knob | default | allowed | traced | what it does |", "|---|---|---|---|---|"]
    for name, default, allowed, kind, doc in rows(cls):
        cells = [f"`{name}`", f"`{default}`", allowed, kind, doc]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def text(cls: type) -> str:
    """The knob table for a terminal: an aligned line per knob, its doc indented below."""
    table = rows(cls)
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    lines = []
    for name, default, allowed, kind, doc in table:
        lines.append(f"{name:<{widths[0]}}  {default:<{widths[1]}}  {kind:<6}  {allowed}")
        lines.append(f"    {doc}")
    return "\n".join(lines)


def names_by_kind(cls: type) -> Mapping[str, list[str]]:
    """{"traced": [...], "static": [...]}: the split the `--set` help shows."""
    split: dict[str, list[str]] = {"traced": [], "static": []}
    for name, k in declared(cls).items():
        split["traced" if k.traced else "static"].append(name)
    return split


def _default_text(value: Any, declaration: Knob) -> str:
    if value is None and declaration.fallback is not None:
        return f"None (= {declaration.fallback})"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _allowed_text(declaration: Knob) -> str:
    allowed = declaration.allowed.describe()
    return f"{allowed}, or None" if declaration.fallback is not None else allowed
