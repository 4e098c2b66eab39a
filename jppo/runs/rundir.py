"""The run directory's life cycle: checked before compiling, resumed as recorded,
and a tally of what is safely on disk for the message a fault ends with.

`run.json` records everything a resume needs (the experiment with every
override, the device count asked for, where the experiment's `imports` were
found), so `jppo resume RUN` continues without a flag retyped; a resume with
a different experiment names each field that differs, with both values.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jppo.runs import faults, results


def prepare(out: Path, info: Mapping[str, Any], resume: bool) -> dict[str, Any]:
    """Check `out` (one-line errors, before any compile), compare a resumed run's
    record with `info`, and clear what a killed writer left behind; the record
    a resume continues (empty for a new run)."""
    recorded = out / results.RUN_INFO
    has_run = out.is_dir() and recorded.is_file()
    if resume and not has_run:
        raise ValueError(f"resume: {out} holds no run to resume ({results.RUN_INFO} missing)")
    faults.check_out_dir(out)
    if has_run and not resume and not finished_chunks(out):
        _say_taken_over(out)
        return {}
    if not has_run:
        return {}
    if not resume:
        raise ValueError(f"out={str(out)!r} already holds a run: pass resume=True "
                         "(--resume) to continue it, or choose another directory")
    before = results.read_run_info(out)
    changed = differences(_results_fields(before.get("experiment")),
                          _results_fields(info["experiment"]), "experiment") or \
        differences(before.get("variants"), info["variants"], "variants")  # e.g. new defaults
    if changed:
        raise ValueError(f"resume: {out} holds a different experiment: {'; '.join(changed)}; "
                         f"continue it as recorded with `{faults.resume_command(out)}`, or "
                         "choose another directory")
    results.remove_stale_temporaries(out)
    return before


def finished_chunks(out: Path) -> bool:
    """Whether `out` holds anything a run finished: a metrics part or a checkpoint."""
    parts = any((out / results.METRICS_DIR).glob("*.parquet"))
    return parts or any(path.is_dir() for path in (out / "checkpoints").glob("*/*"))


def _say_taken_over(out: Path) -> None:
    """A run that failed (or was stopped) before its first chunk left only its
    run.json: nothing is lost by starting over, so the retry does not need --resume."""
    import jax

    if jax.process_index() == 0:
        faults.notify(f"out={str(out)!r} holds a run that finished no chunk (it failed or was "
                      "stopped before its first): starting over in it")


# Experiment fields that change what is shown, not what is computed: a resume may differ.
OUTPUT_ONLY_FIELDS = ("tensorboard",)


def _results_fields(recorded: Any) -> Any:
    if not isinstance(recorded, dict):
        return recorded
    return {k: v for k, v in recorded.items() if k not in OUTPUT_ONLY_FIELDS}


def differences(recorded: Any, now: Any, where: str) -> list[str]:
    """'where.field: recorded A, now B' for every leaf that differs (dicts recursed)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        return [line for key in dict.fromkeys([*recorded, *now])
                for line in differences(recorded.get(key, "(absent)"), now.get(key, "(absent)"),
                                        f"{where}.{key}")]
    if recorded == now:
        return []
    return [f"{where.removeprefix('experiment.')}: recorded {recorded!r}, now {now!r}"]


def resume_fields(exp: Any, devices: Any) -> dict[str, Any]:
    """What run.json adds for `jppo resume`: the device count asked for, the
    folders the experiment's `imports` came from (e.g. the experiment file's)
    and the envs given as objects (which a record cannot rebuild)."""
    return {"requested_devices": devices if isinstance(devices, int) else None,
            "import_paths": import_paths(exp.imports),
            "env_objects": sorted(exp.env_objects)}


def import_paths(names: Any) -> list[str]:
    """The sys.path folder each imported module was found in."""
    folders = []
    for name in names:
        module = sys.modules.get(name.partition(".")[0])
        file = getattr(module, "__file__", None)
        if file is not None:
            path = Path(file).parent
            folders.append(str(path.parent if Path(file).name == "__init__.py" else path))
    return list(dict.fromkeys(folders))


def recorded_experiment(run_dir: str | Path) -> tuple[Any, int | None]:
    """The experiment of a run directory as run.json recorded it, and the device
    count it asked for (None: auto); one-line errors where it cannot be resumed."""
    from jppo.runs import experiment

    run_dir = Path(run_dir)
    info = results.read_run_info(run_dir)
    if "experiment" not in info:
        raise ValueError(f"resume: {run_dir / results.RUN_INFO} records no experiment; resume "
                         "it with the original command and --resume")
    objects = info.get("env_objects") or []
    if objects:
        raise ValueError(f"resume: {run_dir} trained env objects ({', '.join(objects)}), which "
                         "run.json records by name only; resume from Python with "
                         "run_experiment(experiment, out_dir, resume=True)")
    for path in info.get("import_paths", []):
        if path not in sys.path:
            sys.path.append(path)
    exp = experiment.from_dict(info["experiment"], source=str(run_dir / results.RUN_INFO))
    return exp, _available(info.get("requested_devices"))


def _available(devices: int | None) -> int | None:
    """The recorded device count where this machine has that many, else None (the
    runner's choice: checkpoints resume on any device count)."""
    import jax

    return devices if devices is not None and devices <= len(jax.devices()) else None


@dataclasses.dataclass
class Ledger:
    """Chunks on disk per program, for the line a fault or Ctrl-C ends with."""

    out: Path
    planned: dict[str, int]  # program -> chunks
    written: dict[str, int] = dataclasses.field(default_factory=dict)
    checkpointed: dict[str, int] = dataclasses.field(default_factory=dict)

    def start(self, program: str, first_chunk: int) -> None:
        self.written[program] = self.checkpointed[program] = first_chunk

    def saved(self) -> str:
        done, total = sum(self.written.values()), sum(self.planned.values())
        kept = sum(self.checkpointed.values())
        text = f"{self.out} holds {done} of {total} chunks"
        if kept != done:
            text += f", {kept} of them checkpointed (a resume recomputes the others)"
        return text

    def interrupted(self) -> str:
        return (f"interrupted: nothing finished is lost: {self.saved()}; resume with: "
                f"{faults.resume_command(self.out)}")

    def failed(self, error: BaseException) -> str:
        return (f"{faults.describe(error, 'write the run directory')}; nothing finished is "
                f"lost: {self.saved()}; fix that, then resume with: "
                f"{faults.resume_command(self.out)}")
