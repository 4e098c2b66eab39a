"""The case studies' own environments, FactoredReach (frozen policy) and
AnswerRanking (KL early stopping), against references computed here in numpy:
their rewards, episode ends and the figures their docstrings and READMEs state.

Rollouts are one jitted ``vmap`` over many episodes; Monte-Carlo tolerances are
4 standard errors of the sample at hand."""

import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.case_studies import envs_frozen_policy as reach
from experiments.case_studies import envs_kl_early_stop as ranking
from jppo import envs

ROOT = Path(__file__).resolve().parents[2]
REACH = "experiments.case_studies.envs_frozen_policy:make_env"
RANKING = "experiments.case_studies.envs_kl_early_stop:make_env"


@pytest.fixture(autouse=True)
def repo_root_importable(monkeypatch):
    """Import paths ``experiments.…`` resolve from the repository root."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))


def keys(n: int, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.PRNGKey(seed), n)


def within_mc(samples: np.ndarray, expected: float, extra_se: float = 0.0) -> None:
    """Mean of ``samples`` equals ``expected`` within 4 standard errors (plus
    the reference's own ``extra_se`` where it is an estimate too)."""
    samples = np.asarray(samples, np.float64).ravel()
    se = math.hypot(samples.std(ddof=1) / math.sqrt(samples.size), extra_se)
    assert abs(samples.mean() - expected) < 4 * se, (samples.mean(), expected, se)


# ---------------------------------------------------------------- both envs
@pytest.mark.parametrize("path, kwargs, obs_dim, discrete, action_dim, num_actions", [
    (REACH, {}, 2 + 2 + 5 + 1 + 16, False, 7, 0),  # the README's 7 action dimensions
    (REACH, {"n_config": 3, "n_distractors": 0}, 2 + 2 + 3 + 1, False, 5, 0),
    (RANKING, {}, (8 + 1) * 4 + 1, True, 1, 8),
    (RANKING, {"num_candidates": 16, "feature_dim": 2}, (16 + 1) * 2 + 1, True, 1, 16),
])
def test_the_import_path_passes_the_api_check_with_the_stated_shapes(
        path, kwargs, obs_dim, discrete, action_dim, num_actions):
    env, params = envs.make(path, **kwargs)  # wrapped for training
    spec = envs.env_spec(env, params)
    assert (spec.obs_dim, spec.discrete, spec.action_dim, spec.num_actions) == (
        obs_dim, discrete, action_dim, num_actions)
    module = reach if path == REACH else ranking
    bare, bare_params = module.make_env(**kwargs)
    assert envs.check_env_api(bare) == bare_params == bare.default_params
    assert envs.env_spec(bare, bare_params) == spec


@pytest.mark.parametrize("factory, kwargs, message", [
    (reach.make_env, {"n_config": 0}, "n_config=0 is invalid: allowed is an integer >= 1"),
    (reach.make_env, {"n_distractors": -1}, "n_distractors=-1 is invalid"),
    (ranking.make_env, {"num_candidates": 1}, "num_candidates=1 is invalid: allowed is an "
                                              "integer >= 2"),
    (ranking.make_env, {"feature_dim": True}, "feature_dim=True is invalid"),
])
def test_a_wrong_factory_argument_fails_in_one_line(factory, kwargs, message):
    with pytest.raises(ValueError) as error:
        factory(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_uniform_gaussian_entropy_is_the_readme_figure():
    """README: a std-1 Gaussian over FactoredReach's actions has entropy 7 x 1.42 = 9.9."""
    env, params = reach.make_env()
    dims = env.action_space(params).shape[0]
    assert round(dims * 0.5 * math.log(2 * math.pi * math.e), 1) == 9.9


# ------------------------------------------------------------- FactoredReach
def reach_reference(state, action, params, n_config):
    """One FactoredReach step in numpy from the docstring's definitions."""
    pos, goal, code = (np.asarray(x, np.float64) for x in (state.position, state.goal,
                                                           state.code))
    act = np.clip(np.asarray(action, np.float64), -1, 1)
    new = np.clip(pos + params.speed * act[:, :2], -1, 1)
    before, after = (np.linalg.norm(goal - p, axis=1) for p in (pos, new))
    parts = {"progress": params.progress_reward * (before - after),
             "configuration": params.config_reward * (code * act[:, 2:]).mean(1),
             "effort": -params.effort_cost * (act**2).sum(1),
             "goal": np.where(after < params.goal_radius, params.goal_bonus, 0.0)}
    assert code.shape[1] == n_config and set(np.unique(code)) <= {-1.0, 1.0}
    return new, parts, after < params.goal_radius


def test_reach_reward_is_the_sum_of_its_hand_computed_parts():
    """Random states and actions of scale 2 (so clipping acts), one step each."""
    env, params = reach.make_env()
    n = 4096
    _, states = jax.vmap(env.reset, (0, None))(keys(n), params)
    actions = 2.0 * jax.random.normal(jax.random.PRNGKey(1), (n, 7))
    step = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))
    _, _, reward, terminated, truncated, info = step(keys(n, 2), states, actions, params)
    new, parts, reached = reach_reference(states, actions, params, env.n_config)
    for name, value in parts.items():
        np.testing.assert_allclose(info["reward_components"][name], value, atol=2e-5)
    np.testing.assert_allclose(reward, sum(parts.values()), atol=5e-5)
    near = np.abs(np.linalg.norm(new - np.asarray(states.goal), axis=1) - params.goal_radius)
    clear = near > 1e-5  # float32 and float64 may disagree on the goal's edge
    np.testing.assert_array_equal(np.asarray(terminated)[clear], reached[clear])
    assert reached.sum() > 0 and not np.any(truncated)  # first step: time 1 of 64
    final = np.asarray(info["final_observation"])
    np.testing.assert_allclose(final[:, :2], new, atol=1e-6)
    np.testing.assert_allclose(final[:, 9], 1 / 64)


def roll(env, params, policies, n, steps):
    """``steps`` steps of ``n`` envs under each ``policy(key, obs) -> action``,
    all in one compiled program: the per-step outputs stacked (policy, env,
    step, ...) and the last states (policy, env, ...)."""
    def one_env(which, key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def body(carry, key):
            obs, state = carry
            act_key, step_key = jax.random.split(key)
            action = jax.lax.switch(which, policies, act_key, obs)
            new_obs, state, reward, terminated, truncated, info = env.step(
                step_key, state, action, params)
            out = dict(obs=obs, action=action, reward=reward, terminated=terminated,
                       truncated=truncated, final=info["final_observation"], next_obs=new_obs,
                       info=info)
            return (new_obs, state), out

        (_, state), out = jax.lax.scan(body, (obs, state), jax.random.split(key, steps))
        return out, state

    which = jnp.repeat(jnp.arange(len(policies)), n)
    out, last = jax.jit(jax.vmap(one_env))(which, keys(len(policies) * n))
    return jax.tree.map(lambda x: np.asarray(x).reshape(len(policies), n, *x.shape[1:]),
                        (out, last))


def gaussian(key, _):
    return jax.random.normal(key, (7,))


def toward_goal(_, obs):
    """Full speed straight at the goal, every setting on the code's side."""
    direction = obs[2:4] - obs[:2]
    return jnp.concatenate([direction / jnp.linalg.norm(direction), obs[4:9]])


def stand_still(_, obs):
    return jnp.zeros(7)


@pytest.fixture(scope="module")
def reach_runs():
    """256 episodes' worth of envs per policy, 130 steps (two truncations)."""
    env, params = reach.make_env()
    out, _ = roll(env, params, (gaussian, toward_goal, stand_still), 256, 130)
    return params, {name: jax.tree.map(lambda x, i=i: x[i], out)
                    for i, name in enumerate(("gaussian", "toward_goal", "stand_still"))}


def clipped_normal_second_moment() -> float:
    """E[clip(a, -1, 1)^2] for a ~ N(0, 1)."""
    inside = math.erf(1 / math.sqrt(2))  # P(|a| < 1)
    density = math.exp(-0.5) / math.sqrt(2 * math.pi)
    return inside - 2 * density + (1 - inside)


def test_reach_random_gaussian_policy_earns_the_stated_per_step_reward(reach_runs):
    """Docstring: mean 0, std 1 earns about -0.35 per step, effort and nothing
    else on average; the configuration part averages exactly 0."""
    params, runs = reach_runs
    out = runs["gaussian"]
    parts = out["info"]["reward_components"]
    effort = -params.effort_cost * 7 * clipped_normal_second_moment()
    within_mc(parts["effort"], effort)
    within_mc(parts["configuration"], 0.0)
    assert abs(out["reward"].mean() - (-0.35)) < 0.02  # "about -0.35"
    assert abs(effort - (-0.35)) < 0.02


def test_reach_distractors_carry_no_information(reach_runs):
    """The noise features: uniform in [-1, 1], fresh every step (uncorrelated
    with the last ones), uncorrelated with the reward, and nothing but the
    observation changes when they do."""
    params, runs = reach_runs
    out = runs["gaussian"]
    env, _ = reach.make_env()
    noise = out["obs"][..., 10:]
    assert noise.shape[-1] == 16 and noise.min() >= -1 and noise.max() <= 1
    within_mc(noise, 0.0)
    within_mc(noise**2, 1 / 3)
    flat_noise = noise.reshape(-1, 16)
    for target in (out["reward"].reshape(-1, 1), out["next_obs"][..., 10:].reshape(-1, 16)):
        corr = np.corrcoef(flat_noise.T, target.T)[:16, 16:]
        # 6 standard errors: the largest of up to 256 correlations that are 0
        assert np.abs(corr).max() < 6 / math.sqrt(flat_noise.shape[0]), corr
    _, state = env.reset(jax.random.PRNGKey(3), params)
    action = jnp.linspace(-1, 1, 7)
    a = env.step(jax.random.PRNGKey(4), state, action, params)
    b = env.step(jax.random.PRNGKey(4), state.replace(distractors=-state.distractors + 0.5),
                 action, params)
    jax.tree.map(np.testing.assert_array_equal, a, b)  # same key: bit for bit the same


def test_reach_greedy_policy_terminates_with_the_bonus(reach_runs):
    """Straight at the goal, the agent is within 0.15 after k = floor((d0 -
    0.15) / 0.1) + 1 steps; each step pays 1 of progress, 1 of configuration,
    -0.6 of effort, and the last 5 more: the return is 1.4 k + 5."""
    params, runs = reach_runs
    out = runs["toward_goal"]
    d0 = np.linalg.norm(out["obs"][:, 0, 2:4] - out["obs"][:, 0, :2], axis=1)
    steps = (d0 - params.goal_radius) / params.speed
    keep = (d0 > 0.25) & (np.abs(steps - np.round(steps)) > 1e-3)
    k = np.floor(steps).astype(int) + 1
    assert keep.sum() > 200 and k.max() < 32
    for e in np.flatnonzero(keep):
        ended = np.flatnonzero(out["terminated"][e])
        assert ended[0] == k[e] - 1, (e, ended, k[e])
        np.testing.assert_allclose(out["reward"][e, :k[e]].sum(), 1.4 * k[e] + 5, atol=1e-4)
        last = out["final"][e, k[e] - 1]
        assert np.linalg.norm(last[2:4] - last[:2]) < params.goal_radius
        np.testing.assert_allclose(last[9], k[e] / 64, rtol=1e-6)
        assert out["next_obs"][e, k[e] - 1, 9] == 0  # a fresh episode
    assert not out["truncated"][:, :32].any()


def test_reach_truncates_after_max_steps_with_the_final_observation(reach_runs):
    """Standing still earns 0 (up to float32 round-off in the progress term: XLA
    may evaluate the two equal distances differently), never terminates (from
    a start away from the goal) and is truncated at step 64, once per 64 steps."""
    params, runs = reach_runs
    out = runs["stand_still"]
    d0 = np.linalg.norm(out["obs"][:, 0, 2:4] - out["obs"][:, 0, :2], axis=1)
    away = d0 > params.goal_radius
    assert away.sum() > 200
    np.testing.assert_allclose(out["reward"][away, :64], 0.0, atol=2e-6)
    assert not out["terminated"][away, :64].any()
    truncated = out["truncated"][away]
    assert (truncated[:, :64].sum(1) == 1).all() and truncated[:, 63].all()
    final = out["final"][away, 63]
    np.testing.assert_array_equal(final[:, :9], out["obs"][away, 0, :9])  # as it began
    assert (final[:, 9] == 1.0).all()  # the whole time used, seen before the reset
    assert (out["next_obs"][away, 63, 9] == 0).all()
    assert (out["obs"][away, 64, :4] != out["obs"][away, 0, :4]).any(axis=1).all()


# ------------------------------------------------------------- AnswerRanking
def relevance_from_obs(obs: np.ndarray, k: int = 8, d: int = 4, popularity: float = 1.0):
    """The true relevance of every candidate, read off the observation."""
    query, cands = obs[..., :d], obs[..., d:d + k * d].reshape(*obs.shape[:-1], k, d)
    return popularity * cands[..., 0] + np.einsum("...kd,...d->...k", cands, query)


def relevance_from_obs_jax(obs: jax.Array) -> jax.Array:
    cands = obs[4:36].reshape(8, 4)
    return cands[:, 0] + cands @ obs[:4]


RANKERS = {
    "uniform": lambda key, _: jax.random.randint(key, (), 0, 8),
    "perfect": lambda _, obs: jnp.argmax(relevance_from_obs_jax(obs)),
    "worst": lambda _, obs: jnp.argmin(relevance_from_obs_jax(obs)),
    "most_popular": lambda _, obs: jnp.argmax(obs[4:36].reshape(8, 4)[:, 0]),
}


@pytest.fixture(scope="module")
def ranking_runs():
    """1024 envs per ranker, 4 episodes of 4 queries each, through the wrapped
    env ``envs.make`` builds from the import path."""
    env, params = envs.make(RANKING)
    out, last = roll(env, params, tuple(RANKERS.values()), 1024, 16)
    return {name: jax.tree.map(lambda x, i=i: x[i], (out, last))
            for i, name in enumerate(RANKERS)}


def test_ranking_reward_is_the_reciprocal_rank_of_the_pick_it_saw(ranking_runs):
    out, _ = ranking_runs["uniform"]
    rel = relevance_from_obs(out["obs"].astype(np.float64))
    picked = np.take_along_axis(rel, out["action"][..., None], -1)
    rank = 1 + (rel > picked).sum(-1)
    np.testing.assert_allclose(out["reward"], 1 / rank / 4, rtol=1e-6)
    np.testing.assert_allclose(out["info"]["reciprocal_rank"], 1 / rank, rtol=1e-6)
    ends = np.arange(1, 17) % 4 == 0
    assert (out["terminated"] == ends).all() and not out["truncated"].any()
    used = np.arange(1, 17) % 4 / 4  # the fraction of the episode used after each step
    np.testing.assert_array_equal(out["final"][..., -1], np.broadcast_to(used + ends, (1024, 16)))
    np.testing.assert_array_equal(out["next_obs"][..., -1], np.broadcast_to(used, (1024, 16)))
    np.testing.assert_array_equal(out["final"][:, ~ends], out["next_obs"][:, ~ends])


def episode_returns(run) -> np.ndarray:
    """Each env's 4 episode returns; the wrapper's own count and sum agree."""
    out, last = run
    n = out["reward"].shape[0]
    returns = out["reward"].reshape(n, 4, 4).sum(-1)
    assert np.sum(last.finished_count) == 4 * n
    np.testing.assert_allclose(np.sum(last.finished_return_sum), returns.sum(), rtol=1e-5)
    return returns


def numpy_most_popular_rr(n: int, k: int = 8, d: int = 4) -> np.ndarray:
    """Reciprocal ranks of the most popular candidate on ``n`` numpy-drawn queries."""
    rng = np.random.default_rng(0)
    query, cands = rng.standard_normal((n, d)), rng.standard_normal((n, k, d))
    relevance = cands[..., 0] + np.einsum("nkd,nd->nk", cands, query)
    picked = relevance[np.arange(n), cands[..., 0].argmax(1)]
    return 1 / (1 + (relevance > picked[:, None]).sum(1))


def test_ranking_episode_return_is_the_mrr_of_the_picks(ranking_runs):
    """A perfect ranker scores 1 exactly, the worst 1/8; uniform picks score
    H_8 / 8 and the most popular pick a numpy estimate, within Monte-Carlo
    tolerance, and both agree with the README's figures (4000 queries each)."""
    returns = {name: episode_returns(run) for name, run in ranking_runs.items()}
    assert (returns["perfect"] == 1).all()
    np.testing.assert_allclose(returns["worst"], 1 / 8, rtol=1e-6)
    rr = 1 / np.arange(1, 9)  # a uniform pick's reciprocal rank, each with probability 1/8
    within_mc(returns["uniform"], rr.mean())
    assert abs(0.335 - rr.mean()) < 4 * rr.std() / math.sqrt(4000)
    rr = numpy_most_popular_rr(100_000)
    within_mc(returns["most_popular"], rr.mean(), extra_se=rr.std() / math.sqrt(rr.size))
    assert abs(0.543 - rr.mean()) < 4 * rr.std() / math.sqrt(4000)
