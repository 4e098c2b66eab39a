"""Environments named by import path, ``package.module:factory``.

The factory is any callable (a function or a class) returning ``env`` or
``(env, env_params)``. Keyword arguments (``--env-param``, a TOML
``[env_params."package.module:factory"]`` table, ``env_overrides=``) are split
by name: those the factory's signature accepts (all of them if it takes
``**kwargs``) are passed to the factory, the rest override fields of the params
it returns. So a size that fixes observation shapes can be a factory argument
while a traced ``EnvParams`` field stays a param, and both are set the same way.

A module not found on ``sys.path`` is looked for in the working directory, as
``python -m`` would, so ``--env my_envs:make`` works from the folder holding
``my_envs.py`` with the installed ``jppo`` command too.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .params import checked_overrides

FORM = "an import path package.module:factory"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _fail(path: str, problem: str) -> ValueError:
    return ValueError(f"env {path!r}: {problem}")


def split_path(path: str) -> tuple[str, str]:
    """``"pkg.mod:make"`` -> ``("pkg.mod", "make")``, rejecting malformed paths."""
    module, _, attribute = path.partition(":")
    if not (_DOTTED.match(module) and _DOTTED.match(attribute)):
        raise _fail(path, f"not a valid import path; allowed is {FORM}")
    return module, attribute


def _import(path: str, module: str) -> Any:
    """Import ``module``, retrying with the working directory on ``sys.path``."""
    for attempt in range(2):
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            missing_is_ours = module == missing or module.startswith(missing + ".")
            if attempt or not missing_is_ours:
                raise _fail(path, f"module {module!r} cannot be imported ({error})") from None
            cwd = str(Path.cwd())
            if cwd not in sys.path:
                sys.path.append(cwd)
        except Exception as error:
            raise _fail(path, f"module {module!r} cannot be imported "
                        f"({type(error).__name__}: {error})") from None
    raise AssertionError("unreachable")


def load(path: str) -> Callable[..., Any]:
    """The factory an import path names; a one-line ValueError says why not."""
    module_name, attribute = split_path(path)
    target = _import(path, module_name)
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise _fail(path, f"module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise _fail(path, f"{attribute} is a {type(target).__name__}, not callable; allowed "
                    "is a factory returning env or (env, env_params)")
    return target


def check(path: str) -> None:
    """Resolve the import path (imports the module) without building the env."""
    load(path)


def factory_keywords(factory: Callable[..., Any]) -> set[str] | None:
    """Names the factory accepts as keywords; None if it takes ``**kwargs``."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _override_params(path: str, params: Any, overrides: dict[str, Any],
                     keywords: set[str] | None) -> Any:
    fields = ({f.name for f in dataclasses.fields(params)} if dataclasses.is_dataclass(params)
              else set())
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise _fail(path, f"unknown env param(s) {', '.join(map(repr, unknown))}; allowed are "
                    f"the factory's keywords ({', '.join(sorted(keywords or ())) or 'none'}) "
                    f"and the fields of {type(params).__name__} "
                    f"({', '.join(sorted(fields)) or 'none'})")
    if not overrides:
        return params
    try:
        checked = checked_overrides(params, overrides)
    except ValueError as error:
        raise _fail(path, str(error)) from None
    return dataclasses.replace(params, **checked)


def build(path: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """Call the factory; return the bare env and its params, overrides applied."""
    factory = load(path)
    keywords = factory_keywords(factory)
    to_factory = {k: v for k, v in overrides.items() if keywords is None or k in keywords}
    try:
        made = factory(**to_factory)
    except Exception as error:
        lines = str(error).strip().splitlines() or [""]
        raise _fail(path, f"the factory raised {type(error).__name__}: {lines[0]}") from None
    env, params = made if isinstance(made, tuple) and len(made) == 2 else (made, None)
    if params is None:
        params = getattr(env, "default_params", None)
    rest = {k: v for k, v in overrides.items() if k not in to_factory}
    return env, _override_params(path, params, rest, keywords)
