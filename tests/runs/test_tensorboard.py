"""Live TensorBoard dashboards: the event files, read back record by record, hold
each variant's median and IQR across seeds per update, at the env steps per seed
after it, written after every chunk (of a run whose variants come from a [sweep])."""

import struct
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tensorboardX.proto import event_pb2

from jppo import cli
from jppo.runs import experiment, results, runner, tensorboard
from jppo.runs.progress import ProgressView


def read_scalars(folder) -> dict[str, dict[int, float]]:
    """Every scalar of the event files in `folder`: tag -> {step: value}. An event
    file is a sequence of records: u64 length, u32 CRC, the `Event` proto, u32 CRC."""
    found: dict[str, dict[int, float]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                assert value.tag not in found or event.step not in found[value.tag]
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_median_and_iqr_of_a_hand_made_chunk(tmp_path):
    """Seeds [1, 2, 3, 4]: median 2.5, q25 1.75, q75 3.25 (linear), IQR 1.5;
    [NaN, 5, NaN, 7]: median 6, IQR 6.5 - 5.5 = 1; all NaN: no point."""
    returns = np.array([[1.0, np.nan, np.nan], [2.0, 5.0, np.nan],
                        [3.0, np.nan, np.nan], [4.0, 7.0, np.nan]])
    table = results.metrics_table({"episode_return": returns, "value_loss": np.ones((4, 3))},
                                  variant="a", env="brax/ant", seeds=range(4), first_update=10,
                                  steps_per_update=64)
    with tensorboard.Board(tmp_path) as board:
        board.write([table])
    scalars = read_scalars(tmp_path / "a")
    assert set(scalars) == {"brax_ant/episode_return/median", "brax_ant/episode_return/iqr",
                            "brax_ant/value_loss/median", "brax_ant/value_loss/iqr"}
    # update 10 ends at (10 + 1) * 64 env steps per seed; '/' cannot be in a tag part
    assert scalars["brax_ant/episode_return/median"] == {704: 2.5, 768: 6.0}
    assert scalars["brax_ant/episode_return/iqr"] == {704: 1.5, 768: 1.0}
    assert scalars["brax_ant/value_loss/iqr"] == {704: 0.0, 768: 0.0, 832: 0.0}


TINY = textwrap.dedent("""
    envs = ["CartPole-v1"]
    seeds = 3
    total_timesteps = 384
    chunk_updates = 3
    tensorboard = true
    [config]
    num_envs = 4
    num_steps = 16
    num_minibatches = 2
    [sweep]
    vf_coef = [0.1, 1.0]
""")


class StepsSeen(ProgressView):
    """Records, at each progress update (after a chunk), the steps on the board."""

    def __init__(self, folder):
        super().__init__("off")
        self.folder, self.seen = folder, []

    def update(self, *args, **kwargs):
        scalars = read_scalars(self.folder)
        self.seen.append(sorted(scalars["CartPole-v1/episode_length/median"]))


def test_event_files_hold_the_median_and_iqr_across_seeds(tmp_path):
    file = tmp_path / "tiny.toml"
    file.write_text(TINY)
    out = tmp_path / "run"
    view = StepsSeen(out / "tensorboard" / "vf_coef=0.1")
    result = runner.run_experiment(experiment.load(file), out, progress=view)
    assert view.seen == [[64, 128, 192], [64, 128, 192, 256, 320, 384]]  # after every chunk
    # the [sweep] points: one compiled program, named in the frame, files and run.json
    assert len(result.timings) == 1
    assert list(result.frame["variant"].unique()) == ["vf_coef=0.1", "vf_coef=1.0"]
    assert (out / "metrics" / "vf_coef=0.1__CartPole-v1__00001.parquet").is_file()
    assert list(results.read_run_info(out)["variants"]) == ["vf_coef=0.1", "vf_coef=1.0"]
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["vf_coef=0.1",
                                                                      "vf_coef=1.0"]
    for variant in ("vf_coef=0.1", "vf_coef=1.0"):
        scalars = read_scalars(out / "tensorboard" / variant)
        arrays = results.metric_arrays(result.frame, variant, "CartPole-v1")
        assert {tag.split("/")[1] for tag in scalars} == set(tensorboard.METRICS)
        for metric in tensorboard.METRICS:
            values = arrays[metric]
            finite = ~np.all(np.isnan(values), axis=0)
            steps = arrays["env_steps"][0][finite]
            median = np.nanmedian(values[:, finite], axis=0)
            q25, q75 = np.nanpercentile(values[:, finite], [25, 75], axis=0)
            got = scalars[f"CartPole-v1/{metric}/median"]
            assert sorted(got) == steps.tolist(), metric
            np.testing.assert_allclose([got[s] for s in steps], median, rtol=1e-6, atol=1e-7)
            iqr = scalars[f"CartPole-v1/{metric}/iqr"]
            np.testing.assert_allclose([iqr[s] for s in steps], q75 - q25, rtol=1e-6,
                                       atol=1e-7, err_msg=metric)


def test_tensorboard_needs_a_run_directory_and_the_flag_sets_it(tmp_path):
    file = tmp_path / "tiny.toml"
    file.write_text(TINY)
    with pytest.raises(ValueError, match=r"^tensorboard=True is invalid without a run "
                       r"directory: allowed is an out_dir"):
        runner.run_experiment(experiment.load(file), None, progress="off")
    file.write_text(TINY.replace("tensorboard = true\n", ""))
    assert experiment.load(file).tensorboard is False
    assert cli._load(str(file), (), cli.RunOptions(tensorboard=True)).tensorboard is True
    with pytest.raises(ValueError, match=r"tensorboard='yes' is invalid: allowed is true or "
                       r"false"):
        experiment.load(file, tensorboard="yes")


def test_a_disabled_board_writes_nothing(tmp_path):
    board = tensorboard.open_board(tmp_path, enabled=False)
    table = pa.Table.from_pandas(pd.DataFrame({
        "variant": ["a"], "env": ["e"], "seed": [0], "update": [0], "env_steps": [8],
        "episode_return": [1.0]}))
    board.write([table])
    board.close()
    assert list(tmp_path.iterdir()) == []
