"""experiments/published: each experiment file holds its publisher's settings and
trains a few updates through the runner; the results record, the Markdown table
and the README splice against hand-made examples."""

import json
import math

import numpy as np
import pytest

from experiments.published import run as published_run
from experiments.published import table
from jppo.runs import experiment

# The publisher's settings, copied by hand from gymnax-blines agents/<env>/ppo.yaml:
# (env, steps, envs, n_steps, minibatches, epochs, gamma, lr, max_grad_norm, ent, hidden)
YAML = {
    "cartpole": ("CartPole-v1", 150_000, 8, 32, 4, 4, 0.99, 5e-4, 0.5, 0.01, 64),
    "acrobot": ("Acrobot-v1", 500_000, 16, 32, 4, 4, 0.99, 5e-4, 1.0, 0.01, 64),
    "pendulum": ("Pendulum-v1", 1_000_000, 32, 16, 4, 4, 0.99, 5e-4, 1.0, 0.01, 64),
    "mountaincar": ("MountainCar-v0", 250_000, 16, 32, 4, 64, 0.99, 5e-3, 1.0, 0.003, 64),
    "mountaincar_continuous": ("MountainCarContinuous-v0", 1_000_000, 32, 16, 4, 4, 0.99,
                               5e-4, 1.0, 0.01, 64),
    "asterix": ("Asterix-MinAtar", 10_000_000, 64, 128, 8, 4, 0.999, 5e-4, 0.5, 0.01, 256),
    "breakout": ("Breakout-MinAtar", 10_000_000, 64, 128, 8, 4, 0.999, 5e-4, 0.5, 0.01, 256),
    "freeway": ("Freeway-MinAtar", 10_000_000, 64, 128, 8, 4, 0.999, 5e-4, 0.5, 0.01, 256),
    "space_invaders": ("SpaceInvaders-MinAtar", 10_000_000, 64, 128, 8, 4, 0.999, 5e-4, 0.5,
                       0.01, 256),
}
PUBLISHED = {"cartpole": 500, "acrobot": -80, "pendulum": -130, "mountaincar": -118,
             "mountaincar_continuous": 92, "asterix": 15, "breakout": 28, "freeway": 58,
             "space_invaders": 131}


def test_every_row_has_a_file_and_the_published_figure():
    assert set(table.ROWS) == set(YAML)
    for name, row in table.ROWS.items():
        assert row.file.is_file(), row.file
        assert row.published == PUBLISHED[name]
        assert row.env == YAML[name][0] and row.steps == YAML[name][1]


@pytest.mark.parametrize("name", list(YAML))
def test_experiment_file_holds_the_publishers_settings(name):
    env, steps, envs, n_steps, minibatches, epochs, gamma, lr, norm, ent, width = YAML[name]
    exp = experiment.load(table.ROWS[name].file)
    config = exp.variant_config(exp.baseline_variant)
    assert exp.envs == (env,) and exp.seeds >= 8 and config.total_timesteps == steps
    assert (config.num_envs, config.num_steps, config.num_minibatches) == (envs, n_steps,
                                                                           minibatches)
    assert (config.update_epochs, config.gamma, config.lr) == (epochs, gamma, lr)
    assert (config.max_grad_norm, config.ent_coef) == (norm, ent)
    assert config.policy_hidden == config.value_hidden == (width, width)
    assert config.torso_hidden == ()  # separate actor and critic
    if width == 256:  # MinAtar: the MLP on flattened frames, not the CNN torso
        assert config.torso_kind == "mlp"
    assert config.activation == "relu" and config.value_loss == "clipped"
    assert config.resolved("value_clip_eps") == config.clip_eps == 0.2
    assert (config.gae_lambda, config.vf_coef, config.adam_eps) == (0.95, 0.5, 1e-5)
    assert config.advantage_norm == "minibatch" and config.eval_episodes == 164
    # the publisher's flax-default LeCun kernels, U[0, 0.05] biases, time limits as terminal
    assert (config.layer_init, config.bias_init_max, config.truncation) == (
        "lecun_normal", 0.05, "terminal")
    assert config.policy_output_gain == config.value_output_gain == 1.0
    if name in ("pendulum", "mountaincar_continuous"):  # softplus(Dense(h)) + 0.001
        assert (config.policy_std, config.policy_std_floor) == ("softplus", 1e-3)
        assert math.isclose(math.exp(config.log_std_init), math.log1p(math.exp(0.025)) + 1e-3,
                            rel_tol=1e-3)
    if name == "mountaincar":  # 5e-3 -> 5e-4, then constant
        assert (config.lr_schedule, config.lr_end_factor) == ("linear", 0.1)
    else:
        assert config.lr_schedule == "constant"


# The four MinAtar files hold one config (checked below); Breakout trains for all of them.
TRAINED = ["cartpole", "acrobot", "pendulum", "mountaincar", "mountaincar_continuous",
           "breakout"]


def test_minatar_files_differ_only_in_the_environment():
    def config(name):
        exp = experiment.load(table.ROWS[name].file)
        return exp.variant_config(exp.baseline_variant)

    for name in ("asterix", "freeway", "space_invaders"):
        assert config(name) == config("breakout"), name


def test_runner_trains_every_row_a_few_updates(tmp_path):
    """Every distinct program compiles and trains (two updates, two seeds) through
    the runner, which writes a record per row and the table."""
    out_json = tmp_path / "results.json"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{table.BEGIN}\nold\n{table.END}\nrest\n")
    small = {name: 2 * YAML[name][2] * YAML[name][3] for name in TRAINED}
    for name in TRAINED:
        code = published_run.main([
            "--only", name, "--seeds", "2", "--steps", str(small[name]),
            "--set", "eval_episodes=2", "--set", "eval_max_steps=20",
            "--out-root", str(tmp_path / "runs"), "--json", str(out_json),
            "--readme", str(readme)])
        assert code == 0, name
    records = json.loads(out_json.read_text())
    assert list(records) == TRAINED
    for name, record in records.items():
        assert record["steps"] == small[name] and record["seeds"] == 2
        assert len(record["eval"]["per_seed"]) == 2
        assert record["published_steps"] == YAML[name][1]
    text = readme.read_text()
    assert text.startswith(f"intro\n{table.BEGIN}\n| env |") and "old" not in text
    assert text.endswith(f"{table.END}\nrest\n") and "reduced budget" in text


def test_an_existing_run_needs_resume_or_fresh(tmp_path, capsys):
    args = ["--only", "cartpole", "--seeds", "1", "--steps", "256", "--set", "eval_every=0",
            "--out-root", str(tmp_path), "--json", str(tmp_path / "r.json"),
            "--readme", str(tmp_path / "none.md")]
    assert published_run.main(args) == 0
    assert published_run.main(args) == 1
    assert "already holds a run: pass --resume" in capsys.readouterr().err
    assert published_run.main([*args, "--resume"]) == 0
    assert published_run.main([*args, "--refresh"]) == 0
    record = json.loads((tmp_path / "r.json").read_text())["cartpole"]
    assert record["eval"]["per_seed"] == [None] and record["train"]["per_seed"][0] > 0


# ------------------------------------------------------------- hand-made records


def hand_metrics():
    """3 seeds x 10 updates: evaluations after updates 5 and 10, episodes every update."""
    eval_return = np.full((3, 10), np.nan)
    eval_return[:, 4] = [0.0, 0.0, 0.0]
    eval_return[:, 9] = [20.0, 30.0, 40.0]
    episode_return = np.tile(np.arange(10.0), (3, 1)) + np.array([[0.0], [1.0], [2.0]])
    episodes = np.full((3, 10), 2.0)
    steps = np.tile(np.arange(1, 11) * 100, (3, 1))
    return {"eval_return": eval_return, "episode_return": episode_return,
            "episodes_finished": episodes, "env_steps": steps}


ROW = table.Row("demo", "Demo-v0", 28.0, 2_000, "gpu")


def test_row_record_from_hand_made_metrics():
    record = table.row_record(ROW, hand_metrics(), steps=1000, wall_s=65.04,
                              machine="x86_64 CPU, jax 0.10.2", config_steps=2000)
    # final 10% of 10 updates = the last update: evaluations 20, 30, 40; training 9, 10, 11
    assert record["eval"]["per_seed"] == [20.0, 30.0, 40.0]
    assert record["train"]["per_seed"] == [9.0, 10.0, 11.0]
    assert record["mean"] == 30.0 and record["train"]["mean"] == 10.0
    assert record["eval"]["seeds_reaching"] == 2 and record["train"]["seeds_reaching"] == 0
    assert 20.0 <= record["ci_low"] < 30.0 < record["ci_high"] <= 40.0
    assert record["reached"] is True  # the CI's top (>= 30) reaches 28
    assert (record["seeds"], record["steps"], record["wall_s"]) == (3, 1000, 65.0)
    for key in ("env", "source", "published", "mean", "ci_low", "ci_high", "seeds", "steps",
                "machine", "wall_s", "measure"):
        assert key in record
    assert json.loads(json.dumps(record)) == record


def test_a_single_seed_has_no_interval():
    metrics = {k: v[:1] for k, v in hand_metrics().items()}
    record = table.row_record(ROW, metrics, steps=1000, wall_s=1.0, machine="m",
                              config_steps=1000)
    assert record["mean"] == 20.0 and record["ci_low"] is None and record["reached"] is False


def test_markdown_table_lines():
    record = {"eval": {"mean": 30.0, "ci_low": 23.33, "ci_high": 36.67, "seeds_reaching": 2},
              "train": {"mean": 10.0, "ci_low": None, "ci_high": None},
              "seeds": 3, "steps": 1000, "machine": "x86_64 CPU, jax 0.10.2", "wall_s": 65.0,
              "reached": True}
    lines = table.markdown({"demo": record}, rows=[ROW, table.ROWS["breakout"]]).splitlines()
    assert lines[2] == ("| Demo-v0 | 28 | 30.0 [23.3, 36.7] | 2/3 | 10.0 | 3 | 1,000 | "
                        "x86_64 CPU, jax 0.10.2 | 1 min 5 s | reaches; reduced budget "
                        "(1,000 of 2,000 steps) |")
    assert lines[3] == ("| Breakout-MinAtar | 28 | — | — | — | — | 10,000,000 | — | — | "
                        "waits for a GPU |")


def test_splice_between_markers_only():
    text = f"a\n{table.BEGIN}\nold table\n{table.END}\nb\n"
    assert table.splice(text, "| new |\n") == f"a\n{table.BEGIN}\n| new |\n{table.END}\nb\n"
    assert table.splice("no markers\n", "| new |") is None
    assert table.splice(f"{table.END}\n{table.BEGIN}\n", "| new |") is None


def test_results_json_keeps_row_order(tmp_path):
    path = tmp_path / "results.json"
    table.write_results({"breakout": {"x": 1}, "extra": {"y": math.pi}, "cartpole": {}}, path)
    assert list(json.loads(path.read_text())) == ["cartpole", "breakout", "extra"]


def test_merge_adds_another_machines_rows(tmp_path):
    mine, theirs = tmp_path / "results.json", tmp_path / "gpu.json"
    record = table.row_record(ROW, hand_metrics(), steps=2000, wall_s=1.0, machine="H100",
                              config_steps=2000)
    table.write_results({"cartpole": {**record, "machine": "cpu"}}, mine)
    table.write_results({"breakout": record}, theirs)
    code = published_run.main(["--merge", str(theirs), "--json", str(mine),
                               "--readme", str(tmp_path / "none.md")])
    assert code == 0
    merged = json.loads(mine.read_text())
    assert list(merged) == ["cartpole", "breakout"] and merged["breakout"]["machine"] == "H100"
    assert "| Breakout-MinAtar | 28 | 30.0 [" in (tmp_path / "results.md").read_text()


def test_a_float32_maximum_counts_as_reaching_it():
    stats = table.measure_stats(np.float32([500.0, 499.99997, 480.0]), 500.0, seed=0)
    assert stats["seeds_reaching"] == 2 and stats["per_seed"] == [500.0, 500.0, 480.0]


def test_a_seed_without_episodes_is_null_in_json():
    stats = table.measure_stats(np.array([np.nan, 10.0, 20.0]), 15.0, seed=0)
    assert stats["per_seed"] == [None, 10.0, 20.0] and stats["seeds_reaching"] == 1
    assert stats["mean"] == 15.0
    json.dumps(stats, allow_nan=False)


# ------------------------------------------------- the publisher's own runs


def test_publisher_logs_load_data_only_and_summarize_a_run():
    """A checkpoint pickle is read as data: a class outside the containers and numpy
    (here one that would run a shell command when built) becomes an inert mapping,
    and the logged curve is summarized by hand: last, last-10% mean, best."""
    import os
    import pickle

    from experiments.published import publisher_logs

    class Dangerous:
        def __reduce__(self):
            return (os.system, ("echo never-run > /dev/null",))

    run = {"log_steps": list(range(100, 1100, 100)),
           "log_return": [np.float32(v) for v in (1, 2, 3, 4, 5, 6, 7, 8, 30, 10)],
           "train_config": {"train_type": "PPO", "lr_begin": 5e-4, "n_steps": 16},
           "network": Dangerous()}
    loaded = publisher_logs.load(pickle.dumps(run))
    assert isinstance(loaded["network"], publisher_logs.Inert)
    summary = publisher_logs.summarize(loaded)
    # steps >= 0.9 * 1000: the evaluations at 900 and 1000 -> mean (30 + 10) / 2
    assert (summary["final"], summary["last_10pct_mean"], summary["best"]) == (10.0, 20.0, 30.0)
    assert summary["config"] == {"train_type": "PPO", "lr_begin": 5e-4, "n_steps": 16}
    assert (summary["evaluations"], summary["last_step"]) == (10, 1000)


def logged(train_type, final, tail, **config):
    base = {"train_type": train_type, "num_train_envs": 8, "n_steps": 32, "epoch_ppo": 4,
            "lr_begin": 5e-4, "num_train_steps": 150_000}
    return {"file": f"agents/X/{train_type.lower()}.pkl", "date": "2022-06-16", "final": final,
            "last_10pct_mean": tail, "config": {**base, **config}}


def test_publisher_evidence_names_the_run_the_figure_is_and_the_same_config_runs():
    row = table.ROWS["cartpole"]  # 8 x 32, 4 epochs, lr 5e-4, 150k steps; published 500
    config = table.row_config(row)
    logs = {"runs": {"CartPole-v1": [
        logged("PPO", 420.0, 400.0), logged("PPO", 300.0, 310.0, lr_begin=1e-3),
        logged("ES", 499.0, 480.0), logged("PPO", 350.0, 340.0, n_steps=64)]}}
    evidence = table.publisher_evidence(row, logs, config)
    assert evidence["published_by"] == "ES" and evidence["published_run"]["final"] == 499.0
    assert [r["final"] for r in evidence["ppo_at_config"]] == [420.0]  # lr and rollout differ
    assert evidence["best_ppo_final"] == 420.0
    assert table.publisher_evidence(table.ROWS["acrobot"], logs, config) is None
    record = {"train": {"per_seed": [395.0, 400.0, 450.0, None]}}
    lines = table.publisher_markdown({"cartpole": record}, logs, rows=[row]).splitlines()
    assert lines[2] == ("| CartPole-v1 | 500 | ES (es.pkl, 2022-06-16: 499.0) | 420.0 (400.0) | "
                        "420.0 | 395.0 to 450.0 | 2/3 |")


def test_a_row_whose_figure_is_another_methods_says_so():
    """The "PPO, ES" column: where ES's run is the figure, the row names it and the
    publisher's own PPO runs next to it; a PPO figure adds nothing."""
    evidence = {"published_by": "ES", "best_ppo_final": -195.1,
                "ppo_at_config": [{"final": -200.6, "last_10pct_mean": -241.5}]}
    record = {"eval": {"mean": -346.5, "ci_low": -424.7, "ci_high": -272.8, "seeds_reaching": 0},
              "train": {"mean": -300.0, "ci_low": None, "ci_high": None}, "seeds": 8,
              "steps": 1_000_000, "machine": "m", "wall_s": 60.0, "reached": False,
              "publisher": evidence}
    row = table.Row("demo", "Demo-v0", -130.0, 1_000_000, "cpu")
    line = table.markdown({"demo": record}, rows=[row]).splitlines()[2]
    assert line.endswith("| below; the figure is ES's; the publisher's PPO at this config "
                         "logged -200.6 (last 10%: -241.5), its best PPO run of any config "
                         "-195.1 |")
    ppo = {**record, "publisher": {**evidence, "published_by": "PPO"}}
    assert table.markdown({"demo": ppo}, rows=[row]).splitlines()[2].endswith("| below |")
