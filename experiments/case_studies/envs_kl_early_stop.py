"""AnswerRanking: pick the best answer to a query among K candidates.

A stand-in for learned answer selection (question answering, knowledge-graph
link prediction): each step shows a query's feature vector and K candidate
answers' feature vectors; the agent picks one candidate. The true relevance of
candidate k is ``popularity * c_k[0] + q . c_k``: a query-independent prior
(the first feature, as "how often this answer is right", which a network
learns quickly) plus the query-candidate match (a product of features, which it
learns slowly). The reward is the reciprocal of
the pick's rank in the true ordering (1 for the best answer, 1/2 for the
second, ...), divided by the number of queries per episode, so an episode's
return is the mean reciprocal rank (MRR) of its picks. The deterministic
evaluation return is therefore a test MRR on fresh queries.

An episode is ``max_steps_in_episode`` independent queries; the observation is
the query, the candidates (flattened) and the fraction of the episode used,
so the critic predicts the MRR still to come and GAE spans several steps. It
ends *terminated* after its last query. Queries and candidates are drawn
afresh from a standard normal every step: the policy must learn the scoring
rule, not memorize answers. A uniform random pick scores H_K / K (0.34 for
K = 8); always picking the best scores 1.

``num_candidates`` and ``feature_dim`` fix the observation shape, so they are
factory arguments (``--env-param num_candidates=16``); ``max_steps_in_episode``
is an ``AnswerRankingParams`` field.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces


@struct.dataclass
class AnswerRankingParams:
    max_steps_in_episode: int = 4  # queries per episode
    popularity: float = 1.0  # weight of the query-independent first feature


@struct.dataclass
class AnswerRankingState:
    query: jax.Array  # (feature_dim,)
    candidates: jax.Array  # (num_candidates, feature_dim)
    time: jax.Array  # int32, queries answered in this episode


class AnswerRanking:
    """The ranking task; ``num_candidates`` (>= 2) and ``feature_dim`` (>= 1) are static."""

    def __init__(self, num_candidates: int = 8, feature_dim: int = 4):
        for name, value, low in (("num_candidates", num_candidates, 2),
                                 ("feature_dim", feature_dim, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}={value!r} is invalid: allowed is an integer >= {low}")
        self.num_candidates = num_candidates
        self.feature_dim = feature_dim

    @property
    def name(self) -> str:
        return "AnswerRanking"

    @property
    def default_params(self) -> AnswerRankingParams:
        return AnswerRankingParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        size = (self.num_candidates + 1) * self.feature_dim + 1
        return spaces.Box(-jnp.inf, jnp.inf, (size,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_candidates)

    def observe(self, state: AnswerRankingState, params: AnswerRankingParams) -> jax.Array:
        used = state.time.astype(jnp.float32) / params.max_steps_in_episode
        return jnp.concatenate([state.query, state.candidates.reshape(-1), used[None]])

    def draw(self, key: jax.Array, time: jax.Array) -> AnswerRankingState:
        """A fresh query and its candidates."""
        query_key, cand_key = jax.random.split(key)
        query = jax.random.normal(query_key, (self.feature_dim,))
        candidates = jax.random.normal(cand_key, (self.num_candidates, self.feature_dim))
        return AnswerRankingState(query, candidates, time)

    def reset(self, key: jax.Array, params: AnswerRankingParams | None = None
              ) -> tuple[jax.Array, AnswerRankingState]:
        params = self.default_params if params is None else params
        state = self.draw(key, jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def reciprocal_rank(self, state: AnswerRankingState, action: jax.Array,
                        params: AnswerRankingParams) -> jax.Array:
        """1 / (1 + the number of candidates more relevant than the pick)."""
        relevance = params.popularity * state.candidates[:, 0] + state.candidates @ state.query
        better = jnp.sum(relevance > relevance[action])
        return 1.0 / (1.0 + better.astype(jnp.float32))

    def step(self, key: jax.Array, state: AnswerRankingState, action: jax.Array,
             params: AnswerRankingParams | None = None) -> tuple[Any, ...]:
        """Score the pick, then show the next query (or reset after the last);
        ``info["final_observation"]`` is the observation before that reset."""
        params = self.default_params if params is None else params
        draw_key, reset_key = jax.random.split(key)
        reward = self.reciprocal_rank(state, action, params) / params.max_steps_in_episode
        time = state.time + 1
        terminated = time >= params.max_steps_in_episode
        next_state = self.draw(draw_key, time)
        final_obs = self.observe(next_state, params)
        reset_obs, reset_state = self.reset(reset_key, params)
        state = jax.tree.map(lambda a, b: jnp.where(terminated, a, b), reset_state, next_state)
        obs = jnp.where(terminated, reset_obs, final_obs)
        info = {"final_observation": final_obs,
                "reciprocal_rank": reward * params.max_steps_in_episode}
        return obs, state, reward, terminated, jnp.zeros((), bool), info


def make_env(num_candidates: int = 8, feature_dim: int = 4
             ) -> tuple[AnswerRanking, AnswerRankingParams]:
    """The factory the import path names:
    ``experiments.case_studies.envs_kl_early_stop:make_env``."""
    env = AnswerRanking(num_candidates, feature_dim)
    return env, env.default_params
