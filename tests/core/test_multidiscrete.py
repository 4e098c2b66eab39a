"""MultiDiscrete actions: the space, what EnvSpec reads from it, the factorized
categorical policy checked against numpy, and a user environment that trains."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import jppo
from jppo import envs
from jppo.core import distributions

NVEC = (3, 4, 5)
TARGET = (2, 0, 4)
KEY = jax.random.PRNGKey(0)


def numpy_log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def numpy_components(logits, nvec):
    """Per-component log-probabilities, split by hand (independent of jnp.split)."""
    out, start = [], 0
    for n in nvec:
        out.append(numpy_log_softmax(logits[..., start:start + n].astype(np.float64)))
        start += n
    return out


@pytest.fixture
def logits_and_actions():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(2, 6, sum(NVEC))).astype(np.float32)
    actions = np.stack([rng.integers(0, n, size=(2, 6)) for n in NVEC], axis=-1)
    return logits, actions


def test_log_prob_is_the_sum_of_component_log_probs(logits_and_actions):
    logits, actions = logits_and_actions
    parts = numpy_components(logits, NVEC)
    expected = sum(np.take_along_axis(lp, actions[..., i:i + 1], axis=-1)[..., 0]
                   for i, lp in enumerate(parts))
    out = distributions.log_prob((jnp.asarray(logits),), jnp.asarray(actions), True, NVEC)
    chex.assert_shape(out, (2, 6))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_entropy_is_the_sum_of_component_entropies(logits_and_actions):
    logits, _ = logits_and_actions
    expected = sum(-(np.exp(lp) * lp).sum(axis=-1) for lp in numpy_components(logits, NVEC))
    out = distributions.entropy((jnp.asarray(logits),), True, NVEC)
    chex.assert_shape(out, (2, 6))
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # uniform logits: sum of log n
    np.testing.assert_allclose(distributions.entropy((jnp.zeros(sum(NVEC)),), True, NVEC),
                               np.log(NVEC).sum(), rtol=1e-6)


def test_samples_have_one_component_per_nvec_entry_with_the_right_marginals():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=sum(NVEC)).astype(np.float32)
    n = 30_000
    actions = distributions.sample(KEY, (jnp.broadcast_to(jnp.asarray(logits), (n, 12)),),
                                   True, NVEC)
    chex.assert_shape(actions, (n, 3))
    chex.assert_type(actions, jnp.int32)
    for i, lp in enumerate(numpy_components(logits, NVEC)):
        freq = np.bincount(np.asarray(actions[:, i]), minlength=NVEC[i]) / n
        np.testing.assert_allclose(freq, np.exp(lp), atol=0.015)  # std error < 0.003


def test_space_samples_and_contains():
    space = envs.MultiDiscrete(NVEC)
    assert space.shape == (3,) and space.nvec == NVEC
    draws = jax.vmap(space.sample)(jax.random.split(KEY, 500))
    chex.assert_shape(draws, (500, 3))
    assert np.all(np.asarray(draws) < np.asarray(NVEC)) and np.all(np.asarray(draws) >= 0)
    assert bool(space.contains(jnp.array(TARGET)))
    assert not bool(space.contains(jnp.array([3, 0, 0])))
    with pytest.raises(ValueError, match=r"^nvec=\(3, 0\) is invalid"):
        envs.MultiDiscrete((3, 0))


# ------------------------------------------------------------------ a user env


@struct.dataclass
class DigitState(environment.EnvState):
    pass


class DigitMatch(environment.Environment):
    """Pick one digit per position; the reward is the fraction that match a fixed
    target. Every episode is one step; the observation is noise."""

    @property
    def name(self) -> str:
        return "DigitMatch"

    @property
    def num_actions(self) -> int:
        return sum(NVEC)

    def action_space(self, params=None) -> envs.MultiDiscrete:
        return envs.MultiDiscrete(NVEC)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def reset_env(self, key, params):
        return jax.random.uniform(key, (2,)), DigitState(time=0)

    def step_env(self, key, state, action, params):
        reward = jnp.mean((action == jnp.asarray(TARGET)).astype(jnp.float32))
        obs = jax.random.uniform(key, (2,))
        return obs, DigitState(time=state.time + 1), reward, jnp.array(True), {}


def digit_env():
    env = envs.EpisodeStatistics(envs.FlattenObservation(DigitMatch()))
    return env, env.default_params


def test_env_spec_reads_a_multidiscrete_space():
    spec = envs.env_spec(*digit_env())
    assert spec.discrete and spec.action_nvec == NVEC
    assert (spec.num_actions, spec.action_dim, spec.obs_shape) == (12, 3, (2,))


def test_unsupported_action_space_names_the_allowed_ones():
    class TupleActions(DigitMatch):
        def action_space(self, params=None):
            return spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])

    with pytest.raises(TypeError, match=r"Tuple.*allowed are Discrete, Box and "
                                        r"envs\.spaces\.MultiDiscrete"):
        envs.env_spec(TupleActions())


def test_a_bare_multidiscrete_env_is_accepted_and_wrapped():
    """jppo wraps a user's MultiDiscrete env itself, as it wraps any other."""
    bare = DigitMatch()
    wrapped, params = envs.wrap(bare, bare.default_params)
    assert envs.is_wrapped(wrapped) and not envs.is_wrapped(bare)
    assert envs.env_spec(wrapped, params).action_nvec == NVEC
    trainer = jppo.make_train(jppo.PPOConfig(num_envs=2, num_steps=4, total_timesteps=8,
                                             num_minibatches=1), bare)
    assert trainer.spec.action_nvec == NVEC


def test_a_multidiscrete_user_env_trains():
    config = jppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 8,
                            num_minibatches=2, lr=3e-2, ent_coef=0.0,
                            policy_hidden=(16,), value_hidden=(16,))
    trainer = jppo.make_train(config, *digit_env())
    assert trainer.network.torso_kind == "mlp"
    result = jax.jit(trainer)(KEY)
    metrics = jax.tree.map(np.asarray, result.metrics)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "reward_mean"):
        assert np.all(np.isfinite(metrics[name])), name
    chex.assert_shape(result.state.params["params"]["policy_head"]["kernel"], (16, 12))
    # uniform start: expected reward mean(1/3, 1/4, 1/5) = 0.26; entropy at most sum(log n)
    assert metrics["entropy"][0] <= np.log(NVEC).sum() + 1e-4
    # measured: reward_mean 0.29 -> 0.99 and entropy 3.9 -> 0.04 over the 8 updates
    assert metrics["reward_mean"][-2:].mean() > metrics["reward_mean"][:2].mean() + 0.2, \
        metrics["reward_mean"]
    assert metrics["entropy"][-1] < metrics["entropy"][0] - 0.5
