"""Run configuration: what is static (shapes, structure, variant choices) and what
is traced (`HParams`), so that a batch of hyperparameters runs under one compile.

`PPOConfig` is the single object a user edits. Each of its fields is declared
once with `knob(...)` (default, allowed values, traced or static, a one-line doc);
`KNOBS`, `TRACED_FIELDS`, validation and `hparams()` are read from those
declarations. `config.hparams()` extracts the traced part; `jax.vmap` over a
batched `HParams` runs a sweep without recompiling, while changing a static
field changes the program.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jppo.core import network_variants, strategies
from jppo.core.knobs import (
    Bounds,
    Choice,
    Flag,
    Integer,
    Interval,
    Knob,
    Registered,
    Sizes,
    declared,
    defaults,
    knob,
)
from jppo.core.strategies import REGISTRIES

ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "elu", "leaky_relu")
TORSO_KINDS = ("auto", "mlp", "cnn")  # the encoders are jppo.core.networks.ENCODERS
RNN_CELLS = ("gru", "lstm")  # the flax cells are jppo.core.networks.CELLS
NETWORK_BLOCKS = ("mlp", "simba")  # the modules are jppo.core.networks.BLOCKS
POLICY_STDS = ("parameter", "softplus")  # how a Gaussian policy's standard deviation is made
LAYER_INITS = ("orthogonal", "lecun_normal")  # dense / conv kernel init (networks.reinitialize)
TRUNCATIONS = ("bootstrap", "terminal")  # how GAE treats a time-limit truncation
# shrink-and-perturb targets: a "+"-joined non-empty subset of the parameter groups
PARAM_GROUP_SETS = ("policy+value+torso", "policy", "value", "torso", "policy+value",
                    "policy+torso", "value+torso")


@struct.dataclass
class HParams:
    """Continuous hyperparameters, traced inside the jitted program.

    Every leaf is a float32 scalar (or a `(n,)` array after `jppo.sweep` /
    stacking), so `jax.vmap(train)(keys, hparams)` sweeps over them. The fields
    are the `PPOConfig` knobs declared `traced` (all but `lr`, which reaches the
    program through the learning-rate fallbacks); they are written out so type
    checkers see them, and checked against the declarations at import.
    """

    policy_lr: jax.Array
    value_lr: jax.Array
    torso_lr: jax.Array
    adam_eps: jax.Array
    max_grad_norm: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    critic_lambda: jax.Array
    clip_eps: jax.Array
    value_clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    policy_output_gain: jax.Array
    value_output_gain: jax.Array
    log_std_init: jax.Array
    huber_delta: jax.Array
    adv_std_threshold: jax.Array
    target_kl: jax.Array
    ent_coef_final: jax.Array
    obs_clip: jax.Array
    reward_clip: jax.Array
    popart_step: jax.Array
    hl_gauss_sigma: jax.Array
    kl_coef: jax.Array
    dpo_alpha: jax.Array
    dpo_beta: jax.Array
    shrink_perturb_alpha: jax.Array
    shrink_perturb_sigma: jax.Array
    pfo_coef: jax.Array


HPARAM_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(HParams))

_POSITIVE = Interval(0.0, math.inf)
_NON_NEGATIVE = Interval(0.0, math.inf, lo_inc=True)
_POSITIVE_OR_INF = Interval(0.0, math.inf, hi_inc=True)  # inf switches a clip off
_UNIT = Interval(0.0, 1.0, lo_inc=True, hi_inc=True)
_UNIT_OPEN_BELOW = Interval(0.0, 1.0, hi_inc=True)


def check_value(field: str, value: Any) -> None:
    """Raise a ValueError naming `field` if any entry of `value` is out of range."""
    KNOBS[field].allowed.check(field, value)


def validate_hparams(hparams: HParams) -> None:
    """Check a (batched) `HParams` of concrete arrays: every entry of every field
    in its declared range, else a one-line ValueError naming the field, the value
    (and its batch entry) and what is allowed.

    `train(key, hparams)`, `sweep`, `jppo.run` and `run_experiment` call it before
    compiling. Inside `jax.jit` the values are tracers, unknown until the program
    runs, so they are skipped: with `jax.jit(jax.vmap(train))(keys, hparams)`,
    call it on `hparams` yourself before the jitted call.
    """
    if not isinstance(hparams, HParams):
        raise ValueError(f"hparams={type(hparams).__name__} is invalid: allowed is a "
                         "jppo.HParams (config.hparams(), or jppo.sweep(...).tile())")
    for field in HPARAM_FIELDS:
        value = getattr(hparams, field)
        if isinstance(value, jax.core.Tracer):
            continue
        check_value(field, value)


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Everything that defines a PPO run. Defaults are standard PPO
    (CleanRL / PureJaxRL CartPole settings).

    Each field is declared with `knob(default, doc, allowed, traced=...)`: traced
    knobs are copied into `HParams` by `hparams()` and can be swept under one
    compile; the rest are static and part of the compiled program. `jppo config`
    lists them all.
    """

    # --- rollout and batch shape
    num_envs: int = knob(4, "parallel environments per seed", Integer(1))
    num_steps: int = knob(128, "env steps per environment in one rollout", Integer(1))
    total_timesteps: int = knob(500_000, "env steps per seed over the whole run", Integer(1))
    update_epochs: int = knob(4, "passes over each rollout in one update", Integer(1))
    num_minibatches: int = knob(4, "minibatches per epoch; must divide num_envs*num_steps",
                                Integer(1))
    # --- optimisation
    lr: float = knob(2.5e-4, "Adam learning rate of every parameter group whose own lr is None",
                     _POSITIVE, traced=True, hparam=False)
    policy_lr: float | None = knob(None, "learning rate of the policy head", _POSITIVE,
                                   traced=True, fallback="lr")
    value_lr: float | None = knob(None, "learning rate of the value head", _POSITIVE,
                                  traced=True, fallback="lr")
    torso_lr: float | None = knob(None, "learning rate of the shared torso", _POSITIVE,
                                  traced=True, fallback="lr")
    lr_schedule: str = knob("linear", "linear or cosine decay to 0 per minibatch step, or constant",
                            Registered(REGISTRIES["lr_schedule"]))
    adam_eps: float = knob(1e-5, "Adam epsilon", _POSITIVE, traced=True)
    max_grad_norm: float = knob(0.5, "gradient-norm clip (inf: off)", _POSITIVE_OR_INF,
                                traced=True)
    # --- returns and advantages
    gamma: float = knob(0.99, "discount factor", _UNIT_OPEN_BELOW, traced=True)
    gae_lambda: float = knob(0.95, "GAE lambda of the actor advantages", _UNIT, traced=True)
    critic_lambda: float | None = knob(None, "lambda of the critic targets (VC-PPO: 1.0)",
                                       _UNIT, traced=True, fallback="gae_lambda")
    # --- losses
    clip_eps: float = knob(0.2, "PPO probability-ratio clip range", _POSITIVE, traced=True)
    value_loss: str = knob("clipped", "clipped (PureJaxRL/CleanRL), mse, huber (huber_delta), "
                           "hl_gauss (classification over hl_gauss_bins) or quantile "
                           "(quantile-Huber over quantile_count quantiles)",
                           Registered(REGISTRIES["value_loss"]))
    value_clip_eps: float | None = knob(None, "value clip range of the clipped loss (inf: off)",
                                        _POSITIVE_OR_INF, traced=True, fallback="clip_eps")
    value_clip_mode: str = knob("absolute", "value clip in return units (absolute) or x the "
                                "running std of the value targets (relative)",
                                Registered(REGISTRIES["value_clip_mode"]))
    huber_delta: float = knob(1.0, "where the huber value loss turns linear", _POSITIVE,
                              traced=True)
    ent_coef: float = knob(0.01, "weight of the entropy bonus", _NON_NEGATIVE, traced=True)
    ent_schedule: str = knob("constant", "decay of ent_coef to ent_coef_final over training",
                             Registered(REGISTRIES["ent_schedule"]))
    ent_coef_final: float = knob(0.0, "entropy weight at the end of a decaying ent_schedule",
                                 _NON_NEGATIVE, traced=True)
    vf_coef: float = knob(0.5, "weight of the value loss", _NON_NEGATIVE, traced=True)
    advantage_norm: str = knob("minibatch", "advantage normalization: per minibatch "
                               "(standard), per batch, off, or robust (divide by the std only "
                               "above adv_std_threshold)",
                               Registered(REGISTRIES["advantage_norm"]))
    adv_std_threshold: float = knob(1e-3, "robust advantage_norm: the std it divides by above",
                                    _NON_NEGATIVE, traced=True)
    # --- value target scale
    value_target: str = knob("raw", "what the critic predicts: raw returns, symlog returns, "
                             "popart (normalized, output-preserving rescale of the last layer) "
                             "or batch_scaled (raw returns; the value loss is divided by the "
                             "batch std of the targets, no mean is subtracted; old name "
                             "batch_standardize)",
                             Registered(REGISTRIES["value_target"]))
    popart_step: float = knob(0.01, "EMA step per update of PopArt's target moments",
                              _UNIT_OPEN_BELOW, traced=True)
    obs_norm: bool = knob(False, "normalize observations by their running mean and std",
                          Flag())
    obs_norm_warmup: int = knob(1, "obs_norm: rollouts of the initial policy whose "
                                "observations seed the statistics before the first update "
                                "(they only act; no learning); 0: only the reset observations, "
                                "which on CartPole clip over a third of the first rollout's "
                                "entries", Integer(0))
    obs_clip: float = knob(10.0, "clip of the normalized observations (inf: off)",
                           _POSITIVE_OR_INF, traced=True)
    reward_scaling: bool = knob(False, "divide rewards by the running std of the discounted "
                                "return", Flag())
    reward_clip: float = knob(10.0, "clip of the scaled rewards (inf: off)", _POSITIVE_OR_INF,
                              traced=True)
    hl_gauss_bins: int = knob(51, "hl_gauss: number of bins of the value distribution",
                              Integer(2))
    hl_gauss_range: tuple[float, float] | None = knob(
        None, "hl_gauss: the bins' support in critic space (targets outside it are clipped); "
        "None: the value target's default, (-10, 10) for symlog (returns up to 22025); "
        "raw returns have no default and need it set", Bounds(optional=True))
    hl_gauss_sigma: float = knob(0.75, "hl_gauss: std of the target Gaussian, in bin widths",
                                 _POSITIVE, traced=True)
    # --- optimisation extras
    grad_clip: str = knob("global", "one clip over all gradients (global) or each group "
                          "clipped to max_grad_norm alone (per_head)",
                          Registered(REGISTRIES["grad_clip"]))
    kl_early_stop: bool = knob(False, "stop the update's epochs once approx KL > 1.5 target_kl",
                               Flag())
    target_kl: float = knob(0.01, "the KL that kl_early_stop, kl_adaptive_lr and an adaptive "
                            "policy_loss (kl_penalty) aim at", _POSITIVE, traced=True)
    value_pretrain_updates: int = knob(0, "critic-only updates (lambda = 1) on rollouts of the "
                                       "initial policy before PPO", Integer(0))
    diagnostics: bool = knob(True, "record per-head / per-term gradient norms and target "
                             "statistics", Flag())
    nonfinite_check: bool = knob(True, "flag per update a non-finite (NaN/inf) loss, gradient "
                                 "norm or parameter, reward or observation (metrics "
                                 "nonfinite, nonfinite_reward, nonfinite_obs); False: no check",
                                 Flag())
    scan_unroll: int = knob(0, "env steps per loop trip of the rollout and GAE scans (same "
                            "results); 0: 1 on CPU, 8 on GPU/TPU", Integer(0))
    # --- deterministic evaluation
    eval_every: int | None = knob(None, "updates between deterministic evaluations (greedy or "
                                  "mean action, metrics eval_return/eval_length); 0: off; "
                                  "None: about ten per run, the last on the final policy (a "
                                  "divisor of the number of updates near a tenth of it; "
                                  "down to eight where an evaluation's episodes could step "
                                  "more env steps than the training between two)",
                                  Integer(0, optional=True))
    eval_episodes: int = knob(16, "vmapped episodes per evaluation", Integer(1))
    eval_max_steps: int = knob(0, "longest evaluation episode; 0: the env's "
                               "max_steps_in_episode (an env without one is then not "
                               "evaluated unless eval_every is set, which makes it an error)",
                               Integer(0))
    # --- network
    torso_kind: str = knob("auto", "observation encoder before the dense layers: cnn (MinAtar's "
                           "3x3 conv, 16 channels, one per network unless torso_hidden shares "
                           "it) or mlp (the flattened observation); auto: cnn for rank-3 "
                           "(H, W, C) observations, else mlp", Choice(TORSO_KINDS))
    activation: str = knob("tanh", "hidden-layer activation", Choice(ACTIVATIONS))
    torso_hidden: tuple[int, ...] = knob((), "shared torso layer widths; (): separate networks",
                                         Sizes())
    policy_hidden: tuple[int, ...] = knob((64, 64), "policy head layer widths", Sizes())
    value_hidden: tuple[int, ...] = knob((64, 64), "value head layer widths", Sizes())
    value_activation: str | None = knob(None, "value head activation", Choice(ACTIVATIONS),
                                        fallback="activation")
    value_layer_norm: bool = knob(False, "LayerNorm in the value head's hidden layers", Flag())
    policy_output_gain: float = knob(0.01, "init gain of the policy output layer", _POSITIVE,
                                     traced=True)
    value_output_gain: float = knob(1.0, "init gain of the value output layer", _POSITIVE,
                                    traced=True)
    log_std_init: float = knob(0.0, "initial log-std of Gaussian policies", Interval(),
                               traced=True, action_space="continuous")
    policy_std: str = knob("parameter", "Gaussian policies' standard deviation: parameter (a "
                           "learned log-std per action dimension, the same in every state) or "
                           "softplus (softplus(Dense(policy features)) + policy_std_floor, one "
                           "per state, as gymnax-blines and Brax make it; initially "
                           "exp(log_std_init))", Choice(POLICY_STDS), action_space="continuous")
    policy_std_floor: float = knob(1e-3, "softplus policy_std: the smallest standard deviation "
                                   "(below exp(log_std_init))", _POSITIVE,
                                   action_space="continuous")
    # --- memory
    policy_rnn: int = knob(0, "width of the policy's recurrent cell, between its encoder (or the "
                           "shared torso) and policy_hidden; 0: feed-forward", Integer(0))
    value_rnn: int = knob(0, "width of the critic's recurrent cell, between its encoder (or the "
                          "shared torso) and value_hidden; 0: feed-forward", Integer(0))
    rnn_cell: str = knob("gru", "recurrent cell of policy_rnn / value_rnn: gru (one state "
                         "vector) or lstm (cell and hidden state)", Choice(RNN_CELLS))
    torso_rnn: int = knob(0, "width of one recurrent cell (rnn_cell) after the shared torso, "
                          "feeding both heads (needs torso_hidden; excludes policy_rnn and "
                          "value_rnn); 0: none", Integer(0))
    # --- learning-rate schedule shape
    lr_end_factor: float = knob(0.0, "where a decaying lr_schedule ends, as a multiple of each "
                                "group's learning rate (0: decay to 0; 0.1: lr 5e-3 ends at "
                                "5e-4)", _NON_NEGATIVE)
    lr_decay_fraction: float = knob(1.0, "share of the run's optimizer steps over which a "
                                    "decaying lr_schedule goes from lr to lr * lr_end_factor; "
                                    "it holds there after", _UNIT_OPEN_BELOW)
    # --- policy objective and KL control
    policy_loss: str = knob("clipped", "policy objective: clipped (PPO's clipped surrogate), "
                            "kl_penalty (-E[r A] + beta KL, beta adapted to target_kl) or dpo "
                            "(Discovered Policy Optimisation's drift, dpo_alpha/dpo_beta)",
                            Registered(REGISTRIES["policy_loss"]))
    kl_coef: float = knob(1.0, "kl_penalty: the initial KL coefficient beta (then doubled or "
                          "halved after each update)", _NON_NEGATIVE, traced=True)
    dpo_alpha: float = knob(2.0, "dpo: drift scale where the advantage is >= 0", _POSITIVE,
                            traced=True)
    dpo_beta: float = knob(0.6, "dpo: drift scale where the advantage is < 0", _POSITIVE,
                           traced=True)
    kl_adaptive_lr: bool = knob(False, "rsl_rl's adaptive learning rate: before each minibatch "
                                "step every lr is divided by 1.5 if approx KL > 2 target_kl, "
                                "multiplied by 1.5 if KL < target_kl / 2 (policy lr kept in "
                                "[1e-5, 1e-2])", Flag())
    # --- network variants and plasticity (docs/network-variants.md)
    quantile_count: int = knob(32, "quantile value loss: quantiles the critic predicts (tau_i = "
                               "(2i+1)/2n); the value is their mean", Integer(2))
    policy_block: str = knob("mlp", "policy_hidden layers as Dense+activation (mlp) or SimBa "
                             "residual blocks (simba: Dense embed, one pre-LayerNorm residual "
                             "block of 4x inner width per entry, final LayerNorm; equal widths)",
                             Choice(NETWORK_BLOCKS))
    value_block: str = knob("mlp", "value_hidden layers as mlp or simba blocks (see "
                            "policy_block)", Choice(NETWORK_BLOCKS))
    policy_layer_norm: bool = knob(False, "LayerNorm in the policy head's hidden layers (mlp "
                                   "block)", Flag())
    shrink_perturb_every: int = knob(0, "every N updates, theta <- alpha theta + sigma "
                                     "theta_fresh_init on shrink_perturb_groups; 0: off",
                                     Integer(0))
    shrink_perturb_alpha: float = knob(0.9, "shrink-and-perturb: the shrink factor alpha", _UNIT,
                                       traced=True)
    shrink_perturb_sigma: float = knob(0.1, "shrink-and-perturb: the weight sigma of a fresh "
                                       "initialization", _NON_NEGATIVE, traced=True)
    shrink_perturb_groups: str = knob("policy+value+torso", "shrink-and-perturb: the parameter "
                                      "groups it acts on", Choice(PARAM_GROUP_SETS))
    pfo: bool = knob(False, "PFO auxiliary loss: penalize the change of the actor's "
                     "pre-activations from the rollout's parameters (weight pfo_coef)", Flag())
    pfo_coef: float = knob(1.0, "pfo: weight of the pre-activation change penalty", _NON_NEGATIVE,
                           traced=True)
    # --- initialisation and time limits (the settings of other trainers)
    layer_init: str = knob("orthogonal", "kernels of the dense and conv layers: orthogonal "
                           "(gain sqrt 2 hidden, 1 elsewhere; the output gains scale the heads) "
                           "or lecun_normal (flax's default, as gymnax-blines; the output gains "
                           "still scale the heads); recurrent cells keep their own init",
                           Choice(LAYER_INITS))
    bias_init_max: float = knob(0.0, "biases of the dense and conv layers drawn uniformly from "
                                "[0, bias_init_max] (gymnax-blines: 0.05); 0: zero biases",
                                _NON_NEGATIVE)
    truncation: str = knob("bootstrap", "time-limit truncations in GAE: bootstrap (with the "
                           "value of the final observation, the unbiased estimate) or terminal "
                           "(as a termination: no bootstrap, as gymnax-blines and many "
                           "single-file PPOs)", Choice(TRUNCATIONS))

    def __post_init__(self) -> None:
        # Accept what TOML / CLI / notebooks naturally produce: lists for layer
        # sizes and integral floats such as 5e5 for counts.
        for name, declaration in KNOBS.items():
            value = getattr(self, name)
            coerced = declaration.allowed.coerce(value)
            if coerced is not value:
                object.__setattr__(self, name, coerced)
        self.validate()

    # ------------------------------------------------------------------ derived
    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def recurrent(self) -> bool:
        """Whether a network has a recurrent cell (its own or the shared one):
        minibatches are then whole env sequences (`num_envs // num_minibatches`
        envs each), not shuffled steps."""
        return bool(self.policy_rnn or self.value_rnn or self.torso_rnn)

    @property
    def eval_interval(self) -> int:
        """Updates between evaluations (0: none) with no step limit known: see
        `eval_interval_for`."""
        return self.eval_interval_for(None)

    def eval_interval_for(self, step_limit: int | None) -> int:
        """Updates between evaluations (0: none): `eval_every`, or for None about
        ten per run at a divisor of the updates, so the last evaluates the final
        policy and every chunk of the run evaluates at the same places. Given the
        episodes' `step_limit`, a short run whose evaluation could step more env
        steps (eval_episodes x step_limit) than its training does between two
        evaluations is evaluated less often, down to eight times: each greedy step
        costs about a twentieth of a training step, so evaluation then stays near
        5% of the run (CartPole at 65,536 steps: 8 evaluations, not 16)."""
        if self.eval_every is not None:
            return self.eval_every
        target = max(1, self.num_updates // 10)
        if step_limit:
            covering = math.ceil(self.eval_episodes * step_limit / self.batch_size)
            target = max(target, min(covering, self.num_updates // 8))
        return divisor_near(self.num_updates, target)

    @property
    def steps_per_update(self) -> int:
        """Optimizer steps in one PPO iteration (the schedule's unit)."""
        return self.update_epochs * self.num_minibatches

    def replace(self, **changes: Any) -> PPOConfig:
        """A copy with `changes`; unknown field names raise a ValueError."""
        check_fields(changes, "PPOConfig")
        return dataclasses.replace(self, **changes)

    def resolved(self, name: str) -> Any:
        """The value of field `name`, following declared fallbacks past `None`."""
        value = getattr(self, name)
        fallback = KNOBS[name].fallback
        return self.resolved(fallback) if value is None and fallback is not None else value

    def hparams(self) -> HParams:
        """The traced hyperparameters implied by this config (float32 scalars)."""
        return HParams(**{name: jnp.asarray(self.resolved(name), jnp.float32)
                          for name in HPARAM_FIELDS})

    # --------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise a ValueError naming the first bad field, its value and what is allowed:
        each field against its declaration, then the combinations of fields."""
        for name, declaration in KNOBS.items():
            declaration.check(name, getattr(self, name))
        self._validate_batch_shape()
        self._validate_sequences()
        self._validate_value_combinations()
        self._validate_policy_std()
        network_variants.validate(self)

    def _validate_batch_shape(self) -> None:
        if self.num_minibatches > self.batch_size:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} is invalid: a minibatch would be "
                f"empty; allowed is at most num_envs*num_steps={self.batch_size}"
            )
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} is invalid: the rollout batch "
                f"num_envs*num_steps={self.batch_size} must divide evenly into minibatches"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is invalid: allowed is at least "
                f"one rollout, num_envs*num_steps={self.batch_size}"
            )

    def _validate_sequences(self) -> None:
        if self.recurrent and self.num_envs % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} is invalid with a recurrent network "
                f"(policy_rnn={self.policy_rnn}, value_rnn={self.value_rnn}, torso_rnn="
                f"{self.torso_rnn}): minibatches are whole env sequences; allowed is a "
                f"divisor of num_envs={self.num_envs}")
        if self.torso_rnn and not self.torso_hidden:
            raise ValueError(f"torso_rnn={self.torso_rnn} is invalid with torso_hidden=(): the "
                             "shared cell reads the shared torso; allowed is torso_hidden set "
                             "(e.g. (128,)), or torso_rnn=0 with policy_rnn / value_rnn")
        if self.torso_rnn and (self.policy_rnn or self.value_rnn):
            raise ValueError(f"torso_rnn={self.torso_rnn} is invalid with policy_rnn="
                             f"{self.policy_rnn}, value_rnn={self.value_rnn}: the heads read "
                             "the shared cell; allowed is torso_rnn=0, or policy_rnn=0 and "
                             "value_rnn=0")

    def _validate_policy_std(self) -> None:
        if self.policy_std == "softplus" and math.exp(self.log_std_init) <= self.policy_std_floor:
            raise ValueError(f"policy_std_floor={self.policy_std_floor} is invalid with "
                             f"log_std_init={self.log_std_init}: the initial standard deviation "
                             f"exp(log_std_init)={math.exp(self.log_std_init):.3g} would lie "
                             "below the floor; allowed is a floor below it")

    def _validate_value_combinations(self) -> None:
        chosen = strategies.of(self)
        if chosen.value_loss.head.fixed_support and not chosen.value_target.fixed_scale:
            fixed = [n for n in REGISTRIES["value_target"]
                     if REGISTRIES["value_target"].get(n).fixed_scale]
            raise ValueError(f"value_loss={self.value_loss!r} with value_target="
                             f"{self.value_target!r} is invalid: the loss predicts over a fixed "
                             "support of bins, and this target's scale moves during training; "
                             f"allowed is a value_target with a fixed scale, one of {fixed}")
        if chosen.value_loss.head.fixed_support and strategies.hl_gauss_support(self) is None:
            raise ValueError(f"value_loss={self.value_loss!r} with value_target="
                             f"{self.value_target!r} needs hl_gauss_range: this target has no "
                             "default support and returns outside the support are clipped; "
                             "allowed is hl_gauss_range=(low, high) covering the returns, or "
                             "value_target='symlog'")


KNOBS: dict[str, Knob] = declared(PPOConfig)
# Sweepable: variants differing only in these share one compiled program.
TRACED_FIELDS: tuple[str, ...] = tuple(name for name, k in KNOBS.items() if k.traced)
_DECLARED_HPARAMS = {name for name, k in KNOBS.items() if k.hparam}
if set(HPARAM_FIELDS) != _DECLARED_HPARAMS:  # HParams is written out for type checkers
    raise TypeError(f"HParams fields {sorted(set(HPARAM_FIELDS) ^ _DECLARED_HPARAMS)} disagree "
                    "with the knobs declared hparam in PPOConfig")
CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PPOConfig))
DEFAULTS: dict[str, Any] = defaults(PPOConfig)


def action_space_knobs(config: PPOConfig) -> dict[str, str]:
    """Knobs of `config` set away from their default that act on one kind of
    action space only: name -> "continuous" or "discrete"."""
    return {name: k.action_space for name, k in KNOBS.items()
            if k.action_space is not None and getattr(config, name) != DEFAULTS[name]}


def divisor_near(n: int, target: int) -> int:
    """The largest divisor of `n` not above `target`, or `target` itself when that
    divisor is below a quarter of it (n prime, say)."""
    target = max(1, min(target, n))
    divisor = max(d for d in range(1, target + 1) if n % d == 0)
    return divisor if divisor * 4 >= target else target


class UnknownField(ValueError, TypeError):
    """A misspelled PPOConfig field: a ValueError in the one-line form, and still the
    TypeError a dataclass raises for an unexpected keyword."""


def check_fields(changes: Mapping[str, Any], owner: str) -> None:
    """Reject unknown field names with a suggestion and the list of valid ones."""
    unknown = sorted(set(changes) - set(CONFIG_FIELDS))
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), CONFIG_FIELDS, n=3, cutoff=0.7)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise UnknownField(
            f"{owner} has no field {unknown[0]!r}{hint}; valid fields are {list(CONFIG_FIELDS)}"
        )


def require_config(config: Any, where: str) -> None:
    """A one-line error for a config that is not a PPOConfig (a dict, say)."""
    if isinstance(config, PPOConfig):
        return
    hint = " (jppo.PPOConfig(**that_dict), or jppo.make_config(**that_dict))" \
        if isinstance(config, Mapping) else ""
    shown = repr(config) if len(repr(config)) <= 80 else type(config).__name__
    raise ValueError(f"{where}: config={shown} is invalid: allowed is a jppo.PPOConfig{hint}")


def _checked_init(init: Any) -> Any:
    """PPOConfig's dataclass __init__, naming a misspelled field with a suggestion
    (as the command line does) instead of 'unexpected keyword argument'."""
    @functools.wraps(init)
    def __init__(self: PPOConfig, *args: Any, **fields: Any) -> None:
        check_fields(fields, "PPOConfig")
        init(self, *args, **fields)

    return __init__


PPOConfig.__init__ = _checked_init(PPOConfig.__init__)  # type: ignore[method-assign]


def make_config(**fields: Any) -> PPOConfig:
    """`PPOConfig(**fields)` with a clear error naming an unknown field."""
    check_fields(fields, "PPOConfig")
    return PPOConfig(**fields)
