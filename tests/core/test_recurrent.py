"""Recurrent policies and critics: the carry restarts at every episode start
(against a numpy GRU stepped by hand), sequence minibatches keep each env's steps
in order, learning re-runs reproduce the acting pass, vmapped seeds equal solo
ones and a recurrent run resumes bitwise."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jppo
from jppo import envs
from jppo.core import train
from jppo.core.networks import ActorCritic
from jppo.runs import experiment, results, runner

# Short episodes (time limit 12) so that one rollout holds terminations and truncations.
ENV = ("CartPole-NoVelocity-v1", dict(max_steps_in_episode=12))
SMALL = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 2, update_epochs=2,
             num_minibatches=2, policy_rnn=5, value_rnn=3)


@functools.cache
def collected(**overrides):
    """(setup, state, one collected rollout): the second rollout, so that it
    starts from the carries the first one left."""
    config = jppo.PPOConfig(**{**SMALL, **overrides})
    setup = train.make_setup(config, *envs.make(ENV[0], **ENV[1]))
    hp = config.hparams()
    state = jax.jit(functools.partial(train.init, setup))(jax.random.PRNGKey(0), hp)
    collect = jax.jit(functools.partial(train.collect, setup))
    first = collect(state, hp, jax.random.PRNGKey(1), hp.critic_lambda)
    acted = first.rollout
    state = state.replace(env_state=acted.env_state, obs=acted.obs, memory=acted.memory)
    c = collect(state, hp, jax.random.PRNGKey(2), hp.critic_lambda)
    return setup, state, jax.device_get(c)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru(p, h, x):
    """flax's GRUCell, written out: r, z gates and the candidate n."""
    r = sigmoid(x @ p["ir"]["kernel"] + p["ir"]["bias"] + h @ p["hr"]["kernel"])
    z = sigmoid(x @ p["iz"]["kernel"] + p["iz"]["bias"] + h @ p["hz"]["kernel"])
    n = np.tanh(x @ p["in"]["kernel"] + p["in"]["bias"]
                + r * (h @ p["hn"]["kernel"] + p["hn"]["bias"]))
    return (1.0 - z) * n + z * h


def dense_tanh(layers, x):
    for layer in layers:
        x = np.tanh(x @ layer["kernel"] + layer["bias"])
    return x


def hand_stepped(params, head, obs, done, h0, start0):
    """The carry before and after each step of every env, by a numpy loop that
    restarts from zeros where the previous step ended an episode."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    h = np.asarray(h0, np.float64)
    before, after = [], []
    for t in range(obs.shape[0]):
        start = start0 if t == 0 else done[t - 1]
        h = np.where(start[:, None], 0.0, h)
        before.append(h)
        h = gru(p[f"{head}_cell"], h, obs[t])
        after.append(h)
    return np.stack(before), np.stack(after), p


def test_carries_restart_at_episode_starts_like_a_hand_stepped_gru():
    setup, state, c = collected()
    traj = c.rollout.traj
    done = np.logical_or(traj.terminated, traj.truncated)
    assert done.any(axis=0).all() and traj.terminated.any() and traj.truncated.any()
    # the flags the rollout stored: the previous step's done, the state's at step 0
    np.testing.assert_array_equal(traj.reset[0], state.memory.episode_start)
    np.testing.assert_array_equal(traj.reset[1:], done[:-1])

    obs = np.asarray(traj.obs, np.float64)
    _, after, p = hand_stepped(state.params, "policy", obs, done, state.memory.policy,
                               np.asarray(state.memory.episode_start))
    logits = dense_tanh([p["policy_torso"][f"Dense_{i}"] for i in range(2)], after)
    logits = logits @ p["policy_head"]["kernel"] + p["policy_head"]["bias"]
    log_probs = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    expected = np.take_along_axis(log_probs, traj.action[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(traj.log_prob, expected, atol=1e-5)
    np.testing.assert_allclose(c.rollout.memory.policy, after[-1], atol=1e-5)
    np.testing.assert_array_equal(c.rollout.memory.episode_start, done[-1])

    # the critic: its carries, and V(final obs) from the carry that saw the episode
    _, v_after, _ = hand_stepped(state.params, "value", obs, done, state.memory.value,
                                 np.asarray(state.memory.episode_start))
    np.testing.assert_allclose(c.rollout.traj.critic[1], v_after, atol=1e-5)
    np.testing.assert_allclose(c.rollout.memory.value, v_after[-1], atol=1e-5)
    value = lambda h: (dense_tanh([p["value_torso"][f"Dense_{i}"] for i in range(2)], h)  # noqa: E731
                       @ p["value_head"]["kernel"] + p["value_head"]["bias"])[..., 0]
    np.testing.assert_allclose(c.values, value(v_after), atol=1e-4)
    final = value(gru(p["value_cell"], v_after, np.asarray(traj.final_obs, np.float64)))
    _, final_got = train.rollout_critic_outputs(setup, state.params, traj)
    np.testing.assert_allclose(final_got, final, atol=1e-4)
    restarted = value(gru(p["value_cell"], np.zeros_like(v_after), traj.final_obs))
    assert not np.allclose(final[done], restarted[done], atol=1e-3)


def env_of_row(carry_row, start_carries):
    matches = [i for i, row in enumerate(start_carries) if np.array_equal(row, carry_row)]
    assert len(matches) == 1
    return matches[0]


def test_sequence_minibatches_keep_each_env_whole_and_in_order():
    setup, _, c = collected()
    batch = train.batch_of(setup, c, c.advantages)
    orders = []
    for seed in (0, 3):
        mbs = jax.device_get(train.shuffled_minibatches(setup, batch, jax.random.PRNGKey(seed)))
        assert mbs.obs.shape == (2, 2, 32, 2) and mbs.reset.shape == (2, 2, 32)
        envs_seen = []
        for m in range(2):
            for row in range(2):
                env = env_of_row(mbs.carry["policy"][m, row], c.start.policy)
                envs_seen.append(env)
                np.testing.assert_array_equal(mbs.obs[m, row], c.rollout.traj.obs[:, env])
                np.testing.assert_array_equal(mbs.action[m, row], c.rollout.traj.action[:, env])
                np.testing.assert_array_equal(mbs.advantage[m, row], c.advantages[:, env])
                np.testing.assert_array_equal(mbs.reset[m, row], c.rollout.traj.reset[:, env])
                np.testing.assert_array_equal(mbs.carry["value"][m, row], c.start.value[env])
        assert sorted(envs_seen) == list(range(4))
        orders.append(envs_seen)
    assert orders[0] != orders[1], "envs are shuffled"


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_learning_reruns_reproduce_the_acting_pass(cell):
    """At the parameters that acted, the minibatch re-run from the stored carries
    gives the rollout's log-probabilities and values: ratio 1, no stale state."""
    setup, state, c = collected(rnn_cell=cell)
    batch = train.batch_of(setup, c, c.advantages)
    dist = train.minibatch_policy(setup, state.params, batch)
    log_prob = jppo.core.distributions.log_prob(dist, batch.action, True)
    np.testing.assert_allclose(log_prob, batch.log_prob, atol=1e-5)
    raw = train.minibatch_critic_output(setup, state.params, batch)
    np.testing.assert_allclose(raw, batch.value, atol=1e-4)
    # a run that ignored the restarts would not
    no_reset = batch.replace(reset=jnp.zeros_like(batch.reset))
    stale = train.minibatch_policy(setup, state.params, no_reset)
    assert not np.allclose(jppo.core.distributions.log_prob(stale, batch.action, True),
                           batch.log_prob, atol=1e-5)


def test_policy_step_is_the_single_step_api_for_both_kinds():
    network = ActorCritic(action_dim=2, discrete=True, policy_rnn=4)
    obs = jnp.arange(6.0).reshape(3, 2) / 6
    params = network.init(jax.random.PRNGKey(0), obs)
    carry = network.initial_carry(3)
    assert carry["value"] is None and carry["policy"].shape == (3, 4)

    @jax.jit
    def steps(params, h0):
        first, h1 = network.apply(params, obs, h0, jnp.ones(3, bool),
                                  method=ActorCritic.policy_step)
        second, _ = network.apply(params, obs, h1, jnp.array([True, False, False]),
                                  method=ActorCritic.policy_step)
        value, none = network.apply(params, obs, None, jnp.ones(3, bool),
                                    method=ActorCritic.value_step)
        assert none is None
        return (first[0], second[0], network.apply(params, obs, method=ActorCritic.policy)[0],
                value, network.apply(params, obs, method=ActorCritic.value))

    first, second, policy, value, plain_value = steps(params, carry["policy"])
    np.testing.assert_allclose(first, policy)
    np.testing.assert_allclose(second[0], first[0])  # restarted
    assert not np.allclose(second[1:], first[1:])  # remembered
    np.testing.assert_allclose(value, plain_value)


def test_invalid_recurrent_settings_fail_in_one_line_before_compiling():
    with pytest.raises(ValueError, match=r"^num_minibatches=3 is invalid with a recurrent "
                       r"network .*allowed is a divisor of num_envs=4$"):
        jppo.PPOConfig(num_envs=4, num_steps=12, num_minibatches=3, value_rnn=8)
    jppo.PPOConfig(num_envs=4, num_minibatches=3, num_steps=12)  # feed-forward: steps
    with pytest.raises(ValueError, match=r"rnn_cell='rnn' is invalid: allowed is one of"):
        jppo.PPOConfig(rnn_cell="rnn")
    with pytest.raises(ValueError, match=r"policy_rnn=-1 is invalid"):
        jppo.PPOConfig(policy_rnn=-1)


def test_recurrent_run_equals_solo_runs_and_resumes_bitwise(tmp_path):
    """An LSTM policy and critic (carries are (c, h) pairs) through the chunked
    runner: its seeds, vmapped, equal each seed run alone; stopped, checkpointed
    and resumed, it equals the uninterrupted run bit for bit."""
    data = dict(name="rnn", envs=[ENV[0]], seeds=2, total_timesteps=4 * 16 * 4,
                chunk_updates=2, checkpoint_every=1, env_params={ENV[0]: ENV[1]},
                config=dict(num_envs=4, num_steps=16, update_epochs=2, num_minibatches=2,
                            policy_rnn=4, value_rnn=4, rnn_cell="lstm"))
    exp = experiment.from_dict(data)
    reference = runner.run_experiment(exp, None, progress="off")
    batched = jax.device_get(next(iter(reference.states.values())))
    assert isinstance(batched.memory.policy, tuple) and batched.memory.policy[0].shape == (2, 4, 4)

    trainer = jppo.make_train(exp.variant_config("default"), *envs.make(ENV[0], **ENV[1]))
    solo = jax.jit(trainer)
    for i, key in enumerate(runner.seed_keys(2)):
        alone = jax.device_get(solo(key))
        for name, values in alone.metrics.items():
            np.testing.assert_allclose(reference.metrics()[name][i], values, rtol=1e-5,
                                       atol=1e-6, equal_nan=True, err_msg=name)
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6),
                     (batched.params, batched.memory), (alone.state.params, alone.state.memory))

    out = tmp_path / "run"
    runner.run_experiment(exp, out, progress="off", stop_after_chunks=1)
    assert 0 < len(results.read_metrics(out)) < len(reference.frame)
    resumed = runner.run_experiment(exp, out, resume=True, progress="off")
    pd.testing.assert_frame_equal(resumed.frame, reference.frame, check_exact=True)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.states),
                 jax.device_get(reference.states))


def test_masked_cartpole_shows_positions_only_also_in_final_observations():
    masked, params = envs.make("CartPole-NoVelocity-v1", max_steps_in_episode=5)
    full, _ = envs.make("CartPole-v1", max_steps_in_episode=5)
    assert envs.env_spec(masked, params).obs_shape == (2,)
    np.testing.assert_allclose(masked.observation_space(params).high,
                               np.asarray(full.observation_space(params).high)[[0, 2]])
    key = jax.random.PRNGKey(4)
    (obs_m, state_m), (obs_f, state_f) = masked.reset(key, params), full.reset(key, params)
    np.testing.assert_array_equal(obs_m, obs_f[np.array([0, 2])])
    for t in range(6):  # the 5th step truncates
        step_key = jax.random.fold_in(key, t)
        obs_m, state_m, _, _, trunc_m, info_m = masked.step(step_key, state_m, 1, params)
        obs_f, state_f, _, _, trunc_f, info_f = full.step(step_key, state_f, 1, params)
        np.testing.assert_array_equal(obs_m, obs_f[np.array([0, 2])])
        np.testing.assert_array_equal(info_m["final_observation"],
                                      info_f["final_observation"][np.array([0, 2])])
        assert bool(trunc_m) == bool(trunc_f)
    assert "CartPole-NoVelocity-v1" in envs.list_masked_envs()
    with pytest.raises(ValueError, match=r"keep=\(0, 7\) is invalid for observations"):
        envs.ObservationMask(envs.resolve("CartPole-v1")[0], (0, 7)).observation_space()
