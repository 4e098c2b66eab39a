"""The evaluation's env without gymnax's auto-reset gives the same episodes,
bit for bit (returns and lengths, whether episodes end or hit the limit, on
deterministic and stochastic envs and through the observation mask), and an
env whose step is not gymnax's comes back unchanged."""

import functools

import jax
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.core import acting, train


@pytest.mark.parametrize("env_id,max_steps", [("CartPole-v1", 9), ("CartPole-v1", 300),
                                              ("CartPole-NoVelocity-v1", 300),
                                              ("Breakout-MinAtar", 60)])
def test_evaluation_without_auto_reset_gives_the_same_episodes(env_id, max_steps):
    env, env_params = envs.make(env_id)
    config = jppo.PPOConfig(num_envs=2, num_steps=8, total_timesteps=16)
    setup = train.make_setup(config, env, env_params)
    assert setup.eval_env is not setup.env
    assert isinstance(setup.eval_env, envs.EpisodeStatistics)
    hp = config.hparams()
    state = train.init(setup, jax.random.PRNGKey(3), hp)
    inputs = train.policy_inputs(state.params, state.norm, hp)

    @functools.partial(jax.jit, static_argnums=0)
    def run(which, key):
        return acting.evaluate(setup.actor, inputs, which, setup.env_params, key, 6,
                               max_steps, deterministic=False)

    key = jax.random.PRNGKey(5)
    plain, cheap = jax.device_get(run(setup.env, key)), jax.device_get(run(setup.eval_env, key))
    if max_steps == 9:
        assert (plain.lengths == 9).any()  # cut by the limit
    else:
        assert (plain.lengths < max_steps).any() and len(set(plain.lengths)) > 1
    np.testing.assert_array_equal(cheap.returns, plain.returns)
    np.testing.assert_array_equal(cheap.lengths, plain.lengths)


def test_envs_with_their_own_step_come_back_unchanged():
    class OwnStep(envs.Wrapper):
        pass

    inner, _ = envs.resolve("CartPole-v1")
    assert envs.without_auto_reset(object) is object
    wrapped = OwnStep(inner)
    stripped = envs.without_auto_reset(wrapped)
    assert stripped is not wrapped and isinstance(stripped._env, envs.NoAutoReset)
    assert wrapped._env is inner  # the original stack is untouched

    class CustomStep(type(inner)):
        def step(self, key, state, action, params=None):
            return super().step(key, state, action, params)

    custom = CustomStep()
    assert envs.without_auto_reset(custom) is custom
