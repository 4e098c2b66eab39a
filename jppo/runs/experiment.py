"""Experiment files: environments x named variants x seeds, in TOML.

    name = "value-clip"
    imports = ["my_variants"]     # optional: modules that register variants, imported first
    envs = ["CartPole-v1", "Acrobot-v1"]
    seeds = 16
    total_timesteps = 200_000
    baseline = "standard"
    stop_when_diverged = true     # optional: stop a program once all its runs are NaN

    [config]                      # PPOConfig fields shared by every variant
    num_envs = 16

    [env_params.CartPole-v1]      # gymnax EnvParams overrides, per environment
    max_steps_in_episode = 200

    [variants.standard]           # no overrides: the base config
    [variants.relative_clip]
    value_clip_mode = "relative"

    [sweep]                       # optional: each variant x each point of the grid
    vf_coef = [0.05, 0.5]         # -> standard,vf_coef=0.05  standard,vf_coef=0.5  ...

Without `[variants]` there is one variant, "default" (and sweep points are named
by their values alone, `vf_coef=0.05`); an empty `[variants]` is an error.
`tensorboard = true` streams per-variant medians and IQRs (`jppo.runs.tensorboard`).

An environment is a gymnax id or an import path `package.module:factory`
(quoted as a TOML key: `[env_params."my_envs:make"]`, whose entries are passed
to the factory or override its params, see `envs.imported`). In Python, `envs`
may also hold env objects (or `(env, env_params)` pairs): each is named by
`envs.object_name` (its `name`, else its class name) and kept in `env_objects`.

Everything is resolved and validated when the file is read, so a typo fails
in milliseconds with the valid names listed, never after a compile.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import sys
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jppo import envs as envs_lib
from jppo.core.config import CONFIG_FIELDS, TRACED_FIELDS, PPOConfig, action_space_knobs
from jppo.runs.sweeps import grid_points, point_name

# PPOConfig fields declared traced: variants differing in these alone share one
# compiled program (stacked hyperparameters).
TRACED_CONFIG_FIELDS = TRACED_FIELDS
DEFAULT_VARIANT = "default"
GLOB_CHARACTERS = ("*", "?", "[", "]")  # a variant's metric files are found by glob


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A fully resolved experiment: every (variant, env) config is valid."""

    name: str
    envs: tuple[str, ...]
    variants: dict[str, dict[str, Any]]  # name -> PPOConfig overrides, in file order
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # base overrides
    seeds: int = 16
    first_seed: int = 0
    total_timesteps: int | None = None  # None: the config's
    baseline: str | None = None  # None: the first variant
    reward_scale: float | None = None
    env_params: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    chunk_updates: int = 50
    checkpoint_every: int = 1  # chunks between checkpoints
    stop_when_diverged: bool = False  # stop a program once all its runs went non-finite
    imports: tuple[str, ...] = ()  # modules imported before validation (user variants)
    tensorboard: bool = False  # stream per-variant medians and IQRs to RUN/tensorboard/
    # name -> (env, env_params or None) for envs given as objects; never serialized
    env_objects: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict,
                                                                 repr=False)

    def __post_init__(self) -> None:
        _name_env_objects(self)
        _validate(self)

    def make_env(self, env: str) -> tuple[Any, Any]:
        """The wrapped env and params of one of `envs`, overrides and scale applied."""
        overrides = self.env_params.get(env, {})
        if env in self.env_objects:
            bare, params = self.env_objects[env]
            if overrides:
                params = envs_lib.apply_param_overrides(
                    bare.default_params if params is None else params, overrides)
            return envs_lib.wrap(bare, params, reward_scale=self.reward_scale, name=env)
        return envs_lib.make(env, reward_scale=self.reward_scale, **overrides)

    def variant_config(self, variant: str) -> PPOConfig:
        if variant not in self.variants:
            raise ValueError(_unknown("variant", variant, list(self.variants)))
        fields = {**self.config, **self.variants[variant]}
        if self.total_timesteps is not None:
            fields["total_timesteps"] = self.total_timesteps
        return PPOConfig(**fields)

    @property
    def baseline_variant(self) -> str:
        return self.baseline if self.baseline is not None else next(iter(self.variants))

    def to_dict(self) -> dict[str, Any]:
        """Every field but `env_objects` (objects are recorded by name only)."""
        return {f.name: copy.deepcopy(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.name != "env_objects"}

    def select(self, variants: Sequence[str] = (), env_names: Sequence[str] = (),
               env_params: Mapping[str, dict[str, Any]] | None = None) -> Experiment:
        """The same experiment restricted to some variants and/or environments
        (`env_params`, if given, replaces the overrides, in the same validation)."""
        for name in variants:
            if name not in self.variants:
                raise ValueError(_unknown("variant", name, list(self.variants)))
        kept = {k: v for k, v in self.variants.items() if not variants or k in variants}
        baseline = self.baseline if self.baseline in kept else None
        kept_envs = tuple(env_names) or self.envs
        if env_params is None:
            env_params = {k: v for k, v in self.env_params.items() if k in kept_envs}
        objects = {k: v for k, v in self.env_objects.items() if k in kept_envs}
        return dataclasses.replace(self, variants=kept, envs=kept_envs, baseline=baseline,
                                   env_params=dict(env_params), env_objects=objects)


EXPERIMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Experiment))
SWEEP_KEY = "sweep"  # a file's [sweep] grid, expanded into variants when the file is read
FILE_KEYS = (*EXPERIMENT_FIELDS, SWEEP_KEY)


def _name_env_objects(exp: Experiment) -> None:
    """Replace env objects in `exp.envs` by their names, keeping the objects in
    `exp.env_objects`, so the rest of an experiment only ever sees names."""
    if not isinstance(exp.envs, tuple | list) or not isinstance(exp.env_objects, dict):
        return
    names, objects = [], dict(exp.env_objects)
    for entry in exp.envs:
        if isinstance(entry, str):
            names.append(entry)
            continue
        env, params = entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, None)
        name = envs_lib.object_name(env)
        if name in objects and objects[name][0] is not env:
            raise ValueError(f"envs: two different env objects are named {name!r}; allowed "
                             "is one object per name (give them distinct `name`s)")
        _require("/" not in name and "__" not in name, "env name", name,
                 "a name without '/' or '__' (it names the metric files)")
        objects[name] = (env, params)
        names.append(name)
    object.__setattr__(exp, "envs", tuple(names))
    object.__setattr__(exp, "env_objects", objects)


def load(path: str | Path, overrides: Sequence[str] = (), **fields: Any) -> Experiment:
    """Read a TOML experiment file, apply `--set`-style overrides and fields."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"experiment file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"experiment file {str(path)!r} is not valid TOML: {error}") from None
    return from_dict(data, overrides, source=str(path), search_path=path.parent, **fields)


def default_experiment(overrides: Sequence[str] = (), **fields: Any) -> Experiment:
    """The embedded default: standard PPO on CartPole-v1, 64 seeds."""
    text = resources.files("jppo.runs").joinpath("default_experiment.toml").read_text()
    return from_dict(tomllib.loads(text), overrides, source="default experiment", **fields)


def from_dict(
    data: Mapping[str, Any], overrides: Sequence[str] = (), *, source: str = "experiment",
    search_path: str | Path | None = None, **fields: Any,
) -> Experiment:
    """Build an Experiment from parsed TOML; `overrides` are `FIELD=VALUE` (every
    variant), `VARIANT.FIELD=VALUE` (one variant) or `sweep.FIELD=[...]` (an axis
    of the `[sweep]` grid) and win over the file; non-None `fields` (e.g. seeds=8
    from the command line) win over both, except `imports`, which add to the
    file's. The modules are imported first, looked for also in `search_path`
    (the file's folder) and the working directory. A `[sweep]` table is expanded
    into named variants last (see `expand_sweep`)."""
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ValueError(f"{source}: {_unknown('top-level key', unknown[0], FILE_KEYS)}")
    data = dict(data)
    data.setdefault("name", Path(source).stem.lstrip(".") or "experiment"
                    if source.endswith(".toml") else "experiment")
    if "envs" in data and isinstance(data["envs"], str):
        data["envs"] = [data["envs"]]
    extra = _names_list(fields.pop("imports", None) or (), "imports")
    data["imports"] = _names_list(data.get("imports", ()), f"{source}: imports") + tuple(
        name for name in extra if name not in data.get("imports", ()))
    import_modules(data["imports"], search_path)
    named = data.get("variants") is not None  # [variants] given: sweep names carry the variant
    data["variants"] = _variant_tables(data.get("variants"), source)
    config = data.get("config")
    data["config"] = _table({} if config is None else config, "config", source)
    grid = _sweep_table(data.pop(SWEEP_KEY, None), source)
    _apply_overrides(data, grid, overrides)
    _check_config_fields(grid, SWEEP_KEY)
    data["variants"] = expand_sweep(data["variants"], grid, named=named)
    for key, value in fields.items():
        if value is not None:
            data[key] = value
    if "envs" in data:
        data["envs"] = tuple(data["envs"]) if isinstance(data["envs"], list) else data["envs"]
    try:
        return Experiment(**data)
    except TypeError as error:  # a required field is missing
        raise ValueError(f"{source}: {error}") from None


def _variant_tables(variants: Any, source: str) -> dict[str, dict[str, Any]]:
    """The `[variants]` tables, checked: no table at all is one variant named
    "default"; an empty table or a non-table entry is an error, never a guess."""
    if variants is None:
        return {DEFAULT_VARIANT: {}}
    if not isinstance(variants, Mapping) or not variants:
        raise ValueError(f"{source}: variants={variants!r} is invalid: allowed is at least one "
                         "named table, e.g. [variants.standard]; leave [variants] out for one "
                         f"variant named {DEFAULT_VARIANT!r}")
    return {name: _table(body, f"variants.{name}", source) for name, body in variants.items()}


def _table(body: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise ValueError(f"{source}: {where}={body!r} is invalid: allowed is a table of "
                         f"PPOConfig fields, e.g. [{where}] with vf_coef = 0.1")
    return dict(body)


def _sweep_table(grid: Any, source: str) -> dict[str, Any]:
    if grid is None:
        return {}
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"{source}: sweep={grid!r} is invalid: allowed is a table of "
                         "FIELD = [values], e.g. [sweep] with vf_coef = [0.05, 0.5]")
    return dict(grid)


def _apply_overrides(data: dict[str, Any], grid: dict[str, Any], overrides: Sequence[str]
                     ) -> None:
    """`--set` items into the base config, one variant, or the sweep grid."""
    variants = data["variants"]
    for key, value in parse_assignments(overrides, "--set").items():
        prefix, dot, field = key.rpartition(".")
        if not dot:
            data["config"][field] = value
            grid.pop(field, None)  # the command line wins over the file
            for body in variants.values():
                body.pop(field, None)
        elif prefix in variants:
            variants[prefix][field] = value
        elif prefix == SWEEP_KEY:
            grid[field] = value
        else:
            raise ValueError(f"--set {key}: {_unknown('variant', prefix, list(variants))}"
                             f" (or {SWEEP_KEY}.FIELD for the [sweep] grid)")


def expand_sweep(variants: Mapping[str, dict[str, Any]], grid: Mapping[str, Any], *,
                 named: bool = True) -> dict[str, dict[str, Any]]:
    """Each variant crossed with each point of `grid` (`jppo.runs.sweeps.grid_points`),
    named `VARIANT,vf_coef=0.05,value_output_gain=0.01`, or without the `VARIANT,`
    part when `named` is False (a file with `[sweep]` and no `[variants]`).
    Points differing only in traced fields share one compiled program."""
    if not grid:
        return dict(variants)
    points = grid_points(grid, SWEEP_KEY)
    expanded: dict[str, dict[str, Any]] = {}
    for variant, body in variants.items():
        both = sorted(set(body) & set(grid))
        if both:
            raise ValueError(f"variants.{variant}: {both[0]} is set there and swept in "
                             f"[{SWEEP_KEY}]; allowed is one of the two")
        for point in points:
            name = f"{variant},{point_name(point)}" if named else point_name(point)
            if name in expanded:
                raise ValueError(f"{SWEEP_KEY}: two variants are named {name!r}; allowed are "
                                 "variant names without ',' and '='")
            expanded[name] = {**body, **point}
    return expanded


def import_modules(names: Sequence[str], search_path: str | Path | None = None) -> None:
    """Import the modules that register a user's variants and rules. A module not
    found on `sys.path` is looked for in `search_path` and the working directory,
    which are then added to `sys.path` (as `python -m` would add the latter)."""
    for name in names:
        try:
            importlib.import_module(name)
            continue
        except ModuleNotFoundError as error:
            if error.name != name.partition(".")[0]:
                raise
        for folder in (search_path, Path.cwd()):
            if folder is not None and str(Path(folder).absolute()) not in sys.path:
                sys.path.append(str(Path(folder).absolute()))
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            raise ValueError(f"imports: module {name!r} cannot be imported ({error}); allowed "
                             "is a module on sys.path, next to the experiment file or in the "
                             "working directory") from None


def _names_list(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what}={value!r} is invalid: allowed is a list of module names")
    return tuple(value)


def parse_assignments(items: Sequence[str], what: str) -> dict[str, Any]:
    """`["lr=3e-4", "value_hidden=[256, 128]"]` -> dict; values are read as TOML
    values, so bare words that are not TOML stay strings (`value_loss=mse`)."""
    parsed: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{what} {item!r} is invalid: allowed is NAME=VALUE")
        parsed[name] = parse_value(text.strip())
    return parsed


def parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text.startswith("(") and text.endswith(")"):  # Python-style tuple
            return parse_value(f"[{text[1:-1].rstrip(',')}]")
        if text in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[text]
        return text


def static_key(config: PPOConfig) -> PPOConfig:
    """`config` with every traced field at its default: equal keys share a program."""
    defaults = PPOConfig()
    return dataclasses.replace(
        config, **{name: getattr(defaults, name) for name in TRACED_CONFIG_FIELDS}
    )


def _validate(exp: Experiment) -> None:
    import_modules(_names_list(exp.imports, "imports"))
    _validate_fields(exp)
    _validate_variants(exp)
    if exp.baseline is not None and exp.baseline not in exp.variants:
        raise ValueError(f"baseline: {_unknown('variant', exp.baseline, list(exp.variants))}")
    _require(isinstance(exp.env_params, dict), "env_params", exp.env_params,
             "a table of per-environment tables")
    for env in exp.env_params:
        if env not in exp.envs:
            raise ValueError(f"env_params.{env}: {_unknown('environment', env, exp.envs)}")
    for variant in exp.variants:
        try:
            exp.variant_config(variant)
        except ValueError as error:
            raise ValueError(f"variant {variant!r}: {error}") from None
        except TypeError as error:
            raise ValueError(f"variant {variant!r}: {error}") from None
    _check_stop_when_diverged(exp)
    _check_action_spaces(exp, {env: _built_spec(exp, env) for env in exp.envs})


def _validate_fields(exp: Experiment) -> None:
    _check_name(exp.name)
    _require(isinstance(exp.envs, tuple) and len(exp.envs) > 0
             and all(isinstance(e, str) for e in exp.envs), "envs", exp.envs,
             "a non-empty list of environment ids")
    for env in exp.envs:
        if env not in exp.env_objects:
            envs_lib.check_env_name(env)
    for field in ("seeds", "chunk_updates", "checkpoint_every"):
        value = getattr(exp, field)
        _require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                 field, value, "an integer >= 1")
    _require(isinstance(exp.first_seed, int) and exp.first_seed >= 0, "first_seed",
             exp.first_seed, "an integer >= 0")
    if exp.reward_scale is not None:
        _require(isinstance(exp.reward_scale, int | float) and exp.reward_scale > 0,
                 "reward_scale", exp.reward_scale, "a number > 0")
    _require(isinstance(exp.tensorboard, bool), "tensorboard", exp.tensorboard, "true or false")


def _check_name(name: Any) -> None:
    """`name` names the folder runs/NAME-TIME: a name, never a path, so an
    experiment file cannot write outside the runs folder (`--out` chooses a place)."""
    _require(isinstance(name, str) and name.strip() != "", "name", name, "a non-empty string")
    bad = [part for part in ("/", "\\") if part in name]
    if (bad or name in (".", "..") or name.startswith(".") or name != name.strip()
            or not name.isprintable()):
        raise ValueError(f"name={name!r} is invalid: allowed is a name, not a path (no '/' or "
                         "'\\', no leading '.', no surrounding spaces or control characters; "
                         "it names the folder runs/NAME-TIME); choose the place with --out "
                         "(out= in Python)")


def _validate_variants(exp: Experiment) -> None:
    _require(isinstance(exp.variants, dict) and len(exp.variants) > 0, "variants",
             exp.variants, "at least one [variants.NAME] table")
    for name, body in exp.variants.items():
        _require(isinstance(name, str) and name.strip() == name and name != ""
                 and not any(part in name for part in ("__", "/", *GLOB_CHARACTERS)),
                 "variant name", name, "a name without '__', '/', glob characters "
                 f"{''.join(GLOB_CHARACTERS)!r} or surrounding spaces (it names files)")
        _require(isinstance(body, dict), f"variants.{name}", body,
                 "a table of PPOConfig fields")
        _check_config_fields(body, f"variants.{name}")
    _require(isinstance(exp.config, dict), "config", exp.config, "a table of PPOConfig fields")
    _check_config_fields(exp.config, "config")


def _built_spec(exp: Experiment, env: str) -> envs_lib.EnvSpec:
    """Build `env` once (checking its API and params) before any compile; its spec."""
    try:
        return envs_lib.env_spec(*exp.make_env(env))
    except (ValueError, TypeError) as error:
        if not exp.env_params.get(env):
            raise ValueError(str(error)) from None
        raise ValueError(f"env_params.{env}: {error}") from None


def _check_action_spaces(exp: Experiment, specs: Mapping[str, envs_lib.EnvSpec]) -> None:
    """A knob acting on one kind of action space (log_std_init: continuous) set
    in a variant whose environments all have the other kind does nothing: an error.
    In an experiment mixing both kinds it applies where it can."""
    kinds = {env: "discrete" if spec.discrete else "continuous" for env, spec in specs.items()}
    for variant in exp.variants:
        config = exp.variant_config(variant)
        for field, kind in action_space_knobs(config).items():
            if kind not in kinds.values():
                shown = ", ".join(f"{env} ({k} actions)" for env, k in kinds.items())
                raise ValueError(f"variant {variant!r}: {field}={getattr(config, field)!r} is "
                                 f"invalid for {shown}: it acts on {kind} action spaces only; "
                                 f"allowed is leaving it at its default "
                                 f"{PPOConfig().resolved(field)!r}")


def timestep_notes(exp: Experiment) -> list[str]:
    """One line per distinct (total_timesteps, rollout size) of the variants whose
    total is not a whole number of rollouts: how many env steps each seed runs."""
    notes = []
    for variant in exp.variants:
        config = exp.variant_config(variant)
        total, rollout = config.total_timesteps, config.batch_size
        run = config.num_updates * rollout
        note = (f"total_timesteps={total} is not a multiple of one rollout (num_envs*num_steps="
                f"{rollout}): each seed runs {config.num_updates} updates = {run:,} env steps "
                f"({total - run:,} fewer); a multiple of {rollout} runs exactly")
        if run != total and note not in notes:
            notes.append(note)
    return notes


def knob_notes(exp: Experiment) -> list[str]:
    """One line per knob set away from its default that cannot act in a variant's
    resolved config (`jppo.core.inert`), naming the variants where not all."""
    from jppo.core import inert

    found: dict[str, list[str]] = {}
    for variant in exp.variants:
        for note in inert.notes(exp.variant_config(variant)):
            found.setdefault(note, []).append(variant)
    lines = []
    for note, variants in found.items():
        if len(variants) < len(exp.variants):
            more = f" and {len(variants) - 3} more" if len(variants) > 3 else ""
            note = f"{note} (variant{'s' if len(variants) > 1 else ''} " \
                   f"{', '.join(map(repr, variants[:3]))}{more})"
        lines.append(note)
    return lines


class KnobHasNoEffect(UserWarning):
    """A knob set away from its default cannot act in the resolved config."""


class TimestepsRounded(UserWarning):
    """`total_timesteps` was rounded down to a whole number of rollouts."""


def _check_stop_when_diverged(exp: Experiment) -> None:
    """The stop reads the `nonfinite` flags, which `nonfinite_check=False` turns off."""
    _require(isinstance(exp.stop_when_diverged, bool), "stop_when_diverged",
             exp.stop_when_diverged, "true or false")
    unchecked = [v for v in exp.variants if not exp.variant_config(v).nonfinite_check]
    if exp.stop_when_diverged and unchecked:
        raise ValueError(f"stop_when_diverged=True is invalid with nonfinite_check=False "
                         f"(variant {unchecked[0]!r}): allowed is nonfinite_check=True, whose "
                         "flags the stop reads, or stop_when_diverged=False")


def _check_config_fields(body: Mapping[str, Any], where: str) -> None:
    for field in body:
        if field not in CONFIG_FIELDS:
            raise ValueError(f"{where}: {_unknown('PPOConfig field', field, CONFIG_FIELDS)}")


def _require(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{field}={value!r} is invalid: allowed is {allowed}")


def _unknown(what: str, name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.7)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    return f"unknown {what} {name!r}{hint}; valid: {', '.join(map(str, valid))}"
