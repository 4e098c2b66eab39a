"""Two processes on 127.0.0.1, joined by `jax.distributed` (CPU collectives over
gloo), run one experiment: the mesh spans both processes' devices, the metrics
equal a one-process run on as many devices bitwise, only process 0 writes them,
orbax checkpoints hold both processes' shards, and a run stopped after two
chunks resumes (through the `jppo` command's --coordinator flags) to the same
metrics."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import with_devices

from jppo.runs import multihost, results

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds per launch; CI's 2 cores compile each program in ~15 s

EXPERIMENT = textwrap.dedent("""
    name = "multihost"
    envs = ["CartPole-v1"]
    seeds = 3
    total_timesteps = 384
    chunk_updates = 2

    [config]
    num_envs = 4
    num_steps = 16
    update_epochs = 2
    num_minibatches = 2

    [variants.standard]
    [variants.low_vf]
    vf_coef = 0.1
""")  # 2 variants x 3 seeds = 6 runs; 6 updates in 3 chunks

WORKER = textwrap.dedent("""
    import json, sys
    from jppo.runs import multihost
    file, out, stop, process_id, num_processes, port = sys.argv[1:]
    if int(num_processes) > 1:
        multihost.initialize(f"127.0.0.1:{port}", int(num_processes), int(process_id))
    import jax
    from jppo.runs import experiment, runner
    stop = None if stop == "none" else int(stop)
    result = runner.run_experiment(experiment.load(file), out, progress="lines",
                                   stop_after_chunks=stop)
    state = result.states["program-000"]
    try:
        runner.seed_mesh(2)
        too_few = "accepted"
    except ValueError as error:
        too_few = str(error)
    print(json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()),
                      "state_devices": len(state.obs.sharding.device_set),
                      "rows": len(result.frame), "too_few": too_few}))
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(commands: list[tuple[list[str], int]], logs: Path) -> list[str]:
    """Start the (command, local device count) pairs at once, wait for all; on a
    failure or a timeout stop the rest and fail with every process's output.
    Returns their stdouts. They keep the session's XLA_FLAGS (tests/conftest.py:
    XLA optimizes less, alike in every run, so the runs still compare bitwise)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))  # the code under test, wherever pytest runs
    logs.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        procs = [subprocess.Popen(cmd, cwd=REPO, env=env | {"XLA_FLAGS": with_devices(devices)},
                                  stdout=stack.enter_context(open(logs / f"{i}.out", "w")),
                                  stderr=stack.enter_context(open(logs / f"{i}.err", "w")))
                 for i, (cmd, devices) in enumerate(commands)]
        deadline = time.monotonic() + TIMEOUT
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break  # one failed: the others would wait for it
            time.sleep(0.2)
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    outputs = [((logs / f"{i}.out").read_text(), (logs / f"{i}.err").read_text())
               for i in range(len(procs))]
    if any(p.returncode != 0 for p in procs):
        report = "\n".join(f"--- process {i} (exit {p.returncode})\nstdout:\n{o[-2000:]}\n"
                           f"stderr:\n{e[-3000:]}"
                           for i, (p, (o, e)) in enumerate(zip(procs, outputs, strict=True)))
        pytest.fail(f"a process failed or timed out (limit {TIMEOUT} s):\n{report}")
    return [o for o, _ in outputs]


def worker(file: Path, out: Path, stop: int | None, process_id: int, num_processes: int,
           port: int) -> list[str]:
    return [sys.executable, "-c", WORKER, str(file), str(out), str(stop or "none"),
            str(process_id), str(num_processes), str(port)]


def cli(file: Path, out: Path, process_id: int, port: int) -> list[str]:
    return [sys.executable, "-m", "jppo.cli", "compare", str(file), "--out", str(out),
            "--resume", "--progress", "off", "--coordinator", f"127.0.0.1:{port}",
            "--num-processes", "2", "--process-id", str(process_id)]


def test_two_processes_equal_one_and_resume(tmp_path):
    file = tmp_path / "multihost.toml"
    file.write_text(EXPERIMENT)
    reference_dir, run = tmp_path / "one-process", tmp_path / "two-processes"

    # alongside, one process with 4 devices: it uses 3 of them (2 runs each), while
    # the mesh of 2 processes x 2 devices spans all 4 (6 runs padded to 8): the same
    # per-device batch, so the same arithmetic
    port = free_port()
    *stopped, _ = launch([(worker(file, run, 2, i, 2, port), 2) for i in range(2)]
                         + [(worker(file, reference_dir, None, 0, 1, 0), 4)],
                         tmp_path / "logs-stopped")
    reference = results.read_metrics(reference_dir)
    assert len(reference) == 2 * 3 * 6
    reports = [json.loads(out.strip().splitlines()[-1]) for out in stopped]
    partial = results.read_metrics(run)
    too_few = ("devices=2 is invalid with 2 processes: allowed is None or 4 (every device "
               "of every process)")
    assert all(r == {"processes": 2, "devices": 4, "state_devices": 4, "rows": len(partial),
                     "too_few": too_few} for r in reports), reports
    assert "CartPole-v1" in stopped[0] and "CartPole-v1" not in stopped[1], \
        "process 0 alone shows progress"
    assert len(partial) == 2 * 3 * 4  # chunks 1 and 2 of 3
    keys = list(results.ID_COLUMNS[:4])
    pd.testing.assert_frame_equal(partial, reference.merge(partial[keys], on=keys),
                                  check_exact=True)
    shards = {p.name for p in (run / "checkpoints/program-000/2/default").iterdir()}
    assert {"ocdbt.process_0", "ocdbt.process_1"} <= shards, shards

    port = free_port()
    resumed = launch([(cli(file, run, i, port), 2) for i in range(2)], tmp_path / "logs-resumed")
    pd.testing.assert_frame_equal(results.read_metrics(run), reference, check_exact=True)
    assert "IQM" in resumed[0] and (run / "summary.md").exists()
    assert "process 1: done" in resumed[1] and "IQM" not in resumed[1]


def test_bad_process_flags_fail_in_one_line_before_joining():
    for args, message in [
        (("127.0.0.1", 2, 0), "coordinator='127.0.0.1' is invalid"),
        (("127.0.0.1:99999", 2, 0), "coordinator='127.0.0.1:99999' is invalid"),
        (("127.0.0.1:1234", 0, 0), "num_processes=0 is invalid"),
        (("127.0.0.1:1234", 2, 2), r"process_id=2 is invalid: allowed is 0\.\.1"),
    ]:
        with pytest.raises(ValueError, match=message):
            multihost.initialize(*args)


def test_cli_process_flags_need_a_coordinator_and_a_run_directory(capsys):
    from jppo import cli

    assert cli.main(["train", "--num-processes", "2", "--process-id", "1"]) == 2
    assert "--num-processes and --process-id need --coordinator" in capsys.readouterr().err
    assert cli.main(["train", "--coordinator", "127.0.0.1:1234", "--num-processes", "2"]) == 2
    assert "--coordinator needs --out" in capsys.readouterr().err


def train_cli(file: Path, out: Path, process_id: int, port: int | None) -> list[str]:
    join = [] if port is None else ["--coordinator", f"127.0.0.1:{port}", "--num-processes",
                                    "2", "--process-id", str(process_id)]
    return [sys.executable, "-m", "jppo.cli", "train", str(file), "--out", str(out),
            "--progress", "lines", *join]


def test_train_and_resume_with_the_process_flags(tmp_path):
    """`jppo train --coordinator ...` joins before anything starts JAX (it used to
    die: 'initialize() must be called before any JAX calls'), equals a one-process
    run on as many devices bitwise, and `jppo resume` takes the same flags."""
    file = tmp_path / "multihost.toml"
    file.write_text(EXPERIMENT)
    run, reference_dir = tmp_path / "two-processes", tmp_path / "one-process"
    port = free_port()
    trained = launch([(train_cli(file, run, i, port), 2) for i in range(2)]
                     + [(train_cli(file, reference_dir, 0, None), 4)], tmp_path / "logs-train")
    reference = results.read_metrics(reference_dir)
    assert len(reference) == 3 * 6 and set(reference["variant"]) == {"standard"}
    pd.testing.assert_frame_equal(results.read_metrics(run), reference, check_exact=True)
    assert "IQM" in trained[0] and "process 1: done" in trained[1]
    errors = [(tmp_path / "logs-train" / f"{i}.err").read_text() for i in range(2)]
    assert errors[0].count("waiting up to 300 s for the other 1 process(es)") == 1, errors[0]
    assert errors[1].count(f"joining the coordinator at 127.0.0.1:{port}; waiting up to "
                           "300 s") == 1, errors[1]

    port = free_port()
    resume = [sys.executable, "-m", "jppo.cli", "resume", str(run), "--progress", "off",
              "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    resumed = launch([([*resume, "--process-id", str(i)], 2) for i in range(2)],
                     tmp_path / "logs-resume")
    pd.testing.assert_frame_equal(results.read_metrics(run), reference, check_exact=True)
    assert "IQM" in resumed[0] and "process 1: done" in resumed[1]


@pytest.mark.parametrize("process_id", [0, 1])
def test_a_process_whose_peers_never_come_says_so_once_then_ends_in_one_line(
        tmp_path, process_id):
    port = free_port()
    done = subprocess.run([*train_cli(tmp_path / "none.toml", tmp_path / "run", process_id,
                                      port), "--join-timeout", "2"],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    waited = "the other processes" if process_id == 0 else \
        "the coordinator (process 0) or the other processes"
    assert done.returncode == 1 and len(lines) == 2, done.stderr
    assert lines[0].startswith(f"jppo: process {process_id} of 2: ")
    assert f"127.0.0.1:{port}; waiting up to 2 s" in lines[0]
    assert lines[1] == (f"jppo: error: process {process_id} of 2: {waited} did not join at "
                        f"127.0.0.1:{port} within 2 s; start every process with the same "
                        "--coordinator and --num-processes (and distinct --process-id), or "
                        "raise --join-timeout")
    assert not (tmp_path / "run").exists()
