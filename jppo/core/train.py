"""`make_train`: one PPO program from environment step to optimizer update.

`train(key, hparams)` is pure: `jax.jit(jax.vmap(train))(keys, hparams)` runs
many seeds (and a batched `HParams` runs a sweep) in one compiled program.
`init` and `update` are exposed so a host loop can run the very same update in
chunks.

Per update: a `lax.scan` rollout with the envs vmapped (only the policy runs
inside the scan); the critic then evaluates all observations and all final
observations in two batched calls, which also gives the truncation bootstrap
V(final observation) for free; GAE by reverse scan; `update_epochs` shuffled
passes of `num_minibatches` optimizer steps. Metrics are one scalar per update.
Every `eval_every` updates `run_updates` adds a deterministic evaluation
(`jppo.core.acting`, which also holds the act step the rollout uses).

Recurrent networks (`policy_rnn`, `value_rnn`, or `torso_rnn` shared by both
heads): `TrainState.memory` carries each env's policy and critic state across
rollouts, and every step restarts it where the observation begins an episode
(after a termination or a truncation). A recurrent critic's cell runs inside
the rollout scan (the head after it runs batched afterwards; a shared cell runs
once, in the policy's step), and V(final observation) reads the state that saw
the episode. Minibatches are then whole env sequences (envs are shuffled, never
steps), re-run from the stored state each env had at the start of the rollout:
the features batched over the whole sequence, then the cells over time (a
shared one once; a single GRU as `gru_sequence`, whose backward pass takes the
kernels' gradients out of the loop), so the loss reads both heads from one pass.

Every phase is a module-level pure function of a `Setup` (the static program:
config, env, network, the config's strategies) and pytrees, so each can be
called and tested alone. The file reads top-down, callers before what they
call: the state types, `make_train` (wiring only), the phases (init, update),
then collect (rollout, targets), learn (epochs, minibatch steps, losses), the
metrics, and value pretraining.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jppo import envs
from jppo.core import acting, distributions, losses, plasticity, strategies
from jppo.core import normalize as norm
from jppo.core.config import HParams, PPOConfig, require_config, validate_hparams
from jppo.core.gae import actor_critic_targets
from jppo.core.gru_sequence import gru_sequence
from jppo.core.networks import (
    CELLS,
    HEADS,
    ActorCritic,
    init_params,
    make_network,
    param_labels,
)
from jppo.core.optim import (
    adapt_lr_to_kl,
    group_norms,
    kl_lr_factor,
    learning_rates_in_force,
    make_optimizer,
    revert_skipped,
    schedule_count,
)

Metrics = dict[str, jax.Array]


# ----------------------------------------------------------------------- state


@struct.dataclass
class NormState:
    """Normalizer statistics; always carried (a few scalars) so that the state's
    structure does not depend on which normalizers are switched on."""

    obs: norm.RunningStats  # raw observations
    returns: norm.RunningStats  # discounted returns, for reward scaling
    running_return: jax.Array  # (num_envs,) discounted return so far
    targets: norm.RunningStats  # critic targets in head space, for the relative clip
    popart: norm.PopArtStats
    return_spread: norm.ReturnSpread  # percentile EMAs of the returns (return_percentile)


@struct.dataclass
class Memory:
    """What the next step of each env starts from: the policy's and the critic's
    carries (`ActorCritic.initial_carry`; None for a feed-forward network) and
    whether its next observation begins an episode (the carries then restart
    before the step)."""

    policy: Any  # (num_envs, width), (c, h) for an LSTM, None if feed-forward
    value: Any
    episode_start: jax.Array  # (num_envs,) bool


@struct.dataclass
class TrainState:
    """Everything needed to continue training: a checkpoint is exactly this."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    update_count: jax.Array
    norm: NormState
    memory: Memory
    policy_coef: jax.Array  # what the policy loss adapts between updates (KL penalty: beta)


@struct.dataclass
class TrainResult:
    state: TrainState
    metrics: Metrics  # each leaf (num_updates,), or (seeds, num_updates) under vmap


@struct.dataclass
class Transition:
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    reset: jax.Array  # the observation began an episode: the carries restarted
    # A recurrent critic's (memory output, carry after the step); None if feed-forward.
    critic: Any = None


@struct.dataclass
class Batch:
    """Flat (batch_size, ...) steps, or for recurrent networks env-major
    (num_envs, num_steps, ...) sequences with each env's stored start."""

    obs: jax.Array  # as the networks saw it (normalized if obs_norm)
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array  # V_old in return units
    advantage: jax.Array
    target: jax.Array  # critic target in return units
    reset: Any = None  # sequences: (num_envs, num_steps) episode starts
    carry: Any = None  # sequences: {"policy", "value"} carries at the rollout's start


class Rollout(NamedTuple):
    """One rollout's end state and transitions."""

    env_state: Any
    obs: jax.Array  # next observation to act on (raw)
    traj: Transition  # each leaf (num_steps, num_envs, ...)
    raw_obs: jax.Array
    memory: Memory  # what the next step starts from


class Collected(NamedTuple):
    """One rollout and everything derived from it before optimization."""

    rollout: Rollout  # its end state (what the next rollout starts from) and transitions
    rewards: jax.Array  # as the learner sees them (scaled if reward_scaling)
    values: jax.Array
    advantages: jax.Array
    targets: jax.Array
    params: Any  # after PopArt's rescale of the value head
    norm: NormState
    start: Memory  # what the rollout started from


class LossContext(NamedTuple):
    """What every minibatch loss of one update shares besides the parameters."""

    norm: NormState
    hparams: HParams
    ent_coef: jax.Array
    loss_scale: jax.Array  # the value target's divisor of the value loss
    policy_coef: jax.Array | None = None  # the policy loss's adapted coefficient
    rollout_params: Any = None  # with pfo: the parameters that collected the rollout


@dataclasses.dataclass(frozen=True)
class Setup:
    """The static part of a program: what the phases need besides pytrees."""

    config: PPOConfig
    env: Any
    env_params: Any
    spec: envs.EnvSpec
    network: ActorCritic
    strategies: strategies.Strategies  # the variant each strategy family is set to
    unroll: int  # env steps per trip of the time scans
    actor: acting.Actor
    eval_every: int  # updates between evaluations; 0: none
    eval_max_steps: int  # step limit of an evaluation episode
    eval_env: Any = None  # `env` without gymnax's auto-reset (`envs.without_auto_reset`)

# ----------------------------------------------------------------- the program


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Callable `train(key, hparams=None) -> TrainResult` plus its parts; the
    config, env spec, network and evaluation interval are its `setup`'s."""

    setup: Setup = dataclasses.field(hash=False, compare=False)
    init: Callable[[jax.Array, HParams], TrainState]
    update: Callable[[TrainState, HParams], tuple[TrainState, Metrics]]
    run_updates: Callable[[TrainState, HParams, int], tuple[TrainState, Metrics]]
    # The update's parts, for profiling: rollout(state, hparams, key),
    # collect(state, hparams, key, critic_lambda), learn(state, collected, hparams, key)
    phases: Mapping[str, Callable[..., Any]] = dataclasses.field(
        default_factory=dict, hash=False, compare=False)

    def __call__(self, key: jax.Array, hparams: HParams | None = None) -> TrainResult:
        hparams = self.config.hparams() if hparams is None else hparams
        validate_hparams(hparams)
        state = self.init(key, hparams)
        state, metrics = self.run_updates(state, hparams, self.config.num_updates)
        return TrainResult(state=state, metrics=metrics)

    @property
    def config(self) -> PPOConfig:
        return self.setup.config

    @property
    def spec(self) -> envs.EnvSpec:
        return self.setup.spec

    @property
    def network(self) -> ActorCritic:
        return self.setup.network

    @property
    def eval_every(self) -> int:
        """Updates between evaluations (0: none); `run_updates`' block size."""
        return self.setup.eval_every

    @property
    def num_updates(self) -> int:
        return self.config.num_updates


def make_train(config: PPOConfig, env: Any, env_params: Any = None) -> Trainer:
    """Build the pure train function for `config` on `env`: any object with the
    gymnax Environment API, wrapped by `envs.wrap` unless it already is (as
    `envs.make` returns it). `env_params=None` uses `env.default_params`."""
    require_config(config, "make_train")
    setup = make_setup(config, env, env_params)
    bound = functools.partial
    phases = {"rollout": bound(rollout, setup), "collect": bound(collect, setup),
              "learn": bound(learn, setup)}
    return Trainer(setup, bound(init, setup), bound(update, setup), bound(run_updates, setup),
                   phases)


def make_setup(config: PPOConfig, env: Any, env_params: Any) -> Setup:
    config.validate()
    env, env_params = envs.wrap(env, env_params)
    spec = envs.env_spec(env, env_params)
    network = make_network(config, spec.num_actions if spec.discrete else spec.action_dim,
                           spec.discrete, spec.obs_shape)
    actor = acting.Actor(network, spec.discrete, acting.nvec_of(spec.action_nvec),
                         config.obs_norm)
    eval_every, max_steps = evaluation_plan(config, env_params, spec.name)
    return Setup(config, env, env_params, spec, network, strategies.of(config),
                 scan_unroll(config, env), actor, eval_every, max_steps,
                 envs.without_auto_reset(env))


def evaluation_plan(config: PPOConfig, env_params: Any, env_name: str) -> tuple[int, int]:
    """(updates between evaluations, evaluation step limit); (0, 0) when off.
    An env with no episode limit is evaluated only when asked (`eval_every`),
    and then it needs `eval_max_steps`."""
    limit = acting.episode_limit(env_params, config.eval_max_steps)
    every = config.eval_interval_for(limit)
    if not every:
        return 0, 0
    if limit is None:
        if config.eval_every is None:
            return 0, 0
        raise ValueError(f"eval_every={config.eval_every} is invalid for env {env_name!r}: its "
                         "params have no max_steps_in_episode to bound an evaluation episode; "
                         "allowed is setting eval_max_steps (the longest evaluation episode), "
                         "or eval_every=0")
    return every, limit


def scan_unroll(config: PPOConfig, env: Any = None, backend: str | None = None) -> int:
    """Env steps per loop trip of the time scans. On a GPU every trip of a
    `while` loop costs launches and a host round trip for its predicate, which
    dominates small batches. H100, 1 seed: 97k env-steps/s at 1, 171k at 8,
    207k at 32; at 1024 seeds 8 and 32 are equal, and compile time is 12, 19
    and 45 s. On CPU unrolling measured no faster and compiles slower. An env
    whose step is a large program (a physics engine) caps the automatic choice
    with a `max_scan_unroll` attribute: unrolling copies the step into the
    program that many times, and compile time grows with it."""
    if config.scan_unroll:
        return min(config.scan_unroll, config.num_steps)
    if (backend or jax.default_backend()) == "cpu":
        return 1
    return min(8, getattr(env, "max_scan_unroll", 8), config.num_steps)


# ---------------------------------------------------------------------- phases


def init(setup: Setup, key: jax.Array, hparams: HParams) -> TrainState:
    """Fresh parameters, optimizer, envs and statistics (then value pretraining)."""
    config, spec = setup.config, setup.spec
    key, net_key, env_key = jax.random.split(key, 3)
    params = init_params(setup.network, net_key, spec.obs_shape, hparams)
    opt_state = make_optimizer(config, hparams, params).init(params)
    reset_envs = jax.vmap(setup.env.reset, in_axes=(0, None))
    obs, env_state = reset_envs(jax.random.split(env_key, config.num_envs), setup.env_params)
    norm_state = NormState(
        obs=norm.update_stats(norm.init_stats(spec.obs_shape), obs),
        returns=norm.init_stats(),
        running_return=jnp.zeros((config.num_envs,), jnp.float32),
        targets=norm.init_stats(),
        popart=norm.init_popart(),
        return_spread=norm.init_return_spread(),
    )
    state = TrainState(params, opt_state, env_state, obs, key, jnp.zeros((), jnp.int32), norm_state,
                       initial_memory(setup), jnp.asarray(hparams.kl_coef, jnp.float32))
    state = warm_up_observations(setup, state, hparams)
    if config.value_pretrain_updates:
        state = pretrain_critic(setup, state, hparams)
    return state


def initial_memory(setup: Setup) -> Memory:
    """Every env at the start of an episode."""
    carries = setup.network.initial_carry(setup.config.num_envs)
    return Memory(carries["policy"], carries["value"],
                  jnp.ones((setup.config.num_envs,), bool))


def warm_up_observations(setup: Setup, state: TrainState, hparams: HParams) -> TrainState:
    """Seed the observation statistics with `obs_norm_warmup` rollouts of the
    initial policy. From the `num_envs` reset observations alone the variance is
    far too small (CartPole, 8 seeds: 37% of the first rollout's normalized
    entries clipped at +-obs_clip; 0.05% after one warm-up rollout), so the first
    updates would learn from clipped inputs. These rollouts only act: no
    parameter moves and they are not training steps."""
    if not (setup.config.obs_norm and setup.config.obs_norm_warmup):
        return state

    def warm(state: TrainState, _: Any) -> tuple[TrainState, None]:
        key, rollout_key = jax.random.split(state.key)
        acted = rollout(setup, state, hparams, rollout_key)
        norm_state = track_observations(setup, state.norm, acted.raw_obs)
        return state.replace(env_state=acted.env_state, obs=acted.obs, key=key, norm=norm_state,
                             memory=acted.memory), None

    state, _ = jax.lax.scan(warm, state, None, length=setup.config.obs_norm_warmup)
    return state.replace(env_state=envs.reset_episode_totals(state.env_state))


def update(setup: Setup, state: TrainState, hparams: HParams) -> tuple[TrainState, Metrics]:
    """One PPO iteration: collect a rollout, learn from it, report it."""
    key, rollout_key, epoch_key = jax.random.split(state.key, 3)
    collected = collect(setup, state, hparams, rollout_key, hparams.critic_lambda)
    params, opt_state, stats = learn(setup, state, collected, hparams, epoch_key)
    acted = collected.rollout
    norm_state = track_observations(setup, collected.norm, acted.raw_obs)
    update_count = state.update_count + 1
    if setup.config.shrink_perturb_every:
        params = shrink_perturb_step(setup, params, update_count, state.key, hparams)
    metrics = update_metrics(setup, collected, stats, params, norm_state)
    if setup.eval_every:  # NaN here; `run_updates` fills in the updates it evaluates after
        metrics.update(eval_return=jnp.full((), jnp.nan), eval_length=jnp.full((), jnp.nan))
    new_state = TrainState(params, opt_state, acted.env_state, acted.obs, key,
                           update_count, norm_state, acted.memory,
                           next_policy_coef(setup, state.policy_coef, stats, hparams))
    return new_state, metrics


def next_policy_coef(setup: Setup, coef: jax.Array, stats: Metrics, hparams: HParams
                     ) -> jax.Array:
    """The policy loss's coefficient for the next update, from the KL this one
    ended at (`policy_kl_final`); unchanged for an objective that adapts none."""
    adapt = setup.strategies.policy_loss.adapt
    return coef if adapt is None else adapt(coef, stats["policy_kl_final"], hparams)


def run_updates(setup: Setup, state: TrainState, hparams: HParams, num_updates: int
                ) -> tuple[TrainState, Metrics]:
    """`num_updates` updates; with evaluation on, as blocks of `eval_every`
    updates each followed by one evaluation, then the remaining updates. The
    evaluations sit at static positions: under `jax.vmap` a `lax.cond` on the
    batched update count would run the evaluation after every update. A run
    split into chunks whose sizes are multiples of `eval_every` evaluates
    after the same updates as one call for the whole run."""
    every = setup.eval_every
    plain = functools.partial(updates_without_evaluation, setup, hparams)
    if not every or num_updates < every:
        return plain(state, num_updates)
    blocks, rest = divmod(num_updates, every)
    state, metrics = jax.lax.scan(
        lambda s, _: evaluated_block(setup, s, hparams), state, None, length=blocks)
    metrics = jax.tree.map(lambda x: x.reshape((blocks * every, *x.shape[2:])), metrics)
    if rest:
        state, tail = plain(state, rest)
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, tail)
    return state, metrics


def updates_without_evaluation(setup: Setup, hparams: HParams, state: TrainState,
                               num_updates: int) -> tuple[TrainState, Metrics]:
    """Updates whose evaluation metrics are NaN (present whenever evaluation is on)."""
    return jax.lax.scan(lambda s, _: update(setup, s, hparams), state, None, length=num_updates)


def evaluated_block(setup: Setup, state: TrainState, hparams: HParams
                    ) -> tuple[TrainState, Metrics]:
    """`eval_every` updates, then an evaluation of the policy they ended with,
    reported on the block's last update."""
    state, metrics = updates_without_evaluation(setup, hparams, state, setup.eval_every)
    result = evaluate_state(setup, state, hparams)
    metrics["eval_return"] = metrics["eval_return"].at[-1].set(jnp.mean(result.returns))
    metrics["eval_length"] = metrics["eval_length"].at[-1].set(jnp.mean(result.lengths))
    return state, metrics


def evaluate_state(setup: Setup, state: TrainState, hparams: HParams) -> acting.EvalResult:
    """`eval_episodes` deterministic episodes of the state's policy, with its
    observation statistics (not updated), on keys folded from the train key.
    Episodes run to their first end, so the env's auto-reset is skipped (the
    same episodes, bit for bit; see `envs.no_reset`)."""
    return acting.evaluate(setup.actor, policy_inputs(state.params, state.norm, hparams),
                           setup.eval_env, setup.env_params, acting.evaluation_key(state.key),
                           setup.config.eval_episodes, setup.eval_max_steps)


def policy_inputs(params: Any, norm_state: NormState, hparams: HParams) -> acting.PolicyInputs:
    return acting.PolicyInputs(params, norm_state.obs, hparams.obs_clip)

# ----------------------------------- collect: act, then advantages and targets


def collect(setup: Setup, state: TrainState, hparams: HParams, key: jax.Array,
            critic_lambda: jax.Array) -> Collected:
    """What an update and a pretraining step share: act, turn rewards into
    learner rewards, compute advantages and targets, track target statistics
    (and the value target's own, e.g. PopArt's rescale of the value head)."""
    acted = rollout(setup, state, hparams, key)
    traj = acted.traj
    rewards, norm_state = learner_rewards(setup, traj, state.norm, hparams)
    values, advantages, targets = advantages_and_targets(setup, state.params, traj, rewards,
                                                         norm_state, hparams, critic_lambda)
    target_kind = setup.strategies.value_target
    params, norm_state = target_kind.track(state.params, norm_state, targets, hparams)
    encoded = target_kind.encode(targets, norm_state)
    norm_state = norm_state.replace(targets=norm.update_stats(norm_state.targets, encoded))
    if setup.strategies.advantage_norm.by_return_spread:
        spread = norm.update_return_spread(norm_state.return_spread, targets)
        norm_state = norm_state.replace(return_spread=spread)
    return Collected(acted, rewards, values, advantages, targets, params, norm_state,
                     state.memory)


def rollout(setup: Setup, state: TrainState, hparams: HParams, key: jax.Array) -> Rollout:
    """Act with the current policy; observations are stored as the networks saw them."""
    body = functools.partial(env_step, setup, state.params, state.norm, hparams)
    keys = jax.random.split(key, setup.config.num_steps)
    env_state = envs.reset_episode_totals(state.env_state)
    (env_state, obs, memory), (traj, raw_obs) = jax.lax.scan(
        body, (env_state, state.obs, state.memory), keys, unroll=setup.unroll)
    return Rollout(env_state, obs, traj, raw_obs, memory)


def env_step(setup: Setup, params: Any, norm_state: NormState, hparams: HParams,
             carry: tuple[Any, jax.Array, Memory], step_key: jax.Array):
    """One step of every env under the current policy (the rollout scan's body)."""
    env_state, obs, memory = carry
    action_key, env_key = jax.random.split(step_key)
    action, seen, dist, policy_carry = acting.act_step(
        setup.actor, policy_inputs(params, norm_state, hparams), obs, action_key,
        deterministic=False, carry=memory.policy, reset=memory.episode_start)
    value_carry, critic = critic_memory_step(setup, params, seen, memory, policy_carry)
    log_prob = distributions.log_prob(dist, action, setup.spec.discrete, setup.spec.action_nvec)
    step_envs = jax.vmap(setup.env.step, in_axes=(0, 0, 0, None))
    next_obs, env_state, reward, terminated, truncated, info = step_envs(
        jax.random.split(env_key, setup.config.num_envs), env_state, action, setup.env_params
    )
    transition = Transition(
        seen, action, log_prob, reward.astype(jnp.float32),
        terminated, truncated, observe(setup, info["final_observation"], norm_state, hparams),
        memory.episode_start, critic,
    )
    next_memory = Memory(policy_carry, value_carry, jnp.logical_or(terminated, truncated))
    return (env_state, next_obs, next_memory), (transition, obs)


def critic_memory_step(setup: Setup, params: Any, seen: jax.Array, memory: Memory,
                       policy_carry: Any) -> tuple[Any, Any]:
    """A recurrent critic's cell on this step: (next carry, (memory output, next
    carry)); the value head runs after the rollout, batched over all steps. A
    shared cell (`torso_rnn`) already ran in the policy's step, which left
    `policy_carry`: its output is read off that carry. A feed-forward critic
    reads nothing here: (its carry, None)."""
    network = setup.network
    if not network.rnn_width("value"):
        return memory.value, None
    if network.torso_rnn:
        return policy_carry, (CELLS[network.rnn_cell].output(policy_carry), policy_carry)
    out, carry = setup.network.apply(params, seen, memory.value, memory.episode_start, "value",
                                     method=ActorCritic.memory)
    return carry, (out, carry)


def policy(setup: Setup, params: Any, obs: jax.Array) -> tuple[jax.Array, ...]:
    """A feed-forward policy's distribution parameters (any batch axes)."""
    return acting.distribution(setup.actor, params, obs)


def critic_output(setup: Setup, params: Any, obs: jax.Array) -> jax.Array:
    """A feed-forward value head's raw output (bin logits for a histogram head)."""
    return setup.network.apply(params, obs, method=ActorCritic.value)


def rollout_critic_outputs(setup: Setup, params: Any, traj: Transition
                           ) -> tuple[jax.Array, jax.Array]:
    """Raw critic outputs on every observation and every final observation. A
    recurrent critic's final observation is read with the carry after its step,
    the state that saw the episode (never a restarted one)."""
    if not setup.network.rnn_width("value"):
        return critic_output(setup, params, traj.obs), critic_output(setup, params,
                                                                     traj.final_obs)
    memory, carry_after = traj.critic
    outputs = setup.network.apply(params, memory, method=ActorCritic.value_output)
    no_reset = jnp.zeros(traj.reset.shape, bool)
    final, _ = setup.network.apply(params, traj.final_obs, carry_after, no_reset,
                                   method=ActorCritic.value_step)
    return outputs, final


def critic_head(setup: Setup, params: Any, obs: jax.Array) -> jax.Array:
    """The critic's prediction in head space (scalar; expected bin for HL-Gauss)."""
    return setup.strategies.value_loss.head.value(critic_output(setup, params, obs), setup.config)


def observe(setup: Setup, obs: jax.Array, norm_state: NormState, hparams: HParams) -> jax.Array:
    return acting.observe(setup.actor, policy_inputs(None, norm_state, hparams), obs)


def learner_rewards(setup: Setup, traj: Transition, norm_state: NormState, hparams: HParams):
    """Rewards as the learner sees them, and the updated return statistics."""
    if not setup.config.reward_scaling:
        return traj.reward, norm_state
    done = jnp.logical_or(traj.terminated, traj.truncated)
    seen, final = norm.discounted_returns(traj.reward, done, norm_state.running_return,
                                          hparams.gamma)
    returns = norm.update_stats(norm_state.returns, seen)
    norm_state = norm_state.replace(returns=returns, running_return=final)
    return norm.scale_rewards(traj.reward, returns, hparams.reward_clip), norm_state


def advantages_and_targets(setup: Setup, params: Any, traj: Transition, rewards: jax.Array,
                           norm_state: NormState, hparams: HParams, critic_lambda: jax.Array):
    """(V_old, actor advantages, critic targets), all in return units."""
    decode, head = setup.strategies.value_target.decode, setup.strategies.value_loss.head
    outputs, final_outputs = rollout_critic_outputs(setup, params, traj)
    values = decode(head.value(outputs, setup.config), norm_state)
    next_values = decode(head.value(final_outputs, setup.config), norm_state)
    advantages, targets = actor_critic_targets(
        rewards, values, next_values, learner_terminations(setup, traj), traj.truncated,
        hparams.gamma, hparams.gae_lambda, critic_lambda, setup.unroll,
    )
    return values, advantages, targets


def learner_terminations(setup: Setup, traj: Transition) -> jax.Array:
    """Where GAE stops bootstrapping: at terminations, and with
    `truncation="terminal"` at time-limit truncations too (the biased estimate
    of trainers that read every `done` as terminal, for reproducing them)."""
    if setup.config.truncation == "terminal":
        return jnp.logical_or(traj.terminated, traj.truncated)
    return traj.terminated


def track_observations(setup: Setup, norm_state: NormState, raw_obs: jax.Array) -> NormState:
    """Observation statistics move after the update, never during it, so the
    stored log-probabilities stay those of the policy that acted."""
    if not setup.config.obs_norm:
        return norm_state
    return norm_state.replace(obs=norm.update_stats(norm_state.obs, raw_obs))

# -------------------------------------------- learn: epochs of minibatch steps


def learn(setup: Setup, state: TrainState, collected: Collected, hparams: HParams, key: jax.Array):
    """The optimization phase of an update: `update_epochs` passes of minibatch steps."""
    chosen = setup.strategies
    advantages = chosen.advantage_norm.batch(collected.advantages, hparams)
    if chosen.advantage_norm.by_return_spread:
        advantages = advantages / collected.norm.return_spread.scale()
    loss_scale = chosen.value_target.loss_scale(collected.targets)
    ent_coef = entropy_coef(setup, state.update_count, hparams)
    ctx = LossContext(collected.norm, hparams, ent_coef, loss_scale, policy_coef=state.policy_coef,
                      rollout_params=state.params if setup.config.pfo else None)
    batch = batch_of(setup, collected, advantages)
    params, opt_state, stats = optimize(setup, state.replace(params=collected.params), batch,
                                        ctx, key)
    stats = {**stats, "ent_coef": ent_coef}
    if chosen.advantage_norm.by_return_spread:
        stats["return_spread_scale"] = collected.norm.return_spread.scale()
    if chosen.policy_loss.adapt is not None:  # one more policy pass, on the whole batch
        stats.update(policy_coef=state.policy_coef,
                     policy_kl_final=batch_policy_kl(setup, params, batch))
    return params, opt_state, stats


def batch_policy_kl(setup: Setup, params: Any, batch: Batch) -> jax.Array:
    """The k3 estimate of KL(pi_old || pi) on the whole batch at `params`: the KL
    an update ended at, which an adaptive policy coefficient reacts to."""
    discrete, nvec = setup.spec.discrete, setup.spec.action_nvec
    log_prob = distributions.log_prob(minibatch_policy(setup, params, batch), batch.action,
                                      discrete, nvec)
    return losses.approx_kl(log_prob, batch.log_prob)[1]


def entropy_coef(setup: Setup, update_count: jax.Array, hparams: HParams) -> jax.Array:
    """ent_coef -> ent_coef_final over the updates, by the `ent_schedule` strategy."""
    steps = max(setup.config.num_updates - 1, 1)
    schedule = setup.strategies.ent_schedule.make(hparams.ent_coef, hparams.ent_coef_final, steps)
    return schedule(update_count)


def batch_of(setup: Setup, collected: Collected, advantages: jax.Array) -> Batch:
    """The rollout as learning data: flat steps, or (recurrent) env sequences."""
    traj = collected.rollout.traj
    batch = Batch(traj.obs, traj.action, traj.log_prob, collected.values, advantages,
                  collected.targets)
    if not setup.config.recurrent:
        return flatten(setup, batch)
    return env_sequences(batch, traj.reset, collected.start)


def env_sequences(batch: Batch, reset: jax.Array, start: Memory) -> Batch:
    """(num_steps, num_envs, ...) -> env-major (num_envs, num_steps, ...), with
    each env's episode starts and the carries its rollout started from."""
    env_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), batch)
    return env_major.replace(reset=jnp.swapaxes(reset, 0, 1),
                             carry={"policy": start.policy, "value": start.value})


def flatten(setup: Setup, batch: Batch) -> Batch:
    """(num_steps, num_envs, ...) -> (batch_size, ...)."""
    size = setup.config.batch_size
    return jax.tree.map(lambda x: x.reshape((size, *x.shape[2:])), batch)


def optimize(setup: Setup, state: TrainState, batch: Batch, ctx: LossContext,
             key: jax.Array):
    """`update_epochs` epochs from `state`'s parameters; the mean statistics."""
    config = setup.config
    tx = make_optimizer(config, ctx.hparams, state.params)
    keys = jax.random.split(key, config.update_epochs)
    carry = (state.params, state.opt_state, jnp.zeros((), bool))
    (params, opt_state, _), stats = jax.lax.scan(
        functools.partial(epoch, setup, tx, ctx, batch), carry, keys)
    applied = stats.pop("steps_applied")
    summary = jax.tree.map(jnp.mean, stats)
    if config.nonfinite_check:
        summary.update(first_step_term_flags(stats))
    if config.diagnostics and config.torso_hidden:
        # An extra backward pass (both terms batched), so measured once per update: on the first
        # minibatch, at the parameters the update starts from.
        first = jax.tree.map(lambda x: x[: minibatch_rows(config)], batch)
        summary.update(term_norms_on_torso(setup, state.params, first, ctx))
    summary["epochs_completed"] = jnp.sum(applied) / config.num_minibatches
    return params, opt_state, summary


LOSS_TERMS = ("policy_loss", "entropy", "value_loss")  # in the order total_loss computes them


def first_step_term_flags(stats: Metrics) -> Metrics:
    """1.0 where a loss term was NaN or inf at the update's first optimizer step,
    taken at the parameters the update started from: with finite parameters and
    inputs, the term itself (or a strategy it calls) made the NaN, not a step."""
    return {f"nonfinite_{name}": 1.0 - jnp.isfinite(stats[name][0, 0]).astype(jnp.float32)
            for name in LOSS_TERMS}


def epoch(setup: Setup, tx: optax.GradientTransformation, ctx: LossContext, batch: Batch,
          carry: tuple[Any, Any, jax.Array], epoch_key: jax.Array):
    """One shuffled pass over the batch in `num_minibatches` steps."""
    return jax.lax.scan(functools.partial(minibatch_step, setup, tx, ctx), carry,
                        shuffled_minibatches(setup, batch, epoch_key))


def minibatch_rows(config: PPOConfig) -> int:
    """Rows of the batch's first axis per minibatch: steps, or (recurrent) envs."""
    rows = config.num_envs if config.recurrent else config.batch_size
    return rows // config.num_minibatches


def shuffled_minibatches(setup: Setup, batch: Batch, key: jax.Array) -> Batch:
    """The batch's first axis (steps, or for recurrent networks envs, each
    keeping its whole sequence in order) in a random order, split into
    (num_minibatches, rows, ...)."""
    config = setup.config
    rows = minibatch_rows(config)
    order = jax.random.permutation(key, rows * config.num_minibatches)
    return jax.tree.map(
        lambda x: jnp.take(x, order, axis=0).reshape(
            (config.num_minibatches, rows, *x.shape[1:])
        ),
        batch,
    )


def minibatch_step(setup: Setup, tx: optax.GradientTransformation, ctx: LossContext,
                   carry: tuple[Any, Any, jax.Array], mb: Batch):
    """One optimizer step on one minibatch, and its statistics (the epoch scan's body)."""
    config, clip, hparams = setup.config, setup.strategies.grad_clip, ctx.hparams
    params, opt_state, stopped = carry
    (_, stats), grads = jax.value_and_grad(
        lambda p: total_loss(setup, p, mb, ctx), has_aux=True)(params)
    if config.kl_adaptive_lr:  # this step's rate reacts to the KL the policy is at now
        opt_state = adapt_lr_to_kl(opt_state, stats["approx_kl"], hparams)
    grad_norm = optax.tree.norm(grads)
    norms = group_norms(grads) if config.diagnostics or clip.needs_group_norms else {}
    clip_norm = clip.clip_norm(grad_norm, norms)  # the norm the clip acts on
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if config.kl_early_stop:
        # SB3 semantics: a minibatch whose KL already exceeds the limit is
        # not applied, and neither is anything after it in this update.
        stopped = jnp.logical_or(stopped, stats["approx_kl"] > 1.5 * hparams.target_kl)
        new_params = jax.tree.map(lambda new, old: jnp.where(stopped, old, new),
                                  new_params, params)
        new_opt_state = revert_skipped(stopped, new_opt_state, opt_state)
    # The rate this step's schedule gives (its mean over the update is the metric).
    lrs = learning_rates_in_force(config, hparams, schedule_count(opt_state))
    if config.kl_adaptive_lr:
        lrs = {group: lr * kl_lr_factor(opt_state) for group, lr in lrs.items()}
    stats = {**stats, **{f"lr_{group}": lr for group, lr in lrs.items()},
             "grad_norm": grad_norm,
             "grad_clip_ratio": clip_norm / hparams.max_grad_norm,
             "grad_clipped": (clip_norm > hparams.max_grad_norm).astype(jnp.float32),
             "steps_applied": 1.0 - stopped.astype(jnp.float32)}
    if config.diagnostics:
        stats.update({f"grad_norm_{g}": n for g, n in norms.items()})
    return (new_params, new_opt_state, stopped), stats


def total_loss(setup: Setup, params: Any, mb: Batch, ctx: LossContext
               ) -> tuple[jax.Array, Metrics]:
    memories = sequence_memories(setup, params, mb, HEADS)  # one pass for both heads
    actor, stats = policy_loss(setup, params, mb, ctx.hparams, ctx.ent_coef, memories,
                               ctx.policy_coef)
    critic, value_clip = value_loss(setup, params, mb, ctx.norm, ctx.hparams, ctx.loss_scale,
                                    memories)
    total = actor + ctx.hparams.vf_coef * critic
    if setup.config.pfo:
        pfo = pfo_loss(setup, params, mb, ctx.rollout_params)
        total, stats = total + ctx.hparams.pfo_coef * pfo, {**stats, "pfo_loss": pfo}
    return total, {**stats, "value_loss": critic, "value_clip_fraction": value_clip,
                   "total_loss": total}


def pfo_loss(setup: Setup, params: Any, mb: Batch, rollout_params: Any) -> jax.Array:
    """PFO's penalty on the change of the actor's pre-activations on the
    minibatch since the rollout (`jppo.core.plasticity`)."""
    def preactivations(p: Any) -> list[jax.Array]:
        return plasticity.policy_preactivations(setup.network, p, mb.obs)

    return plasticity.pfo_penalty(preactivations(params), preactivations(rollout_params))


def shrink_perturb_step(setup: Setup, params: Any, update_count: jax.Array, key: jax.Array,
                        hparams: HParams) -> Any:
    """Shrink-and-perturb after every `shrink_perturb_every`-th update, toward a
    fresh initialization drawn from a key folded from the update's own (the
    training keys are unchanged)."""
    config = setup.config

    def fresh() -> Any:
        return init_params(setup.network, jax.random.fold_in(key, FRESH_INIT_STREAM),
                           setup.spec.obs_shape, hparams)

    return plasticity.scheduled_shrink_perturb(
        params, fresh, update_count, config.shrink_perturb_every, hparams.shrink_perturb_alpha,
        hparams.shrink_perturb_sigma, plasticity.groups_of(config.shrink_perturb_groups))


FRESH_INIT_STREAM = 0x5EED  # fold_in constant of shrink-and-perturb's initialization key


def policy_loss(setup: Setup, params: Any, mb: Batch, hparams: HParams,
                ent_coef: jax.Array, memories: Mapping[str, jax.Array] | None = None,
                coef: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
    """The `policy_loss` objective (clipped surrogate by default) minus the
    entropy bonus, and the policy statistics; `coef`: the objective's adapted
    coefficient (`TrainState.policy_coef`; the initial `kl_coef` if None)."""
    discrete, nvec = setup.spec.discrete, setup.spec.action_nvec
    dist = minibatch_policy(setup, params, mb, memories)
    log_prob = distributions.log_prob(dist, mb.action, discrete, nvec)
    entropy = jnp.mean(distributions.entropy(dist, discrete, nvec))
    advantage = setup.strategies.advantage_norm.minibatch(mb.advantage, hparams)
    inputs = strategies.PolicyLossInputs(
        log_prob, mb.log_prob, advantage, hparams.clip_eps,
        hparams.kl_coef if coef is None else coef, hparams, setup.config)
    surrogate = setup.strategies.policy_loss.loss(inputs)
    kl_k1, kl_k3 = losses.approx_kl(log_prob, mb.log_prob)
    stats = {
        "policy_loss": surrogate,
        "entropy": entropy,
        "approx_kl": kl_k3,
        "approx_kl_k1": kl_k1,
        "clip_fraction": setup.strategies.policy_loss.clip_fraction(inputs),
    }
    return surrogate - ent_coef * entropy, stats


def value_loss(setup: Setup, params: Any, mb: Batch, norm_state: NormState, hparams: HParams,
               loss_scale: jax.Array, memories: Mapping[str, jax.Array] | None = None
               ) -> tuple[jax.Array, jax.Array]:
    """Value loss in head space (divided by `loss_scale`), and its clip fraction."""
    chosen, encode = setup.strategies, setup.strategies.value_target.encode
    output = minibatch_critic_output(setup, params, mb, memories)
    inputs = strategies.ValueLossInputs(
        output=output,
        pred=chosen.value_loss.head.value(output, setup.config) / loss_scale,
        old=encode(mb.value, norm_state) / loss_scale,
        target=encode(mb.target, norm_state) / loss_scale,
        clip_eps=chosen.value_clip_mode.clip_eps(hparams.value_clip_eps, norm_state, loss_scale),
        hparams=hparams,
        config=setup.config,
        loss_scale=loss_scale,
    )
    return chosen.value_loss.loss(inputs), chosen.value_loss.clip_fraction(inputs)


def minibatch_policy(setup: Setup, params: Any, mb: Batch,
                     memories: Mapping[str, jax.Array] | None = None) -> tuple[jax.Array, ...]:
    """The policy's distribution parameters on a minibatch; a recurrent policy
    reads its memory outputs along each env's sequence (`memories`, or a pass
    of its own from the stored starts)."""
    if not setup.network.rnn_width("policy"):
        return policy(setup, params, mb.obs)
    if memories is None:
        memories = sequence_memories(setup, params, mb, ("policy",))
    return setup.network.apply(params, memories["policy"], method=ActorCritic.policy_output)


def minibatch_critic_output(setup: Setup, params: Any, mb: Batch,
                            memories: Mapping[str, jax.Array] | None = None) -> jax.Array:
    """The critic's raw output on a minibatch (read along sequences if recurrent)."""
    if not setup.network.rnn_width("value"):
        return critic_output(setup, params, mb.obs)
    if memories is None:
        memories = sequence_memories(setup, params, mb, ("value",))
    return setup.network.apply(params, memories["value"], method=ActorCritic.value_output)


def sequence_memories(setup: Setup, params: Any, mb: Batch, heads: tuple[str, ...]
                      ) -> dict[str, jax.Array]:
    """The memory outputs (envs, steps, width) of the recurrent ones of `heads`
    along env sequences, from each env's stored carry, restarting it at episode
    starts as the rollout did. The features read no carry, so they run batched
    over every step first; then the cells run over time (a shared `torso_rnn`
    cell once, for both heads): a single GRU as `gru_sequence` (its input side
    batched, one matmul per step forward and backward); an LSTM, or a cell in
    each head, in one scan that steps every cell together (one loop, not two)."""
    network = setup.network
    recurrent = [h for h in heads if network.rnn_width(h)]
    cells = recurrent[:1] if network.torso_rnn else recurrent  # heads with a cell of their own
    if not cells:
        return {}
    features: dict[str, jax.Array] = {}
    for head in cells:  # a shared dense torso feeds every cell the same features
        features[head] = (features[cells[0]] if network.torso_hidden and features else
                          network.apply(params, mb.obs, head, method=ActorCritic.features))
    time_major = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), (features, mb.reset))
    carries = {head: mb.carry[head] for head in cells}
    run = fused_gru_cells if network.rnn_cell == "gru" and len(cells) == 1 else scanned_cells
    outputs = run(setup, params, carries, *time_major)
    outputs = {head: jnp.swapaxes(out, 0, 1) for head, out in outputs.items()}
    return {head: outputs[cells[0] if network.torso_rnn else head] for head in recurrent}


def fused_gru_cells(setup: Setup, params: Any, carries: dict[str, Any],
                    features: dict[str, jax.Array], reset: jax.Array) -> dict[str, jax.Array]:
    """Each GRU cell's time-major outputs over its time-major features."""
    network = setup.network
    return {head: gru_sequence(params["params"][network.cell_name(head)], x, carries[head], reset,
                               setup.unroll) for head, x in features.items()}


def scanned_cells(setup: Setup, params: Any, carries: dict[str, Any],
                  features: dict[str, jax.Array], reset: jax.Array) -> dict[str, jax.Array]:
    """Every cell's time-major outputs, the cells stepped together in one scan."""
    network = setup.network

    def step(carries: dict[str, Any], inputs: tuple[dict[str, jax.Array], jax.Array]):
        x, restart = inputs
        stepped = {head: network.apply(params, x[head], carries[head], restart, head,
                                       method=ActorCritic.cell_step) for head in x}
        return ({head: carry for head, (_, carry) in stepped.items()},
                {head: out for head, (out, _) in stepped.items()})

    return jax.lax.scan(step, carries, (features, reset), unroll=setup.unroll)[1]


def term_norms_on_torso(setup: Setup, params: Any, mb: Batch, ctx: LossContext) -> Metrics:
    """Norms of the policy-term and value-term gradients on the shared torso:
    the direct evidence of value dominance. Both gradients come from one
    forward pass (both heads' sequences, as the loss reads them) pulled back
    with the two terms' cotangents at once: on a recurrent torso a backward
    pass through the sequence is the update's dominant cost, and this is one
    batched pass instead of two passes of their own."""
    def terms(p: Any) -> jax.Array:
        memories = sequence_memories(setup, p, mb, HEADS)
        actor = policy_loss(setup, p, mb, ctx.hparams, ctx.ent_coef, memories,
                            ctx.policy_coef)[0]
        critic = value_loss(setup, p, mb, ctx.norm, ctx.hparams, ctx.loss_scale, memories)[0]
        return jnp.stack([actor, ctx.hparams.vf_coef * critic])

    _, pullback = jax.vjp(terms, params)
    (grads,) = jax.vmap(pullback)(jnp.eye(2, dtype=jnp.float32))
    torso = jax.vmap(lambda g: group_norms(g)["torso"])(grads)
    return {"grad_norm_policy_term_torso": torso[0], "grad_norm_value_term_torso": torso[1]}

# --------------------------------------------------------------------- metrics


def update_metrics(setup: Setup, collected: Collected, stats: Metrics, params: Any,
                   norm_state: NormState) -> Metrics:
    """One scalar per metric for the update that just ran (the learning rates
    come from the minibatch steps, where the schedule is read)."""
    config = setup.config
    metrics = {**stats, **episode_metrics(collected.rollout.env_state),
               **rollout_metrics(collected)}
    if config.diagnostics:
        metrics.update(scale_metrics(setup, collected, norm_state))
        if not setup.spec.discrete:
            metrics["log_std_mean"] = mean_log_std(setup, params, stats)
    if config.nonfinite_check:
        metrics.update(nonfinite_flags(collected.rollout.traj, stats, params))
    return metrics


def mean_log_std(setup: Setup, params: Any, stats: Metrics) -> jax.Array:
    """A Gaussian policy's mean log-std: its parameter's, or, for a state-dependent
    (softplus) std, read from the update's mean entropy (which is the sum over
    action dimensions of 0.5 (1 + log 2 pi) + log_std)."""
    if "policy_log_std" in params["params"]:
        return jnp.mean(params["params"]["policy_log_std"])
    return stats["entropy"] / setup.spec.action_dim - distributions.GAUSSIAN_ENTROPY_AT_ZERO


def nonfinite_flags(traj: Transition, stats: Metrics, params: Any) -> Metrics:
    """1.0 where the update met a NaN or inf, else 0.0: in its losses, gradients or
    new parameters (`nonfinite`), and apart from it in the env's rewards and in the
    observations as the networks saw them, so a report can name the source.

    Cheap by construction: the means over the minibatch steps of the total loss
    and of the global gradient norm (a norm over every gradient) are non-finite
    when any step's was, so the only new passes are one over the parameters and
    one over the rollout's rewards and observations."""
    def flag(ok: jax.Array) -> jax.Array:
        return 1.0 - ok.astype(jnp.float32)

    def all_finite(tree: Any) -> jax.Array:
        leaves = jax.tree.leaves(tree)
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))

    learner = all_finite((stats["total_loss"], stats["grad_norm"], params))
    return {"nonfinite": flag(learner), "nonfinite_reward": flag(all_finite(traj.reward)),
            "nonfinite_obs": flag(all_finite((traj.obs, traj.final_obs)))}


def episode_metrics(env_state: Any) -> Metrics:
    """Mean return/length of the episodes that finished in this update (NaN if none)."""
    return_sum, length_sum, count = envs.episode_totals(env_state)
    safe = jnp.maximum(count, 1)
    return {
        "episode_return": jnp.where(count > 0, return_sum / safe, jnp.nan),
        "episode_length": jnp.where(count > 0, length_sum / safe, jnp.nan),
        "episodes_finished": count.astype(jnp.float32),
    }


def rollout_metrics(collected: Collected) -> Metrics:
    values, targets, advantages = collected.values, collected.targets, collected.advantages
    return {
        "explained_variance": losses.explained_variance(values, targets),
        "value_mean": jnp.mean(values),
        "target_mean": jnp.mean(targets),
        "target_std": jnp.std(targets),
        "advantage_mean": jnp.mean(advantages),
        "advantage_std": jnp.std(advantages),
        "reward_mean": jnp.mean(collected.rewards),
    }


def scale_metrics(setup: Setup, collected: Collected, norm_state: NormState) -> Metrics:
    """The value scale: spread of V and targets, and the normalizer's sigma."""
    target_sigma = setup.strategies.value_target.sigma
    if target_sigma is not None:
        sigma = target_sigma(norm_state)
    elif setup.config.reward_scaling:
        sigma = norm_state.returns.std
    else:
        sigma = jnp.ones(())
    return {
        "value_std": jnp.std(collected.values),
        "target_abs_max": jnp.max(jnp.abs(collected.targets)),
        "normalizer_sigma": sigma,
    }

# ----------------------------------------------------------- value pretraining


def pretrain_critic(setup: Setup, state: TrainState, hparams: HParams) -> TrainState:
    """VC-PPO value pretraining: critic-only updates on rollouts of the initial
    policy with lambda = 1 targets. A separate Adam (discarded afterwards)
    touches only value-group parameters; the PPO optimizer starts fresh."""
    tx = optax.adam(hparams.value_lr, eps=hparams.adam_eps)
    (state, _), _ = jax.lax.scan(functools.partial(pretrain_step, setup, tx, hparams),
                                 (state, tx.init(state.params)), None,
                                 length=setup.config.value_pretrain_updates)
    return state.replace(env_state=envs.reset_episode_totals(state.env_state))


def pretrain_step(setup: Setup, tx: optax.GradientTransformation, hparams: HParams,
                  carry: tuple[TrainState, Any], _: Any):
    """A critic fit on one fresh rollout with lambda = 1 targets: as many
    minibatch steps as a PPO update takes (`update_epochs` shuffled passes of
    `num_minibatches`). One full-batch step per rollout barely moves the critic
    at PPO's learning rate, which made pretraining a no-op. The value loss,
    target encoding and loss scale are the PPO update's; the value clip is off,
    being a trust region around the critic that collected the rollout, which
    would cap the fit at clip_eps per rollout."""
    state, opt_state = carry
    key, rollout_key, epoch_key = jax.random.split(state.key, 3)
    collected = collect(setup, state, hparams, rollout_key, jnp.ones(()))
    unclipped = hparams.replace(value_clip_eps=jnp.full_like(hparams.value_clip_eps, jnp.inf))
    ctx = LossContext(collected.norm, unclipped, jnp.zeros(()),
                      setup.strategies.value_target.loss_scale(collected.targets))
    batch = batch_of(setup, collected, collected.advantages)
    keys = jax.random.split(epoch_key, setup.config.update_epochs)
    (params, opt_state), _ = jax.lax.scan(
        lambda carry, k: jax.lax.scan(functools.partial(critic_step, setup, tx, ctx), carry,
                                      shuffled_minibatches(setup, batch, k)),
        (collected.params, opt_state), keys)
    acted = collected.rollout
    observed = track_observations(setup, collected.norm, acted.raw_obs)
    state = state.replace(params=params, env_state=acted.env_state, obs=acted.obs, key=key,
                          norm=observed, memory=acted.memory)
    return (state, opt_state), None


def critic_step(setup: Setup, tx: optax.GradientTransformation, ctx: LossContext,
                carry: tuple[Any, Any], mb: Batch):
    """One Adam step of the PPO value loss (the strategies' loss, scaling and
    clip) on one minibatch, applied to value-group parameters only: the shared
    torso gets value gradients, which must not change the initial policy."""
    params, opt_state = carry
    grads = jax.grad(lambda p: value_loss(setup, p, mb, ctx.norm, ctx.hparams,
                                          ctx.loss_scale)[0])(params)
    value_only = jax.tree.map(lambda g, label: g if label == "value" else jnp.zeros_like(g),
                              grads, param_labels(params))
    updates, opt_state = tx.update(value_only, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None
