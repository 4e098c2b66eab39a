"""Diagnosing other trainers' logs: SB3 and CleanRL read from committed real fixtures
(experiments/external_logs/fixtures, made by generate.py) and checked against the raw
file read independently (the csv module; TensorBoard records parsed from their framing
with the Event proto), the unit conversions against hand computations, the rules that
cannot run listed with the metric they lack, and one-line errors for bad input."""

import csv
import json
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jppo import cli
from jppo.analysis.logs import LogError, brax, cleanrl, diagnose_logs, discover, sb3
from jppo.analysis.logs.base import Options

FIXTURES = Path(__file__).parents[2] / "experiments" / "external_logs" / "fixtures"
SB3_RUN = FIXTURES / "sb3" / "sb3_tiny_lr" / "seed1"
CLEANRL_GROUP = FIXTURES / "cleanrl" / "cleanrl_healthy"
PENDULUM_GROUP = FIXTURES / "cleanrl" / "cleanrl_pendulum_healthy"


def raw_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)], parsed from the TFRecord framing (8-byte length, 4-byte
    crc, payload, 4-byte crc) with TensorBoard's Event proto: no EventAccumulator."""
    from tensorboard.compat.proto.event_pb2 import Event

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 16 + length
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def csv_rows(path: Path) -> list[dict[str, float]]:
    with path.open() as file:
        return [{k: float(v) if v else math.nan for k, v in row.items()}
                for row in csv.DictReader(file)]


def load(path: Path, source: str = "auto", options: Options | None = None):
    (run,) = discover.find_runs(path)
    return discover.load_run(run, source, options or Options(), None)


# ----------------------------------------------------------------- SB3


def test_sb3_progress_csv_shifts_train_values_to_the_update_they_describe():
    rows = csv_rows(SB3_RUN / "progress.csv")
    metrics = load(SB3_RUN).normalised.metrics
    assert len(metrics) == len(rows) - 1  # the last rollout's update is never dumped
    for u in (0, 5, len(metrics) - 1):
        own, train = rows[u], rows[u + 1]
        assert metrics["env_steps"][u] == own["time/total_timesteps"]
        assert metrics["episode_return"][u] == pytest.approx(own["rollout/ep_rew_mean"])
        assert metrics["value_loss"][u] == pytest.approx(0.5 * train["train/value_loss"])
        assert metrics["entropy"][u] == pytest.approx(-train["train/entropy_loss"])
        assert metrics["approx_kl"][u] == pytest.approx(train["train/approx_kl"])
        assert metrics["lr_policy"][u] == pytest.approx(train["train/learning_rate"])
    # n_updates counts epochs: 10 per update (SB3's n_epochs), none cut
    assert list(metrics["epochs_completed"]) == [10.0] * len(metrics)


def test_sb3_tensorboard_folder_reads_as_its_progress_csv():
    (event_file,) = SB3_RUN.glob("events.out.tfevents.*")
    # the folder alone is read from its event files (find_runs prefers the csv beside them)
    from_tb = discover.load_run(SB3_RUN, "auto", Options(), None).normalised.metrics
    from_csv = load(SB3_RUN).normalised.metrics
    events = raw_events(SB3_RUN)
    steps = [s for s, _ in events["train/value_loss"]]
    assert from_tb["value_loss"][0] == pytest.approx(0.5 * events["train/value_loss"][0][1])
    assert from_tb["env_steps"][0] == steps[0] - (steps[1] - steps[0])  # one dump before
    np.testing.assert_allclose(from_tb["value_loss"], from_csv["value_loss"], rtol=1e-6)
    assert from_tb["epochs_completed"].isna().all()  # n_updates is kept out of TensorBoard
    assert event_file.stat().st_size < 50_000


def test_sb3_config_and_source_are_read_from_the_logs():
    run = load(FIXTURES / "sb3" / "sb3_rewards_x1000_vclip" / "seed1")
    assert run.source == "sb3" and run.group == "sb3_rewards_x1000_vclip"
    assert run.normalised.config["value_loss"] == "clipped"
    assert run.normalised.config["value_clip_eps"] == pytest.approx(0.2)
    assert run.normalised.config["update_epochs"] == 10
    assert run.normalised.config["kl_early_stop"] is False


# ------------------------------------------------------------- CleanRL


def test_cleanrl_losses_and_episode_means_against_the_raw_events():
    folder = sorted(CLEANRL_GROUP.iterdir())[0]
    run = load(folder)
    metrics, events = run.normalised.metrics, raw_events(folder)
    steps = [s for s, _ in events["losses/value_loss"]]
    assert run.source == "cleanrl" and run.normalised.env == "CartPole-v1"
    assert list(metrics["env_steps"]) == steps
    assert list(metrics["value_loss"]) == pytest.approx([v for _, v in
                                                         events["losses/value_loss"]])
    u = 4
    episodes = [v for s, v in events["charts/episodic_return"] if steps[u - 1] < s <= steps[u]]
    assert metrics["episode_return"][u] == pytest.approx(np.mean(episodes))
    assert metrics["episodes_finished"][u] == len(episodes)
    assert metrics["clip_fraction"][u] == pytest.approx(events["losses/clipfrac"][u][1])
    config = run.normalised.config
    assert (config["lr"], config["update_epochs"], config["num_minibatches"]) == (2.5e-4, 4, 4)
    assert config["value_loss"] == "clipped" and "kl_early_stop" not in config


def test_cleanrl_gaussian_entropy_becomes_the_mean_log_std():
    folder = sorted(PENDULUM_GROUP.iterdir())[0]
    metrics = load(folder).normalised.metrics
    entropy = [v for _, v in raw_events(folder)["losses/entropy"]]
    # Pendulum: one action dimension; H = 0.5 (1 + log 2 pi) + log std
    expected = np.asarray(entropy) - 0.5 * (1 + math.log(2 * math.pi))
    np.testing.assert_allclose(metrics["log_std_mean"], expected, rtol=1e-6)
    assert "entropy" not in metrics.columns  # no discrete-entropy ratio on a Gaussian


def test_cleanrl_hyperparameters_text_sets_the_config():
    params = cleanrl.hyperparameters({"hyperparameters": "|param|value|\n|-|-|\n"
                                      "|learning_rate|0.001|\n|target_kl|0.015|\n"
                                      "|clip_vloss|False|\n|norm_adv|False|\n"})
    config = cleanrl._config(params)
    assert config["lr"] == 0.001 and config["value_loss"] == "mse"
    assert config["advantage_norm"] == "off"
    assert config["kl_early_stop"] and config["target_kl"] == pytest.approx(0.01)


# ------------------------------------------------------- Brax, W&B, plain


def test_brax_coefficients_are_divided_out(tmp_path):
    rows = [{"num_steps": 0, "eval/episode_reward": 5.0},
            *({"num_steps": 100 * k, "training/v_loss": 0.25 * k, "training/entropy_loss":
               -2e-4 * k, "training/policy_loss": 0.1, "training/kl_mean": 1e-3,
               "training/policy_dist_mean_std": 0.5, "eval/episode_reward": 10.0 * k}
              for k in range(1, 4))]
    path = tmp_path / "progress.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    run = discover.load_run(path, "auto", Options(settings={"entropy_cost": 1e-3}), None)
    metrics = run.normalised.metrics
    assert run.source == "brax" and list(metrics["env_steps"]) == [100, 200, 300]
    assert list(metrics["value_loss"]) == pytest.approx([0.5, 1.0, 1.5])  # / 0.5 (default)
    assert list(metrics["entropy"]) == pytest.approx([0.2, 0.4, 0.6])  # / -1e-3
    assert list(metrics["log_std_mean"]) == pytest.approx([math.log(0.5)] * 3)
    assert list(metrics["episode_return"]) == [10.0, 20.0, 30.0]
    assert run.normalised.config["ent_coef"] == 1e-3


def test_a_wandb_history_csv_is_read_by_its_trainer_names(tmp_path):
    path = tmp_path / "wandb_export.csv"
    path.write_text("_step,_runtime,_timestamp,global_step,losses/value_loss,"
                    "losses/explained_variance,charts/episodic_return\n"
                    "0,1.0,1700000000,512,4.0,0.1,\n"
                    "1,1.5,1700000001,600,,,20\n"
                    "2,2.0,1700000002,1024,3.0,0.2,\n")
    run = discover.load_run(path, "auto", Options(), None)
    metrics = run.normalised.metrics
    assert run.source == "cleanrl" and list(metrics["env_steps"]) == [512, 1024]
    assert list(metrics["value_loss"]) == [4.0, 3.0]
    assert np.isnan(metrics["episode_return"][0]) and metrics["episode_return"][1] == 20


def test_plain_csv_with_a_map_and_a_scale(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("iteration_steps,critic_mse,ev\n100,8.0,0.5\n200,6.0,0.25\n")
    toml = tmp_path / "map.toml"
    toml.write_text('[map]\nvalue_loss = "critic_mse"\nenv_steps = "iteration_steps"\n'
                    '[scale]\nvalue_loss = 0.5\n[config]\nupdate_epochs = 8\n')
    options = discover.read_options(["explained_variance=ev"], toml)
    run = discover.load_run(path, "csv", options, None)
    metrics = run.normalised.metrics
    assert list(metrics["value_loss"]) == [4.0, 3.0]  # 0.5 x the full squared error
    assert list(metrics["explained_variance"]) == [0.5, 0.25]
    assert list(metrics["env_steps"]) == [100, 200]
    assert run.normalised.config["update_epochs"] == 8


# ------------------------------------------------------------ diagnosis


def test_rules_without_their_metrics_are_listed_as_not_judged():
    found = diagnose_logs(FIXTURES / "sb3" / "sb3_healthy")
    by_rule = {f.rule: f for f in found.findings}
    assert by_rule["value_dominance"].missing == ("grad_norm_value", "grad_norm_policy",
                                                  "grad_clip_ratio")
    assert by_rule["throttled_updates"].missing == ("grad_clip_ratio",)
    assert not by_rule["critic_collapse"].missing
    assert by_rule["critic_collapse"].unlogged == ("value_mean", "target_mean", "target_std")
    assert by_rule["exploding_value_loss"].criterion.startswith("value loss and explained")
    text = found.markdown
    assert "**Value dominance**: not judged: grad_norm_value" in text
    assert "class JppoDiagnostics(BaseCallback)" in text  # the SB3 lines that log it
    assert "6 of 8 rules judged" in text
    assert "not judged, metrics not logged: Value dominance" in found.terminal


def test_seeds_of_one_config_form_one_cell_and_configs_are_compared():
    found = diagnose_logs([CLEANRL_GROUP, FIXTURES / "cleanrl" / "cleanrl_tiny_lr"],
                          group=r"cleanrl/(\w+)/")
    cells = {(f.variant, f.num_seeds) for f in found.findings}
    assert cells == {("cleanrl_healthy", 3), ("cleanrl_tiny_lr", 3)}
    stall = next(f for f in found.findings if f.variant == "cleanrl_tiny_lr"
                 and f.rule == "policy_stall")
    assert stall.fired and stall.seeds == [0, 1, 2]
    # the evidence names the trainer's tag each metric was converted from
    assert {"approx_kl (from losses/approx_kl)", "clip_fraction (from losses/clipfrac)",
            "episode_return (from charts/episodic_return)"} <= set(stall.evidence.columns)


def test_a_typo_in_map_or_an_unknown_source_is_a_one_line_error(capsys):
    assert cli.main(["diagnose", str(SB3_RUN), "--map", "value_los=train/value_loss"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "'value_los' is not a jppo metric" in error
    assert "value_loss" in error and "explained_variance" in error  # the valid names
    assert cli.main(["diagnose", str(SB3_RUN), "--source", "sb4"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == ("jppo: error: --source 'sb4' is not a source; valid: auto, sb3, cleanrl, "
                     "brax, csv, jppo")
    with pytest.raises(LogError, match="--source 'sb4' is not a source"):
        diagnose_logs(SB3_RUN, source="sb4")
    with pytest.raises(LogError, match="has no 'train/critic'"):
        diagnose_logs(SB3_RUN, map={"value_loss": "train/critic"})


def test_a_map_file_with_an_unknown_table_or_config_field_is_refused(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text("[maps]\nvalue_loss = 'x'\n")
    with pytest.raises(LogError, match=r"unknown table\(s\) \['maps'\]; valid: map, scale"):
        discover.read_options(map_file=path)
    path.write_text("[config]\nupdate_epoch = 3\n")
    with pytest.raises(LogError, match="'update_epoch' is not a PPOConfig field; valid: "):
        discover.read_options(map_file=path)
    with pytest.raises(LogError, match="expected OURS=THEIRS"):
        discover.read_options(["value_loss"])


@pytest.mark.parametrize("content", [b"", b"\x01" * 200, "truncated"])
def test_a_corrupted_or_empty_event_file_is_a_one_line_error_naming_it(tmp_path, content,
                                                                        capsys):
    (source,) = SB3_RUN.glob("events.out.tfevents.*")
    data = source.read_bytes()
    bad = tmp_path / "run" / source.name
    bad.parent.mkdir()
    bad.write_bytes(data[:len(data) // 2] if content == "truncated" else content)
    assert cli.main(["diagnose", str(bad.parent)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and str(bad) in error
    assert ("empty" if content == b"" else "corrupted or truncated") in error


def test_the_brax_and_sb3_mapping_tables_name_every_converted_tag():
    for source in (sb3.SOURCE, cleanrl.SOURCE, brax.SOURCE):
        assert source.conversions and all(c.how for c in source.conversions)


def test_diagnose_logs_is_public_and_the_docs_hold_every_conversion():
    import jppo

    assert jppo.diagnose_logs is diagnose_logs
    docs = (Path(__file__).parents[2] / "docs" / "diagnose-logs.md").read_text()
    for source in discover.SOURCES.values():
        for c in source.conversions:
            assert f"| `{c.theirs}` | `{c.ours}` | {c.how} |" in docs, c


def test_the_summary_gives_jppos_final_return_statistics_per_cell():
    group = FIXTURES / "sb3" / "sb3_healthy"
    found = diagnose_logs(group, baseline="sb3_healthy")
    table = found.summary
    finals = []
    for seed in sorted(group.iterdir()):
        rows = csv_rows(seed / "progress.csv")[:-1]  # the updates logged (see above)
        window = max(1, round(0.1 * len(rows)))
        finals.append(np.mean([r["rollout/ep_rew_mean"] for r in rows[-window:]]))
    (row,) = table.to_dict("records")
    assert row["variant"] == "sb3_healthy" and row["seeds"] == len(finals)
    assert row["mean"] == pytest.approx(np.mean(finals))
    assert "P(> sb3_healthy)" in found.markdown
    with pytest.raises(LogError, match="--baseline 'nope' is not a cell; cells: sb3_healthy"):
        diagnose_logs(group, baseline="nope")


def test_runs_logged_with_the_reports_sb3_callback_are_judged_by_every_rule():
    """sb3_healthy_diagnostics is sb3_healthy (same seeds) logged with the callback the
    report shows: its extra tags are read as jppo's metrics, every rule is judged, and
    the callback did not change training (the same returns)."""
    group = FIXTURES / "sb3" / "sb3_healthy_diagnostics"
    rows = csv_rows(group / "seed1" / "progress.csv")
    metrics = load(group / "seed1").normalised.metrics
    assert metrics["grad_clip_ratio"][3] == pytest.approx(rows[4]["train/grad_clip_ratio"])
    assert metrics["target_std"][3] == pytest.approx(rows[3]["rollout/target_std"])
    plain = load(FIXTURES / "sb3" / "sb3_healthy" / "seed1").normalised.metrics
    np.testing.assert_array_equal(metrics["episode_return"], plain["episode_return"])
    found = diagnose_logs(group)
    assert not any(f.missing for f in found.findings)
    assert not any(f.fired for f in found.findings)


def test_a_logged_inf_or_nan_loss_is_the_nonfinite_flag_and_a_gap_is_not():
    """Hand-made rows: an inf loss, a NaN next to a finite one at the same step, all
    finite, nothing logged (a gap, not a divergence)."""
    from jppo.analysis.logs.base import nonfinite_flags

    long = pd.DataFrame({"tag": ["a", "b", "a", "b", "a", "c"],
                         "step": [1, 1, 2, 2, 3, 4],
                         "value": [math.inf, 0.5, math.nan, 2.0, 1.0, math.nan]})
    flags = nonfinite_flags(long, ("a", "b"), np.array([1, 2, 3, 4]))
    np.testing.assert_array_equal(flags, [1.0, 1.0, 0.0, np.nan])


def test_sb3_value_loss_overflow_is_read_as_a_numerical_divergence():
    """sb3_rewards_x1e19: SB3 logs train/value_loss inf (the squared error of 1e20-scale
    returns overflows float32) on every update and keeps training; the reader flags each
    update non-finite, so the divergence finding names every seed. Healthy runs: 0."""
    group = FIXTURES / "sb3" / "sb3_rewards_x1e19"
    for seed in ("seed1", "seed2", "seed3"):
        rows = csv_rows(group / seed / "progress.csv")[1:]  # train/* from the second dump
        expected = [float(not math.isfinite(r["train/value_loss"])) for r in rows]
        assert expected == [1.0] * len(rows)
        np.testing.assert_array_equal(load(group / seed).normalised.metrics["nonfinite"],
                                      expected)
    found = diagnose_logs(group, map=Options(env="CartPole-v1"))
    (divergence,) = [f for f in found.findings if f.rule == "numerical_divergence"]
    assert divergence.fired and divergence.seeds == [0, 1, 2]
    healthy = load(FIXTURES / "sb3" / "sb3_healthy" / "seed1").normalised.metrics
    assert set(healthy["nonfinite"]) == {0.0}
    cleanrl_run = load(next(CLEANRL_GROUP.iterdir())).normalised.metrics
    assert set(cleanrl_run["nonfinite"]) == {0.0}


def test_an_sb3_epoch_count_cut_the_same_on_every_update_is_said_and_can_be_set():
    """sb3_target_kl_tiny: target_kl 1e-7 stops every update after one epoch (its
    progress.csv's n_updates counter rises by 1 per dump); SB3's logs cannot tell that
    from n_epochs = 1, so the reader says what it assumed, and with update_epochs and
    kl_early_stop given in [config] kl_cut_epochs judges the run."""
    group = FIXTURES / "sb3" / "sb3_target_kl_tiny"
    rows = csv_rows(group / "seed1" / "progress.csv")
    counter = [r["train/n_updates"] for r in rows[1:]]
    assert np.diff(counter, prepend=0.0).tolist() == [1.0] * len(counter)
    run = load(group / "seed1")
    assert run.normalised.config["update_epochs"] == 1
    said = "sb3_target_kl_tiny: every update of every seed ran 1 epoch(s)"
    assert any(note.startswith(said) for note in diagnose_logs(group).notes)
    assert not any("epoch(s)" in n for n in diagnose_logs(FIXTURES / "sb3" / "sb3_healthy").notes)
    given = Options(env="CartPole-v1", config={"update_epochs": 10, "kl_early_stop": True})
    assert not any("epoch(s)" in note for note in diagnose_logs(group, map=given).notes)
    # beside the healthy twin, whose returns set the learning range the progress test reads
    found = diagnose_logs([group, FIXTURES / "sb3" / "sb3_healthy"], map=given)
    (cut,) = [f for f in found.findings if f.rule == "kl_cut_epochs"
              and f.variant == "sb3_target_kl_tiny"]
    assert cut.fired and cut.key_value == pytest.approx(0.1)


def test_a_cells_planned_epochs_are_the_most_any_seed_ran():
    """sb3_target_kl_small: SB3 (>= 1.8) adds one to n_updates per epoch run, so no seed
    logs n_epochs; one seed's most (8) is not the plan where another seed ran 10. The
    cell is judged with the most of all its seeds, and kl_cut_epochs reads each update's
    count over it (the raw csv's counter differences)."""
    group = FIXTURES / "sb3" / "sb3_target_kl_small"
    counts = []
    for seed in sorted(group.iterdir()):
        counter = [r["train/n_updates"] for r in csv_rows(seed / "progress.csv")[1:]]
        counts.append(np.diff(counter, prepend=0.0))
    assert [int(c.max()) for c in counts] == [8, 10, 7]
    assert load(group / "seed1").normalised.config["update_epochs"] == 8  # one seed alone
    found = diagnose_logs(group, map=Options(env="CartPole-v1"))
    config = found.info["variants"]["sb3_target_kl_small"]["config"]
    assert (config["update_epochs"], config["kl_early_stop"]) == (10, True)
    assert not [n for n in found.notes if "disagree" in n]  # pooled, not a disagreement
    (cut,) = [f for f in found.findings if f.rule == "kl_cut_epochs"]
    warm = math.ceil(0.2 * len(counts[0]))
    expected = np.median(np.concatenate([c[warm:] for c in counts]) / 10)
    assert cut.key == "epochs_completed / update_epochs"
    assert cut.key_value == pytest.approx(expected)


def test_seeds_that_disagree_on_a_setting_are_said_and_sb3_epochs_pooled():
    def member(config: dict, epochs: list[float], given: frozenset = frozenset()):
        metrics = pd.DataFrame({"update": range(len(epochs)), "epochs_completed": epochs})
        normalised = sb3.Normalised(metrics, config, given=given)
        return discover.LogRun(Path("r"), "sb3", "g", normalised)

    same, other = {"vf_coef": 0.5, "update_epochs": 4}, {"vf_coef": 20.0, "update_epochs": 6}
    config, notes = discover.cell_config([member(same, [4.0, 4.0]),
                                          member(other, [6.0, math.nan])])
    assert (config["vf_coef"], config["update_epochs"], config["kl_early_stop"]) == \
        (0.5, 6, True)
    assert notes == ["the seeds disagree on vf_coef (seed 0: 0.5, seed 1: 20.0): judged "
                     "with seed 0's 0.5"]
    config, notes = discover.cell_config([member({}, [4.0]), member({"gamma": 0.9}, [4.0])])
    assert "gamma" not in config and "seed 1: 0.9" in notes[-1]  # seed 0: the default
    given = frozenset({"update_epochs"})
    config, notes = discover.cell_config([member(same, [4.0], given), member(same, [6.0],
                                                                            given)])
    assert (config["update_epochs"], config["kl_early_stop"]) == (4, True)
    config, notes = discover.cell_config([member(same, [math.nan])])
    assert "update_epochs" not in config or config["update_epochs"] == 4
    assert notes == [sb3.NO_COUNTER]


def test_cleanrl_hyperparameters_fill_the_config_and_out_of_range_ones_are_said():
    """CleanRL writes its args as the `hyperparameters` text: every setting a rule or a
    remedy reads comes from there; gamma 0 (jppo's gamma is in (0, 1]) is said, once
    per cell, with the default it is judged with."""
    group = FIXTURES / "cleanrl" / "cleanrl_gamma_0"
    found = diagnose_logs(group, map=Options(env="CartPole-v1"))
    config = found.info["variants"]["cleanrl_gamma_0"]["config"]
    params = cleanrl.hyperparameters(dict(discover.read_raw(
        sorted(group.iterdir())[0]).texts))
    for theirs, ours in (("gae_lambda", "gae_lambda"), ("ent_coef", "ent_coef"),
                         ("vf_coef", "vf_coef"), ("max_grad_norm", "max_grad_norm"),
                         ("update_epochs", "update_epochs"), ("learning_rate", "lr"),
                         ("num_minibatches", "num_minibatches")):
        assert config[ours] == pytest.approx(float(params[theirs])), theirs
    assert params["gamma"] == "0.0" and "gamma" not in config
    gamma = [n for n in found.notes if "gamma =" in n]
    assert gamma == ["cleanrl_gamma_0: gamma = 0.0 (read from the logs) is outside jppo's "
                     "range: judged with jppo's default 0.99"]
    (noise,) = [f for f in found.findings if f.rule == "noise_advantages"]
    assert not noise.fired and noise.missing == ("explained_variance",)
    assert noise.unjudged.startswith("explained_variance non-finite on 56 of 57")
    assert "Noise advantages not judged: explained_variance non-finite" in found.terminal


def test_config_tables_per_group_set_each_configurations_own_settings(tmp_path):
    """Several configurations diagnosed at once, each with what its logs cannot say: a
    `[config.GROUP]` table holds that group's fields over the flat [config]'s; with
    SB3's target_kl given for the cut configuration only, kl_cut_epochs judges it on
    its own epochs share (1 of 10) while its healthy twin keeps kl_early_stop off."""
    path = tmp_path / "settings.toml"
    path.write_text("[config]\nupdate_epochs = 10\n\n[config.sb3_target_kl_tiny]\n"
                    "kl_early_stop = true\ntarget_kl = 1e-7\n")
    options = discover.read_options(map_file=path, env="CartPole-v1")
    assert options.config == {"update_epochs": 10}
    assert options.config_of("sb3_target_kl_tiny") == {"update_epochs": 10,
                                                       "kl_early_stop": True, "target_kl": 1e-7}
    found = diagnose_logs([FIXTURES / "sb3" / "sb3_target_kl_tiny",
                           FIXTURES / "sb3" / "sb3_healthy"], map=options)
    configs = {name: v["config"] for name, v in found.info["variants"].items()}
    assert configs["sb3_target_kl_tiny"]["target_kl"] == 1e-7
    assert configs["sb3_target_kl_tiny"]["kl_early_stop"] is True
    assert configs["sb3_healthy"]["kl_early_stop"] is False
    assert configs["sb3_healthy"]["update_epochs"] == 10
    fired = {(f.variant, f.rule) for f in found.findings if f.fired}
    assert ("sb3_target_kl_tiny", "kl_cut_epochs") in fired
    assert not any(variant == "sb3_healthy" for variant, _ in fired)


def test_a_config_table_naming_no_group_or_out_of_range_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "settings.toml"
    path.write_text("[config.sb3_healthyy]\nupdate_epochs = 10\n")
    assert cli.main(["diagnose", str(FIXTURES / "sb3" / "sb3_healthy"), "--map-file",
                     str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert "[config.sb3_healthyy] names no group of these runs; groups: sb3_healthy" in error
    path.write_text("[config.sb3_healthy]\nupdate_epochs = 0\n")
    with pytest.raises(LogError, match=r"\[config.sb3_healthy\] update_epochs=0"):
        discover.read_options(map_file=path)
    with pytest.raises(LogError, match="'update_epoch' is not a PPOConfig field"):
        diagnose_logs(FIXTURES / "sb3" / "sb3_healthy",
                      map=Options(group_config={"sb3_healthy": {"update_epoch": 3}}))


def test_without_an_epochs_count_the_kl_stop_is_judged_on_the_kl_it_compares():
    """CleanRL logs no epochs run, but its logged approx_kl is the last minibatch's, the
    one its stop compares with target_kl after each epoch: cleanrl_target_kl_tiny
    (target_kl 1.5e-7 in CleanRL's terms, jppo's 1e-7) has that KL over the limit on
    every judged update, at a limit under 1e-5, so the rule fires on that criterion
    and says so; the healthy twin has no KL stop (not applicable)."""
    group = FIXTURES / "cleanrl" / "cleanrl_target_kl_tiny"
    limit = None
    for seed_folder in sorted(group.iterdir()):
        kls = [v for _, v in raw_events(seed_folder)["losses/approx_kl"]]
        run = load(seed_folder)
        limit = 1.5 * run.normalised.config["target_kl"]
        assert limit == pytest.approx(float(cleanrl.hyperparameters(
            dict(discover.read_raw(seed_folder).texts))["target_kl"]))
        warm = len(kls) // 5  # the rules' warm-up: the first 20% of updates
        assert np.mean(np.asarray(kls[warm:]) > limit) > 0.5
    assert limit < 1e-5
    found = diagnose_logs([group, CLEANRL_GROUP])
    (cut,) = [f for f in found.findings if f.rule == "kl_cut_epochs"
              and f.variant == "cleanrl_target_kl_tiny"]
    assert cut.fired and cut.num_seeds == 3 and len(cut.seeds) == 3
    assert "no epochs count logged" in cut.basis and not cut.missing
    (healthy,) = [f for f in found.findings if f.rule == "kl_cut_epochs"
                  and f.variant == "cleanrl_healthy"]
    assert not healthy.fired
