"""A named registry per variant family, so a variant is one registration away
from being a valid config value everywhere (PPOConfig, TOML, `--set`,
`jppo config`): the knob declarations read their allowed names from here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> strategy, in registration order (built-ins first)."""

    def __init__(self, field: str) -> None:
        self.field = field  # the PPOConfig field that names a member
        self._members: dict[str, T] = {}
        self._aliases: dict[str, str] = {}  # old name -> registered name

    def register(self, name: str, strategy: T, *, replace: bool = False) -> T:
        """Add `strategy` under `name`; re-registering a name needs `replace=True`
        so two modules cannot silently fight over one name."""
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"{self.field} name {name!r} is invalid: allowed is a non-empty "
                             "string without surrounding spaces")
        if name in self._members and not replace:
            raise ValueError(f"{self.field} {name!r} is already registered; pass replace=True "
                             "to redefine it")
        self._members[name] = strategy
        return strategy

    def alias(self, old: str, name: str) -> None:
        """Accept `old` as another spelling of the registered `name`, so a renamed
        variant keeps saved configs, TOML files and `--set` lines valid; the old
        name is accepted everywhere but listed only as an alias."""
        self.get(name)
        if old in self._members:
            raise ValueError(f"{self.field} {old!r} is registered; it cannot be an alias")
        self._aliases[old] = name

    def unregister(self, name: str) -> None:
        """Remove a registration (tests and notebooks that redefine a variant)."""
        self.get(name)
        del self._members[name]
        self._aliases = {old: new for old, new in self._aliases.items() if new != name}

    def canonical(self, name: str) -> str:
        """The registered name that `name` spells (itself unless it is an alias)."""
        return self._aliases.get(name, name)

    def get(self, name: str) -> T:
        """The strategy named `name`; an unknown name is the usual invalid-field error."""
        try:
            return self._members[self.canonical(name)]
        except (KeyError, TypeError):
            raise ValueError(f"{self.field}={name!r} is invalid: allowed is "
                             f"{self.describe()}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._members)

    def describe(self) -> str:
        listed = f"one of {list(self._members)}"
        if not self._aliases:
            return listed
        old = ", ".join(f"{o!r} for {n!r}" for o, n in self._aliases.items())
        return f"{listed} (old names: {old})"

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._members or name in self._aliases
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)
