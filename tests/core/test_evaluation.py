"""Deterministic evaluation inside the program and the policy hand-off:
greedy actions are the mode, evaluation leaves training bitwise unchanged,
episodes match a step-by-step reference, and a policy loaded from a run or
an exported file reproduces the in-run evaluation exactly."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import cli, envs
from jppo.analysis import diagnose, stats
from jppo.analysis import metrics as metric_lib
from jppo.analysis.diagnose.report import solved_gate_text
from jppo.core import acting, distributions, normalize, train
from jppo.core.config import PPOConfig, divisor_near
from jppo.core.networks import ActorCritic, make_network
from jppo.runs import experiment, policies, results, runner

TINY = dict(num_envs=4, num_steps=16, update_epochs=2, num_minibatches=2, diagnostics=False)
SEEDS = 2


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ the mode


def test_greedy_action_is_the_mode_of_each_distribution():
    logits = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (32, 5)))
    greedy = np.asarray(distributions.mode((jnp.asarray(logits),), True))
    np.testing.assert_array_equal(greedy, np.argmax(softmax(logits), axis=-1))
    log_probs = np.stack([distributions.log_prob((jnp.asarray(logits),), jnp.full(32, a), True)
                          for a in range(5)], axis=-1)
    assert np.all(log_probs[np.arange(32), greedy] >= log_probs.max(axis=-1))

    nvec = (3, 4)
    multi = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (16, 7)))
    np.testing.assert_array_equal(distributions.mode((jnp.asarray(multi),), True, nvec),
                                  np.stack([multi[:, :3].argmax(-1), multi[:, 3:].argmax(-1)],
                                           axis=-1))

    mean = jax.random.normal(jax.random.PRNGKey(2), (8, 2))
    log_std = jnp.array([0.3, -1.0])
    best = distributions.mode((mean, log_std), False)
    np.testing.assert_array_equal(best, mean)
    for shift in (1e-2, -1e-2):
        assert np.all(distributions.gaussian_log_prob(mean, log_std, best)
                      > distributions.gaussian_log_prob(mean, log_std, best + shift))


def test_act_normalizes_then_takes_the_mode_of_the_policy_head():
    network = make_network(PPOConfig(), 2, True, (4,))
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    stats = normalize.RunningStats(jnp.asarray(10.0), jnp.array([1.0, -2.0, 0.5, 3.0]),
                                            jnp.array([40.0, 10.0, 2.5, 90.0]))
    inputs = acting.PolicyInputs(params, stats, jnp.asarray(10.0))
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (64, 4))) * 5
    seen = np.clip((obs - np.asarray(stats.mean)) / np.sqrt(np.asarray(stats.m2) / 10 + 1e-8),
                   -10, 10)
    logits = np.asarray(network.apply(params, jnp.asarray(seen, jnp.float32),
                                      method=ActorCritic.policy)[0])
    actor = acting.Actor(network, True, None, obs_norm=True)
    key = jax.random.PRNGKey(4)
    np.testing.assert_array_equal(acting.act(actor, inputs, obs, key), logits.argmax(-1))
    sampled = acting.act(actor, inputs, obs, key, deterministic=False)
    np.testing.assert_array_equal(sampled, jax.random.categorical(key, jnp.asarray(logits)))


# --------------------------------------------------- evaluation in training


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@pytest.fixture(scope="module")
def on_and_off(cartpole):
    keys = runner.seed_keys(SEEDS)
    out = {}
    for every in (0, 3, 6):
        config = PPOConfig(**TINY, total_timesteps=64 * 6, eval_every=every, eval_episodes=4)
        out[every] = jax.device_get(jax.jit(jax.vmap(jppo.make_train(config, *cartpole)))(keys))
    return out


def test_evaluation_does_not_change_training(on_and_off):
    off, on = on_and_off[0], on_and_off[3]
    assert set(on.metrics) == set(off.metrics) | {"eval_return", "eval_length"}
    for name, values in off.metrics.items():
        np.testing.assert_array_equal(on.metrics[name], values, err_msg=name)
    for a, b in zip(jax.tree.leaves(off.state), jax.tree.leaves(on.state), strict=True):
        np.testing.assert_array_equal(a, b)
    evaluated = np.isfinite(on.metrics["eval_return"])
    np.testing.assert_array_equal(evaluated, np.tile([False, False, True], (SEEDS, 2)))
    assert np.all(on.metrics["eval_length"][evaluated] >= 8)  # CartPole episodes last >= 8


def test_an_evaluation_is_the_same_whatever_the_schedule(on_and_off):
    """The evaluation after update 6 reads only that update's state and key: a
    sparser schedule (every 6 instead of every 3) evaluates it bit for bit alike."""
    every3, every6 = on_and_off[3].metrics, on_and_off[6].metrics
    np.testing.assert_array_equal(np.isfinite(every6["eval_return"]),
                                  np.tile([False] * 5 + [True], (SEEDS, 1)))
    for name in ("eval_return", "eval_length"):
        np.testing.assert_array_equal(every6[name][:, 5], every3[name][:, 5])
    np.testing.assert_array_equal(every6["policy_loss"], every3["policy_loss"])


def test_a_short_run_is_evaluated_less_often_down_to_eight_times():
    """Default schedule with CartPole's 500-step limit and 16 episodes (at most
    8,000 evaluation env steps): about ten per run while the training between two
    evaluations outnumbers them; fewer, at least eight, where it would not."""
    limit = 500

    def plan(**fields):
        config = PPOConfig(**fields)
        every = config.eval_interval_for(limit)
        return config.num_updates, every, config.num_updates // every

    assert plan() == (976, 61, 16)  # 31,232 training steps between evaluations
    assert plan(total_timesteps=512 * 1000) == (1000, 100, 10)
    assert plan(total_timesteps=65_536) == (128, 16, 8)  # was every 8: 4,096 < 8,000
    assert 16 * limit <= 16 * 512
    assert plan(total_timesteps=131_072) == (256, 16, 16)  # 8,192 >= 8,000: unchanged
    assert plan(total_timesteps=65_536, eval_episodes=4) == (128, 8, 16)  # 2,000 steps
    assert plan(num_envs=4, num_steps=16, total_timesteps=64 * 64) == (64, 8, 8)  # floor
    assert plan(num_envs=4, num_steps=16, total_timesteps=64 * 6) == (6, 1, 6)
    assert plan(total_timesteps=65_536, eval_every=2) == (128, 2, 64)  # asked for: kept
    assert PPOConfig(total_timesteps=65_536).eval_interval == 8  # no limit known
    assert train.evaluation_plan(PPOConfig(total_timesteps=65_536), envs.make("CartPole-v1")[1],
                                 "CartPole-v1") == (16, 500)


def reference_episodes(env, params, policy_inputs, actor, key, episodes, limit):
    """Step-by-step episodes on the host: each run to its first end."""
    reset_key, _ = jax.random.split(key)
    returns, lengths = [], []
    for k in jax.random.split(reset_key, episodes):
        obs, state = env.reset(k, params)
        total, steps = 0.0, 0
        while steps < limit:
            action = acting.act(actor, policy_inputs, obs, key)
            obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
            total, steps = total + float(reward), steps + 1
            if terminated or truncated:
                break
        returns.append(total)
        lengths.append(steps)
    return np.mean(returns), np.mean(lengths)


def test_in_run_evaluation_matches_step_by_step_episodes(on_and_off, cartpole):
    """CartPole's dynamics use no randomness after reset, so only the reset
    keys matter: the evaluation's mean return and length are those of a plain
    loop over the same start states with the greedy policy."""
    config = PPOConfig(**TINY, total_timesteps=64 * 6, eval_every=3, eval_episodes=4)
    setup = train.make_setup(config, *cartpole)
    state = jax.tree.map(lambda x: x[1], on_and_off[3].state)  # seed 1 after update 6
    inputs = train.policy_inputs(state.params, state.norm, config.hparams())
    expected = reference_episodes(*cartpole, inputs, setup.actor,
                                  acting.evaluation_key(state.key), 4, 500)
    got = on_and_off[3].metrics
    assert (got["eval_return"][1, -1], got["eval_length"][1, -1]) == expected


def test_default_evaluates_about_ten_times_the_last_on_the_final_policy():
    assert PPOConfig().num_updates == 976 and PPOConfig().eval_interval == 61  # 16 evaluations
    assert PPOConfig(total_timesteps=512 * 1000).eval_interval == 100
    assert divisor_near(977, 97) == 97  # a prime: ten evaluations, the last before the end
    assert PPOConfig(eval_every=0).eval_interval == 0
    with pytest.raises(ValueError, match=r"^eval_every=-1 is invalid: allowed is an integer "
                                         r">= 0, or None$"):
        PPOConfig(eval_every=-1)


def test_an_env_without_an_episode_limit_needs_eval_max_steps():
    class Params:  # no max_steps_in_episode
        pass

    assert train.evaluation_plan(PPOConfig(), Params(), "free") == (0, 0)
    assert train.evaluation_plan(PPOConfig(eval_every=5, eval_max_steps=30), Params(),
                                 "free") == (5, 30)
    with pytest.raises(ValueError, match="eval_every=5 is invalid for env 'free'") as error:
        train.evaluation_plan(PPOConfig(eval_every=5), Params(), "free")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("updates,target,every", [(976, 61, 61), (976, 50, 61), (100, 7, 10),
                                                  (95, 50, 10), (8, 2, 4), (30, 50, 0)])
def test_chunks_are_multiples_of_the_evaluation_interval(updates, target, every):
    chunk = runner.pick_chunk_size(updates, target, every)
    if every and updates >= every:
        assert chunk % every == 0
    assert 1 <= chunk <= max(updates, every)


# ------------------------------------------------------------- the hand-off


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """2 seeds, 8 updates, obs normalization, evaluation every 4 updates."""
    exp = experiment.from_dict(dict(
        name="handoff", envs=["CartPole-v1"], seeds=SEEDS, total_timesteps=64 * 8,
        chunk_updates=2, config=dict(TINY, obs_norm=True, eval_every=4, eval_episodes=4)))
    out = tmp_path_factory.mktemp("handoff") / "run"
    return out, runner.run_experiment(exp, out, progress="off")


def test_load_policy_reproduces_the_final_evaluation_exactly(run):
    out, result = run
    state = result.states["program-000"]
    final = result.metrics()["eval_return"][:, -1]
    for i in range(SEEDS):
        policy = jppo.load_policy(out, seed=i)
        evaluated = policy.evaluate(acting.evaluation_key(state.key[i]))
        assert float(jnp.mean(evaluated.returns)) == final[i]
        # the normalizer applied is this seed's running statistics
        np.testing.assert_array_equal(policy.inputs.obs_stats.mean, state.norm.obs.mean[i])
        assert policy.actor.obs_norm and float(policy.inputs.obs_stats.count) > 64


def test_export_round_trip_is_exact(run, tmp_path):
    out, result = run
    state = result.states["program-000"]
    assert cli.main(["export", str(out), "--seed", "1", "--out", str(tmp_path / "p.policy")]) == 0
    loaded, direct = jppo.load_policy(tmp_path / "p.policy"), jppo.load_policy(out, seed=1)
    for a, b in zip(jax.tree.leaves(direct.inputs), jax.tree.leaves(loaded.inputs), strict=True):
        np.testing.assert_array_equal(a, b)
    key = acting.evaluation_key(state.key[1])
    assert float(jnp.mean(loaded.evaluate(key).returns)) == result.metrics()["eval_return"][1, -1]
    obs = jax.random.normal(jax.random.PRNGKey(0), (16, 4))
    act = jax.jit(loaded.act, static_argnames="deterministic")
    np.testing.assert_array_equal(act(obs, key), direct.act(obs, key))
    np.testing.assert_array_equal(act(obs, key, deterministic=False),
                                  direct.act(obs, key, deterministic=False))


def test_selectors_fail_in_one_line_listing_what_exists(run, tmp_path):
    out, _ = run
    cases = [({"seed": 5}, r"seed=5 is invalid: the run has seeds \[0, 1\]"),
             ({"variant": "x"}, r"variant='x' is invalid: the run has variants \['default'\]"),
             ({"env": "Acrobot-v1"}, r"env='Acrobot-v1' is invalid: the run has envs")]
    for selectors, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            jppo.load_policy(out, **selectors)
        assert "\n" not in str(error.value)
    (tmp_path / "junk.policy").write_bytes(b"not msgpack at all")
    with pytest.raises(ValueError, match="is not a jppo policy file"):
        jppo.load_policy(tmp_path / "junk.policy")


def test_jppo_eval_prints_a_row_per_seed(run, capsys):
    out, _ = run
    assert cli.main(["eval", str(out), "--episodes", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "deterministic actions" in lines[0]
    rows = [line for line in lines if line.startswith("|") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["seed", "0", "1", "all"]
    assert all(r.split("|")[2].strip() == "3" for r in rows[1:3])


# -------------------------------------------------- which return is reported


def test_final_return_uses_the_evaluations_and_says_so(run):
    nan = np.nan
    metrics = {"eval_return": np.array([[nan, 5.0, nan, 7.0, nan, 9.0], [1.0, nan] * 3]),
               "episode_return": np.ones((2, 6)), "episodes_finished": np.ones((2, 6))}
    scores, name = metric_lib.final_return(metrics, fraction=0.5)
    assert name == "eval_return"
    np.testing.assert_array_equal(scores, [8.0, 1.0])  # mean of 7, 9; the one evaluation
    scores, name = metric_lib.final_return(metrics, fraction=0.1)  # window holds none for seed 1
    np.testing.assert_array_equal(scores, [9.0, 1.0])
    del metrics["eval_return"]
    assert metric_lib.final_return(metrics)[1] == "episode_return"

    out, _ = run
    table = stats.summarize_run(out, reps=50)
    assert list(table["return"]) == ["eval_return"]
    assert "evaluation return (eval_return)" in (out / stats.SUMMARY_MD).read_text()
    assert stats.format_table(table).splitlines()[0].rstrip(" |").endswith("return")
    findings = diagnose.diagnose_frame(results.read_metrics(out))
    assert {f.returns for f in findings} == {"eval_return"}
    assert "evaluation return" in solved_gate_text(findings)


def test_policy_file_is_self_contained(run, tmp_path):
    out, _ = run
    path = policies.load_policy(out, seed=0).save(tmp_path / "alone.policy")
    moved = tmp_path / "elsewhere.policy"
    moved.write_bytes(path.read_bytes())
    policy = jppo.load_policy(moved)
    assert policy.spec.name == "CartPole-v1" and policy.source["seed"] == 0
    assert policy.act(jnp.zeros(4), jax.random.PRNGKey(0)).shape == ()



# ------------------------------------------------------- recurrent policies

# Short episodes (time limit 20): evaluations end quickly; no velocities, so memory matters.
RNN_ENV = ("CartPole-NoVelocity-v1", {"max_steps_in_episode": 20})
RNN = dict(TINY, policy_rnn=5, value_rnn=3, obs_norm=True, obs_norm_warmup=0, eval_episodes=4)
RNN_STEPS = 64 * 4


@pytest.fixture(scope="module")
def rnn_env():
    return envs.make(RNN_ENV[0], **RNN_ENV[1])


def recurrent_run(out, eval_every):
    exp = experiment.from_dict(dict(
        name="rnn-handoff", envs=[RNN_ENV[0]], env_params={RNN_ENV[0]: RNN_ENV[1]},
        seeds=SEEDS, total_timesteps=RNN_STEPS, chunk_updates=2,
        config=dict(RNN, eval_every=eval_every)))
    return out, runner.run_experiment(exp, out, progress="off")


@pytest.fixture(scope="module")
def rnn_run(tmp_path_factory):
    """A recurrent run (GRU policy and critic, obs normalization) evaluated
    every 2 of its 4 updates."""
    return recurrent_run(tmp_path_factory.mktemp("rnn-handoff") / "run", 2)


def normalized(obs, stats):
    """The observation normalizer, in numpy."""
    var = np.asarray(stats.m2) / np.asarray(stats.count)
    return np.clip((np.asarray(obs) - np.asarray(stats.mean)) / np.sqrt(var + 1e-8), -10, 10)


def recurrent_reference(env, params, network, net_params, stats, key, episodes, limit):
    """Greedy episodes stepped on the host one at a time, the GRU carry passed
    by hand to `policy_step` (restarted only at the episode's first step)."""
    reset_key, _ = jax.random.split(key)
    step = jax.jit(functools.partial(network.apply, method=ActorCritic.policy_step))
    returns, lengths = [], []
    for k in jax.random.split(reset_key, episodes):
        obs, state = env.reset(k, params)
        carry = network.initial_carry(1)["policy"]
        total, steps = 0.0, 0
        while steps < limit:
            seen = jnp.asarray(normalized(obs, stats)[None], jnp.float32)
            (logits,), carry = step(net_params, seen, carry, jnp.array([steps == 0]))
            action = int(np.argmax(np.asarray(logits)[0]))
            obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
            total, steps = total + float(reward), steps + 1
            if terminated or truncated:
                break
        returns.append(total)
        lengths.append(steps)
    return np.mean(returns), np.mean(lengths)


def test_recurrent_evaluation_matches_hand_stepping_and_leaves_training_unchanged(
        rnn_run, rnn_env, tmp_path):
    _, result = rnn_run
    on, state = result.metrics(), result.states["program-000"]
    assert state.memory.policy.shape == (SEEDS, 4, 5)  # the rollout's carries
    config = PPOConfig(**RNN, total_timesteps=RNN_STEPS, eval_every=0)
    network = train.make_setup(config, *rnn_env).network
    for seed in range(SEEDS):
        one = jax.tree.map(lambda x, s=seed: x[s], state)
        expected = recurrent_reference(*rnn_env, network, one.params, one.norm.obs,
                                       acting.evaluation_key(one.key), 4, 20)
        assert (on["eval_return"][seed, -1], on["eval_length"][seed, -1]) == expected
    _, unevaluated = recurrent_run(tmp_path / "off", 0)  # the same run, evaluation off
    off = unevaluated.metrics()
    assert set(on) == set(off) | {"eval_return", "eval_length"}
    for name, values in off.items():
        np.testing.assert_array_equal(on[name], values, err_msg=name)
    off_state = unevaluated.states["program-000"]
    for a, b in zip(jax.tree.leaves(off_state), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_recurrent_policy_from_run_and_file_reproduces_the_final_evaluation(
        rnn_run, tmp_path, capsys):
    out, result = rnn_run
    state = result.states["program-000"]
    final = result.metrics()["eval_return"][:, -1]
    assert cli.main(["export", str(out), "--seed", "1", "--out", str(tmp_path / "r.policy")]) == 0
    loaded = jppo.load_policy(tmp_path / "r.policy")
    network = loaded.actor.network
    assert (network.policy_rnn, network.value_rnn, network.rnn_cell) == (5, 3, "gru")
    for i in range(SEEDS):
        policy = jppo.load_policy(out, seed=i)
        key = acting.evaluation_key(state.key[i])
        assert float(jnp.mean(policy.evaluate(key).returns)) == final[i]
    key = acting.evaluation_key(state.key[1])
    assert float(jnp.mean(loaded.evaluate(key).returns)) == final[1]
    assert cli.main(["eval", str(out)]) == 0
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines()
            if line.startswith("|") and "---" not in line]
    assert rows == ["seed", "0", "1", "all"]


def test_recurrent_policy_steps_with_an_explicit_carry(rnn_run):
    out, _ = rnn_run
    policy = jppo.load_policy(out, seed=0)
    obs = jax.random.normal(jax.random.PRNGKey(0), (3, 6, 2))  # 3 steps, 6 envs
    key = jax.random.PRNGKey(1)
    with pytest.raises(ValueError, match=r"^policy_rnn=5 makes this policy recurrent: .*"
                                         r"policy\.step\(obs, key, carry, reset\)") as error:
        policy.act(obs[0], key)
    assert "\n" not in str(error.value)
    step = jax.jit(policy.step, static_argnames="deterministic")
    carry = policy.initial_carry(6)
    reset = jnp.array([True, False, True, False, False, True])
    actions = []
    for t in range(3):
        action, carry = step(obs[t], key, carry, reset if t == 1 else jnp.zeros(6, bool))
        actions.append(np.asarray(action))
    # the same steps, all envs' carries threaded by hand through the network
    network, params = policy.actor.network, policy.params
    seen = normalized(obs, policy.inputs.obs_stats).astype(np.float32)
    apply = jax.jit(functools.partial(network.apply, method=ActorCritic.policy_step))
    for env in range(6):
        h = network.initial_carry(1)["policy"]
        for t in range(3):
            restart = jnp.array([bool(reset[env]) and t == 1])
            (logits,), h = apply(params, jnp.asarray(seen[t, env:env + 1]), h, restart)
            assert int(np.argmax(logits[0])) == int(actions[t][env]), (env, t)
