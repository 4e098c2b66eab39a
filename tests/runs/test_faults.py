"""Runs that survive faults and explain themselves: a damaged checkpoint is
skipped for the newest readable one, OS faults and Ctrl-C end in one line that
names the path, the reason and the resume command with nothing finished lost,
and `jppo resume RUN` finishes a run exactly as an uninterrupted one.

One run journey (module fixture) is shared by most tests: train, Ctrl-C after
chunk 3 of 6; damage checkpoint 3; `jppo resume` hits a full disk at chunk 5
(and falls back to checkpoint 2 on the way); `jppo resume` again finishes."""

import contextlib
import errno
import json
import os
import resource
import signal
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jppo import cli
from jppo.runs import checkpoint, execution, experiment, faults, results, rundir, runner

EXPERIMENT = textwrap.dedent("""
    name = "faults"
    envs = ["CartPole-v1"]
    seeds = 2
    total_timesteps = 768
    chunk_updates = 2
    reward_scale = 0.5

    [config]
    num_envs = 4
    num_steps = 16
    update_epochs = 2
    num_minibatches = 2

    [variants.standard]
""")  # 12 updates in 6 chunks of 2; reward_scale checks that every field is resumed


@pytest.fixture(autouse=True)
def keep_xla_flags(monkeypatch):
    """`cli.main` asks for one CPU device per core through XLA_FLAGS; keep that
    from leaking into later subprocesses of the suite."""
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))


def flip_a_byte(step_dir: Path) -> None:
    """Damage a checkpoint as a bad disk would: orbax restores it without error."""
    path = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def parts(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "metrics").glob("*.parquet"))


def chunk_names(n: int) -> list[str]:
    return [f"standard__CartPole-v1__{i:05d}.parquet" for i in range(n)]


class Journey:
    """Everything the tests inspect, recorded as the run went."""


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """The journey compiles one program four times: XLA's persistent cache, on for
    this module only, makes the repeats cheap (the executable is the same)."""
    from jax.experimental.compilation_cache import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {name: getattr(jax.config, name) for name in names}
    values = (str(tmp_path_factory.mktemp("xla-cache")), 0, -1)
    for name, value in zip(names, values, strict=True):
        jax.config.update(name, value)
    compilation_cache.reset_cache()
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def journey(tmp_path_factory, compile_cache):
    folder = tmp_path_factory.mktemp("faults")
    file = folder / "faults.toml"
    file.write_text(EXPERIMENT)
    out = folder / "run"
    record = Journey()
    record.out = out
    record.reference = runner.run_experiment(experiment.load(file), None, progress="off").frame
    mask = os.umask(0o027)
    patch = pytest.MonkeyPatch()
    original = results.write_part
    try:
        def interrupt_after_chunk_3(run_dir, variant, env, chunk, table):
            path = original(run_dir, variant, env, chunk, table)
            if chunk == 2:  # a real SIGINT, inside the chunk's save
                os.kill(os.getpid(), signal.SIGINT)
            return path

        patch.setattr(results, "write_part", interrupt_after_chunk_3)
        with sigint_handler(signal.default_int_handler):  # as in a terminal, even under nohup
            record.interrupted = _cli(["train", str(file), "--out", str(out), "--progress",
                                       "off"])
        record.interrupted_parts = parts(out)
        record.interrupted_steps = sorted(os.listdir(out / "checkpoints" / "program-000"))
        record.summary = _cli(["summary", str(out), "--reps", "50"])
        record.diagnose = _cli(["diagnose", str(out)])
        record.diagnosis_md = (out / "diagnosis.md").read_text()
        record.modes = {name: (out / name).stat().st_mode & 0o777
                        for name in ("run.json", "metrics/" + chunk_names(1)[0], "summary.md")}

        flip_a_byte(out / "checkpoints" / "program-000" / "3")
        stale = [out / "metrics" / ".standard__CartPole-v1__00003.parquet.k2j4_x9a",
                 out / ".run.json.a1b2c3d4"]
        for path in stale:
            path.write_bytes(b"")
        (out / ".keep").write_text("a user's file")

        def disk_full_at_chunk_5(run_dir, variant, env, chunk, table):
            if chunk == 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                              str(results.part_path(run_dir, variant, env, chunk)))
            return original(run_dir, variant, env, chunk, table)

        patch.setattr(results, "write_part", disk_full_at_chunk_5)
        record.disk_full = _cli(["resume", str(out), "--progress", "off"])
        record.stale_left = [p for p in stale if p.exists()]
        record.user_file_kept = (out / ".keep").exists()
        record.disk_full_parts = parts(out)
        patch.undo()
        record.finished = _cli(["resume", str(out), "--progress", "off"])
        record.frame = results.read_metrics(out)
    finally:
        patch.undo()
        os.umask(mask)
    record.file = file
    return record


def _cli(argv):
    """(exit code, stdout, stderr) of `jppo ARGV` in this process."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_ctrl_c_saves_the_chunk_then_names_the_resume_command(journey):
    """SIGINT during chunk 3's save: the chunk and its checkpoint are written
    whole, then one line says what is kept and the exact command that resumes."""
    code, _, err = journey.interrupted
    assert code == 130
    assert err.strip().splitlines() == [
        "jppo: Ctrl-C: saving the finished chunk first (Ctrl-C again stops at once)",
        f"jppo: interrupted: nothing finished is lost: {journey.out} holds 3 of 6 chunks; "
        f"resume with: jppo resume {journey.out}"]
    assert journey.interrupted_parts == chunk_names(3)
    assert journey.interrupted_steps[-2:] == ["2", "3"]  # checkpoint 3 was not cut short


def test_incomplete_runs_are_labelled_in_summary_and_diagnosis(journey):
    label = "standard / CartPole-v1: incomplete: 6 of 12 updates"
    for code, stdout, _ in (journey.summary, journey.diagnose):
        assert code == 0 and label in stdout
    assert label in journey.diagnosis_md
    _, stdout, _ = journey.finished  # the finished run's reports carry no label
    assert "incomplete" not in stdout and "incomplete" not in (
        journey.out / "summary.md").read_text()


def test_run_files_get_the_umask_mode(journey):
    """Files are 0666 less the umask (0027 here), not mkstemp's 0600."""
    assert journey.modes == {"run.json": 0o640, "metrics/" + chunk_names(1)[0]: 0o640,
                             "summary.md": 0o640}


def test_a_damaged_checkpoint_is_skipped_for_the_newest_readable_one(journey):
    _, _, err = journey.disk_full
    assert ("jppo: resume: CartPole-v1 · standard: skipped checkpoint 3 (its files changed "
            "since they were written (checksum mismatch)); resuming from checkpoint 2") in err


def test_disk_full_names_path_and_reason_and_keeps_finished_chunks(journey):
    code, _, err = journey.disk_full
    part = results.part_path(journey.out, "standard", "CartPole-v1", 4)
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"jppo: error: cannot write the run directory: {str(part)!r}: No space left on device "
        f"[errno 28]; nothing finished is lost: {journey.out} holds 4 of 6 chunks; fix that, "
        f"then resume with: jppo resume {journey.out}")
    assert "Traceback" not in err
    assert journey.disk_full_parts == chunk_names(4)


def test_resume_removes_stale_temporaries_only(journey):
    assert journey.stale_left == [] and journey.user_file_kept


def test_jppo_resume_finishes_bitwise_equal_to_an_uninterrupted_run(journey):
    """Through a Ctrl-C, a damaged checkpoint and a full disk, `jppo resume RUN`
    (no flag retyped, reward_scale included) gives the uninterrupted metrics."""
    code, _, err = journey.finished
    assert code == 0, err
    pd.testing.assert_frame_equal(journey.frame, journey.reference, check_exact=True)


def test_resume_mismatch_names_each_field_with_both_values(journey, capsys):
    argv = ["train", str(journey.file), "--out", str(journey.out), "--resume", "--seeds", "3",
            "--set", "num_envs=8"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "seeds: recorded 2, now 3" in err and "config.num_envs: recorded 4, now 8" in err
    assert f"`jppo resume {journey.out}`" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["file", "under_a_file", "read_only", "refused"])
def test_unwritable_out_fails_in_one_line_before_compiling(case, tmp_path, monkeypatch, capsys):
    """Checked before any compile (a compile here fails the test). Tests may run
    as root, whom chmod does not stop, so a read-only folder is os.access saying
    no and a refusing file system is mkdir raising, as on /proc or a full disk."""
    monkeypatch.setattr(execution, "compile_chunk", _never)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out, expected = {
        "file": (blocker, f"out={str(blocker)!r} is a file, not a directory: choose a directory"),
        "under_a_file": (blocker / "run", f"out={str(blocker / 'run')!r} cannot be created: "
                                          f"{str(blocker)!r} is a file, not a directory"),
        "read_only": (tmp_path / "ro" / "run", f"out={str(tmp_path / 'ro' / 'run')!r} cannot "
                      f"be created: {str(tmp_path)!r} refuses writes (Permission denied)"),
        "refused": (tmp_path / "full", f"out={str(tmp_path / 'full')!r} cannot be created: "
                    f"{str(tmp_path / 'full')!r}: No space left on device [errno 28]"),
    }[case]
    if case == "read_only":
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    if case == "refused":
        def refuse(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        monkeypatch.setattr(Path, "mkdir", refuse)
    assert cli.main(["train", "--out", str(out), "--seeds", "2", "--progress", "off"]) == 1
    err = capsys.readouterr().err
    assert err == f"jppo: error: {expected}\n"


def _never(*args, **kwargs):
    raise AssertionError("compiled before the output folder was checked")


# ---------------------------------------------------------------- checkpoints
def toy_manager(tmp_path):
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("seeds",))
    sharding = NamedSharding(mesh, PartitionSpec("seeds"))
    manager = checkpoint.manager(tmp_path, "program-000")
    states = {step: {"w": jnp.full((2, 50_000), float(step))} for step in (1, 2)}
    for step, state in states.items():
        checkpoint.save(manager, step, state, 2)
    shapes = jax.eval_shape(lambda: states[1])
    return manager, shapes, sharding


def test_checkpoint_fallback_without_digests_uses_the_restore_error(tmp_path):
    """A run from before digests existed: a step that orbax cannot read is skipped,
    with orbax's first line as the reason, and deleted so it can be written again."""
    manager, shapes, sharding = toy_manager(tmp_path)
    checkpoint.digest_path(tmp_path / "checkpoints" / "program-000").unlink()
    (tmp_path / "checkpoints" / "program-000" / "2" / "default" / "_METADATA").write_text("{")
    restored = checkpoint.restore_newest_readable(manager, shapes, 2, sharding)
    assert restored.step == 1 and float(restored.state["w"][0, 0]) == 1.0
    assert [step for step, _ in restored.skipped] == [2]
    assert "\n" not in restored.skipped[0][1]
    checkpoint.drop(manager, [2])
    assert manager.all_steps() == [1]


def test_zero_size_arrays_in_the_state_checkpoint_and_restore_padded(tmp_path):
    """Orbax refuses zero-size arrays, which an MJX physics state holds (`act` of a
    model without actuator activations): they are stood in for and rebuilt, and the
    other leaves restore as saved, padded to the device batch by repeating the last run."""
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("seeds",))
    sharding = NamedSharding(mesh, PartitionSpec("seeds"))
    manager = checkpoint.manager(tmp_path, "program-000")
    state = {"act": jnp.zeros((3, 0), jnp.float32), "qpos": jnp.arange(6.0).reshape(3, 2),
             "time": jnp.asarray([4, 5, 6], jnp.int32), "empty": jnp.zeros((3, 2, 0), jnp.int32)}
    checkpoint.save(manager, 1, state, 2)  # 2 real runs of a batch padded to 3
    restored = checkpoint.restore_newest_readable(
        manager, jax.eval_shape(lambda: state), 2, sharding)
    assert restored.step == 1 and restored.skipped == []
    got = restored.state
    assert got["act"].shape == (3, 0) and got["act"].dtype == jnp.float32
    assert got["empty"].shape == (3, 2, 0) and got["empty"].dtype == jnp.int32
    np.testing.assert_array_equal(got["qpos"], [[0.0, 1.0], [2.0, 3.0], [2.0, 3.0]])
    np.testing.assert_array_equal(got["time"], [4, 5, 5])


def test_no_readable_checkpoint_is_one_line(tmp_path):
    manager, shapes, sharding = toy_manager(tmp_path)
    for step in (1, 2):
        flip_a_byte(tmp_path / "checkpoints" / "program-000" / str(step))
    with pytest.raises(faults.RunError) as error:
        checkpoint.restore_newest_readable(manager, shapes, 2, sharding)
    assert str(error.value) == (
        f"resume: no readable checkpoint in {str(tmp_path / 'checkpoints' / 'program-000')!r} "
        "(checkpoint 2: its files changed since they were written (checksum mismatch); "
        "checkpoint 1: its files changed since they were written (checksum mismatch)); "
        "start a new run directory")


def test_a_failed_checkpoint_write_surfaces_at_once_with_the_os_reason(tmp_path):
    """A real OS refusal inside orbax's writer (the file-size limit stands in for a
    full disk, which a test cannot make): the save itself raises, in one line."""
    manager, _, _ = toy_manager(tmp_path)
    state = {"w": jax.random.uniform(jax.random.PRNGKey(0), (2, 50_000))}  # incompressible
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(faults.RunError) as error:
            checkpoint.save(manager, 3, state, 2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    folder = tmp_path / "checkpoints" / "program-000"
    assert str(error.value) == f"cannot write checkpoint 3 to {str(folder)!r}: File too large " \
                               "[errno 27]"
    assert manager.all_steps() == [1, 2]


def test_old_run_directories_give_a_one_line_resume_error(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"name": "old"}))
    with pytest.raises(ValueError, match="records no experiment; resume it with the original"):
        rundir.recorded_experiment(tmp_path)


@contextlib.contextmanager
def sigint_handler(handler):
    """SIGINT handled by `handler` inside the block, whatever the test started with
    (`nohup make test` starts it ignored); the starting handler after."""
    started = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, started)


def test_ctrl_c_is_held_until_the_save_ends_and_a_second_one_stops_at_once(capsys):
    reached = []
    with sigint_handler(signal.default_int_handler):
        with pytest.raises(KeyboardInterrupt), faults.deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("held")
        with pytest.raises(KeyboardInterrupt), faults.deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("not reached")
        assert reached == ["held"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert "Ctrl-C again stops at once" in capsys.readouterr().err


@pytest.mark.parametrize("handler", [signal.default_int_handler, signal.SIG_IGN],
                         ids=["default", "ignored"])
def test_the_handler_a_process_started_with_is_kept_and_an_ignored_sigint_stays_ignored(
        handler, capsys):
    """Under `nohup` SIGINT is ignored: a stray one during a save must not stop the
    run, and after the save the handler is the one the process started with."""
    with sigint_handler(handler):
        started = signal.getsignal(signal.SIGINT)
        if handler is signal.SIG_IGN:
            with faults.deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
                assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert "Ctrl-C" not in capsys.readouterr().err
        else:
            with pytest.raises(KeyboardInterrupt), faults.deferred_interrupt():
                assert signal.getsignal(signal.SIGINT) is not started  # held meanwhile
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is started
