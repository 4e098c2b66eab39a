"""A recurrent cell shared by both heads (`torso_rnn`): its carry restarts at
every episode start (against a numpy GRU stepped by hand), the critic reads the
very state the policy acted from, V(final observation) reads the state that saw
the episode, learning re-runs reproduce the acting pass, the network equals the
per-network cells given the same cell in both heads (outputs and gradients),
vmapped seeds equal solo ones, a run resumes bitwise, an exported policy
reproduces the in-run evaluation, and invalid combinations fail in one line."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jppo
from jppo import envs
from jppo.core import acting, distributions, train
from jppo.core.networks import ActorCritic
from jppo.runs import experiment, results, runner

ENV = ("CartPole-NoVelocity-v1", dict(max_steps_in_episode=12))
SMALL = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 2, update_epochs=2,
             num_minibatches=2, torso_hidden=(6,), torso_rnn=5, policy_hidden=(7,),
             value_hidden=(3,))


@functools.cache
def collected(**overrides):
    """(setup, state, the second collected rollout), which starts from the
    carries the first one left."""
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
    """flax's GRUCell, written out."""
    r = sigmoid(x @ p["ir"]["kernel"] + p["ir"]["bias"] + h @ p["hr"]["kernel"])
    z = sigmoid(x @ p["iz"]["kernel"] + p["iz"]["bias"] + h @ p["hz"]["kernel"])
    n = np.tanh(x @ p["in"]["kernel"] + p["in"]["bias"]
                + r * (h @ p["hn"]["kernel"] + p["hn"]["bias"]))
    return (1.0 - z) * n + z * h


def dense_tanh(layer, x):
    return np.tanh(x @ layer["kernel"] + layer["bias"])


def test_one_cell_feeds_both_heads_and_restarts_at_episode_starts():
    setup, state, c = collected()
    traj = c.rollout.traj
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params["params"])
    assert "policy_cell" not in p and "value_cell" not in p and "torso_cell" in p
    done = np.logical_or(traj.terminated, traj.truncated)
    assert traj.terminated.any() and traj.truncated.any()
    np.testing.assert_array_equal(state.memory.policy, state.memory.value)  # one state

    def features(obs):
        return dense_tanh(p["torso"]["Dense_0"], np.asarray(obs, np.float64))

    h, after = np.asarray(state.memory.policy, np.float64), []
    for t in range(traj.obs.shape[0]):
        start = state.memory.episode_start if t == 0 else done[t - 1]
        h = np.where(np.asarray(start)[:, None], 0.0, h)
        h = gru(p["torso_cell"], h, features(traj.obs[t]))
        after.append(h)
    after = np.stack(after)
    logits = dense_tanh(p["policy_torso"]["Dense_0"], after)
    logits = logits @ p["policy_head"]["kernel"] + p["policy_head"]["bias"]
    log_probs = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    expected = np.take_along_axis(log_probs, traj.action[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(traj.log_prob, expected, atol=1e-5)

    def value(h):
        return (dense_tanh(p["value_torso"]["Dense_0"], h) @ p["value_head"]["kernel"]
                + p["value_head"]["bias"])[..., 0]

    np.testing.assert_allclose(c.values, value(after), atol=1e-5)  # the policy's state
    np.testing.assert_allclose(c.rollout.memory.policy, after[-1], atol=1e-5)
    np.testing.assert_array_equal(c.rollout.memory.policy, c.rollout.memory.value)
    final = value(gru(p["torso_cell"], after, features(traj.final_obs)))
    _, final_got = train.rollout_critic_outputs(setup, state.params, traj)
    np.testing.assert_allclose(final_got, final, atol=1e-5)
    restarted = value(gru(p["torso_cell"], np.zeros_like(after), features(traj.final_obs)))
    assert not np.allclose(final[done], restarted[done], atol=1e-3)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_learning_reruns_reproduce_the_acting_pass(cell):
    setup, state, c = collected(rnn_cell=cell)
    batch = train.batch_of(setup, c, c.advantages)
    assert batch.obs.shape[:2] == (4, 32)  # whole env sequences
    memories = train.sequence_memories(setup, state.params, batch, ("policy", "value"))
    assert memories["policy"] is memories["value"]  # one pass of the shared cell
    dist = train.minibatch_policy(setup, state.params, batch, memories)
    log_prob = distributions.log_prob(dist, batch.action, True)
    np.testing.assert_allclose(log_prob, batch.log_prob, atol=1e-5)
    raw = train.minibatch_critic_output(setup, state.params, batch)  # a pass of its own
    np.testing.assert_allclose(raw, batch.value, atol=1e-5)
    no_reset = batch.replace(reset=jnp.zeros_like(batch.reset))
    stale = train.minibatch_policy(setup, state.params, no_reset)
    assert not np.allclose(distributions.log_prob(stale, batch.action, True), batch.log_prob,
                           atol=1e-5)


def per_network_twin(setup, params):
    """The per-network setup with both heads' cells set to the shared cell."""
    config = setup.config.replace(torso_rnn=0, policy_rnn=5, value_rnn=5)
    twin = train.make_setup(config, *envs.make(ENV[0], **ENV[1]))
    inner = dict(params["params"])
    cell = inner.pop("torso_cell")
    return twin, {"params": {**inner, "policy_cell": cell, "value_cell": cell}}


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_shared_cell_equals_per_network_cells_holding_the_same_weights(cell):
    """Where they must agree: both heads' outputs along the sequences, the loss,
    and the gradients (the shared cell's is the sum of the two cells')."""
    setup, state, c = collected(rnn_cell=cell)
    twin, twin_params = per_network_twin(setup, state.params)
    batch = train.batch_of(setup, c, c.advantages)
    for name in ("minibatch_policy", "minibatch_critic_output"):
        np.testing.assert_allclose(getattr(train, name)(setup, state.params, batch),
                                   getattr(train, name)(twin, twin_params, batch), atol=1e-6)
    hp = setup.config.hparams()
    ctx = train.LossContext(c.norm, hp, hp.ent_coef, jnp.ones(()))

    def loss_and_grads(s, params):
        return jax.value_and_grad(lambda q: train.total_loss(s, q, batch, ctx)[0])(params)

    loss, grads = loss_and_grads(setup, state.params)
    twin_loss, twin_grads = loss_and_grads(twin, twin_params)
    np.testing.assert_allclose(loss, twin_loss, rtol=1e-6)
    shared, twin_inner = grads["params"], dict(twin_grads["params"])
    summed = jax.tree.map(jnp.add, twin_inner.pop("policy_cell"), twin_inner.pop("value_cell"))
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6),
                 (shared["torso_cell"], {k: v for k, v in shared.items() if k != "torso_cell"}),
                 (summed, twin_inner))


def test_invalid_shared_cell_settings_fail_in_one_line_before_compiling():
    with pytest.raises(ValueError, match=r"^torso_rnn=8 is invalid with torso_hidden=\(\): .*"
                       r"allowed is torso_hidden set"):
        jppo.PPOConfig(torso_rnn=8)
    with pytest.raises(ValueError, match=r"^torso_rnn=8 is invalid with policy_rnn=4, "
                       r"value_rnn=0: .*allowed is torso_rnn=0, or policy_rnn=0 and value_rnn=0$"):
        jppo.PPOConfig(torso_rnn=8, torso_hidden=(8,), policy_rnn=4)
    with pytest.raises(ValueError, match=r"^num_minibatches=3 is invalid with a recurrent "
                       r"network .*torso_rnn=8\): .*allowed is a divisor of num_envs=4$"):
        jppo.PPOConfig(num_envs=4, num_steps=12, num_minibatches=3, torso_rnn=8,
                       torso_hidden=(8,))
    with pytest.raises(ValueError, match=r"^torso_rnn=-1 is invalid: allowed is an integer"):
        jppo.PPOConfig(torso_rnn=-1, torso_hidden=(8,))


def test_shared_lstm_run_equals_solo_runs_resumes_bitwise_and_exports(tmp_path):
    data = dict(name="shared-rnn", envs=[ENV[0]], seeds=2, total_timesteps=4 * 16 * 4,
                chunk_updates=2, checkpoint_every=1, env_params={ENV[0]: ENV[1]},
                config=dict(num_envs=4, num_steps=16, update_epochs=2, num_minibatches=2,
                            torso_hidden=(8,), torso_rnn=4, rnn_cell="lstm", eval_every=2,
                            eval_episodes=3))
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

    out = tmp_path / "run"
    runner.run_experiment(exp, out, progress="off", stop_after_chunks=1)
    assert 0 < len(results.read_metrics(out)) < len(reference.frame)
    resumed = runner.run_experiment(exp, out, resume=True, progress="off")
    pd.testing.assert_frame_equal(resumed.frame, reference.frame, check_exact=True)

    final = reference.metrics()["eval_return"][:, -1]
    policy = jppo.load_policy(out, seed=1)
    assert policy.recurrent and policy.actor.network.torso_rnn == 4
    with pytest.raises(ValueError, match=r"^torso_rnn=4 makes this policy recurrent: "):
        policy.act(jnp.zeros((1, 2)), jax.random.PRNGKey(0))
    policy.save(tmp_path / "p.policy")
    loaded = jppo.load_policy(tmp_path / "p.policy")
    key = acting.evaluation_key(batched.key[1])
    assert float(jnp.mean(loaded.evaluate(key).returns)) == final[1]
    carry = loaded.initial_carry(3)
    assert jax.tree.map(jnp.shape, carry) == ((3, 4), (3, 4))
    step = jax.jit(functools.partial(loaded.actor.network.apply, method=ActorCritic.policy_step))
    (logits,), _ = step(loaded.params, jnp.zeros((3, 2)), carry, jnp.ones(3, bool))
    assert logits.shape == (3, 2)
