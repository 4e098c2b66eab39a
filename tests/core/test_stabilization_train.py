"""The stabilization variants inside the train program: KL early stopping,
value pretraining, vmapped sweeps, diagnostics metrics, PopArt under a
1000x reward scale, and config validation of the variant choices.

Compiles are expensive (seconds each), so every compiled program is a
module-scoped fixture shared by the tests that read it; eight in all:
  init (shared torso), update with / without KL early stop, init with value
  pretraining, the diagnostics run solo and as a vmapped sweep, and the
  reward-scaled run with PopArt and with raw targets.
"""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jppo
from jppo import envs
from jppo.analysis.metrics import METRIC_DOCS, VARIANT_METRICS
from jppo.core.networks import ActorCritic, param_group
from jppo.runs import results

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2,
            num_minibatches=2)
SHARED_TORSO = dict(torso_hidden=(32,), policy_hidden=(16,), value_hidden=(16,))
KEY = jax.random.PRNGKey(0)

# Recorded only with diagnostics=True (log_std_mean: Gaussian policies only).
DIAGNOSTIC_ONLY = {"grad_norm_policy", "grad_norm_value", "grad_norm_torso",
                   "grad_norm_policy_term_torso", "grad_norm_value_term_torso",
                   "value_std", "target_abs_max", "normalizer_sigma", "log_std_mean"}


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    # NaN == NaN (episode metrics are NaN in updates where no episode ended).
    jax.tree.map(lambda x, y: np.testing.assert_allclose(
        np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=True), a, b)


def by_group(params):
    """{"policy"|"value"|"torso": {module name: subtree}}."""
    groups = {"policy": {}, "value": {}, "torso": {}}
    for name, sub in params["params"].items():
        groups[param_group(name)][name] = sub
    return groups


def max_abs_change(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def schedule_counts(opt_state):
    """The count every group's learning-rate schedule reads."""
    return [int(s.count) for s in jax.tree.leaves(
        opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByScheduleState))
        if isinstance(s, optax.ScaleByScheduleState)]


def adam_step_counts(opt_state):
    """The step count of every group's Adam."""
    return [int(s.count) for s in jax.tree.leaves(
        opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)]


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


# ------------------------------------------------------------------ KL early stopping

# A large constant lr and a tiny KL target: the second minibatch step already
# exceeds 1.5 * target_kl (the first is taken at the rollout policy, KL = 0).
KL_CONFIG = jppo.PPOConfig(**{**TINY, **SHARED_TORSO, "update_epochs": 4, "lr": 1e-2,
                              "lr_schedule": "constant", "target_kl": 1e-6,
                              "kl_early_stop": True, "diagnostics": False})
KL_LR = 1e-2


@pytest.fixture(scope="module")
def kl_trainer(cartpole):
    return jppo.make_train(KL_CONFIG, *cartpole)


@pytest.fixture(scope="module")
def initial_state(kl_trainer):
    return jax.jit(kl_trainer.init)(KEY, KL_CONFIG.hparams())


@pytest.fixture(scope="module")
def update_with_stop(kl_trainer):
    return jax.jit(kl_trainer.update)


@pytest.fixture(scope="module")
def update_without_stop(cartpole):
    trainer = jppo.make_train(KL_CONFIG.replace(kl_early_stop=False), *cartpole)
    return jax.jit(trainer.update)


@pytest.fixture(scope="module")
def full_update(initial_state, update_without_stop):
    """One update without early stopping from the shared initial state."""
    return update_without_stop(initial_state, KL_CONFIG.hparams())


def test_kl_early_stop_ends_every_update_before_its_last_epoch(initial_state,
                                                                 update_with_stop):
    """Three updates in a row: each stops early, and the optimizer really took only
    the steps counted by epochs_completed (Adam's step count)."""
    state, applied_steps = initial_state, 0
    for _ in range(3):
        state, metrics = update_with_stop(state, KL_CONFIG.hparams())
        completed = float(metrics["epochs_completed"])
        assert 0 < completed < KL_CONFIG.update_epochs, completed
        applied_steps += round(completed * KL_CONFIG.num_minibatches)
        assert adam_step_counts(state.opt_state) == [applied_steps] * 3  # policy/torso/value


def test_kl_early_stop_freezes_params_after_the_stopping_step(initial_state, update_with_stop,
                                                              full_update):
    """With one applied Adam step every parameter moves by at most lr; without the
    stop all update_epochs * num_minibatches steps are applied and move them further."""
    stopped, metrics = update_with_stop(initial_state, KL_CONFIG.hparams())
    assert float(metrics["epochs_completed"]) == 1 / KL_CONFIG.num_minibatches
    assert max_abs_change(stopped.params, initial_state.params) <= KL_LR * (1 + 1e-5)

    full, full_metrics = full_update
    assert float(full_metrics["epochs_completed"]) == KL_CONFIG.update_epochs
    assert adam_step_counts(full.opt_state) == [KL_CONFIG.steps_per_update] * 3
    assert max_abs_change(full.params, initial_state.params) > 2 * KL_LR
    assert max_abs_change(full.params, stopped.params) > KL_LR


def test_kl_early_stop_with_an_unreachable_target_equals_no_early_stop(
        initial_state, update_with_stop, full_update):
    """target_kl is traced: the early-stop program with target_kl=1e9 never stops
    and then is the plain program, step for step."""
    relaxed = KL_CONFIG.hparams().replace(target_kl=jnp.float32(1e9))
    state, metrics = update_with_stop(initial_state, relaxed)
    full, full_metrics = full_update
    assert float(metrics["epochs_completed"]) == KL_CONFIG.update_epochs
    assert_trees_close(state.params, full.params)
    assert_trees_close(metrics, full_metrics)


def test_kl_early_stop_keeps_the_lr_schedule_on_the_planned_steps(cartpole, initial_state):
    """Skipped minibatches revert parameters and Adam, not the schedule: after u
    updates the schedule has counted u * steps_per_update (planned progress, as
    SB3/CleanRL anneal), and lr_policy is the linear decay computed by hand,
    averaged over the update's planned steps, although most steps were skipped."""
    config = KL_CONFIG.replace(lr_schedule="linear")
    update = jax.jit(jppo.make_train(config, *cartpole).update)
    per_update, total = config.steps_per_update, config.num_updates * config.steps_per_update
    state, applied = initial_state, 0
    for u in range(config.num_updates):
        state, metrics = update(state, config.hparams())
        applied += round(float(metrics["epochs_completed"]) * config.num_minibatches)
        assert schedule_counts(state.opt_state) == [(u + 1) * per_update] * 3
        by_hand = np.mean([KL_LR * (1 - k / total)
                           for k in range(u * per_update, (u + 1) * per_update)])
        np.testing.assert_allclose(float(metrics["lr_policy"]), by_hand, rtol=1e-5)
    assert 0 < applied < config.num_updates * per_update  # steps really were skipped
    assert adam_step_counts(state.opt_state) == [applied] * 3


# ------------------------------------------------------------------ value pretraining

# Pretraining at the default learning rate (the lr=1e-2 of KL_CONFIG once hid
# that one full-batch step per rollout barely moved the critic).
PRETRAIN_CONFIG = KL_CONFIG.replace(lr=jppo.PPOConfig().lr, value_pretrain_updates=10)


@pytest.fixture(scope="module")
def pretrained_state(cartpole):
    trainer = jppo.make_train(PRETRAIN_CONFIG, *cartpole)
    return trainer, jax.jit(trainer.init)(KEY, PRETRAIN_CONFIG.hparams())


def test_value_pretraining_changes_only_critic_parameters(initial_state, pretrained_state):
    """Same key: the policy and the shared torso are exactly the fresh init (the
    torso gets value gradients, which pretraining must mask), the critic moved."""
    _, pretrained = pretrained_state
    fresh, tuned = by_group(initial_state.params), by_group(pretrained.params)
    assert set(tuned["torso"]) == {"torso"}
    chex.assert_trees_all_equal(tuned["policy"], fresh["policy"])
    chex.assert_trees_all_equal(tuned["torso"], fresh["torso"])
    for name in tuned["value"]:
        for new, old in zip(jax.tree.leaves(tuned["value"][name]),
                            jax.tree.leaves(fresh["value"][name]), strict=True):
            assert not np.allclose(new, old), name


def test_value_pretraining_hands_ppo_a_fresh_optimizer(initial_state, pretrained_state):
    """The pretraining Adam is discarded: PPO's optimizer state is the untouched init."""
    _, pretrained = pretrained_state
    chex.assert_trees_all_equal(pretrained.opt_state, initial_state.opt_state)
    assert adam_step_counts(pretrained.opt_state) == [0, 0, 0]
    assert int(pretrained.update_count) == 0


def test_value_pretraining_moves_the_critic_toward_cartpole_returns(initial_state,
                                                                    pretrained_state):
    """Every CartPole reward is +1, so lambda=1 targets are positive (several units)
    while the fresh critic predicts ~0: pretraining raises V on start states."""
    trainer, pretrained = pretrained_state
    start_states = jnp.asarray(
        np.random.default_rng(0).uniform(-0.05, 0.05, size=(64, 4)), jnp.float32)

    def mean_value(params):
        return float(jnp.mean(trainer.network.apply(params, start_states,
                                                    method=ActorCritic.value)))

    assert abs(mean_value(initial_state.params)) < 0.5
    assert mean_value(pretrained.params) > mean_value(initial_state.params) + 0.05


# Enough minibatch steps per rollout for a fit at the default lr: 20 rollouts of
# 1024 steps, 4 epochs x 32 minibatches each.
FIT_CONFIG = jppo.PPOConfig(num_envs=8, num_steps=128, total_timesteps=8 * 128,
                            num_minibatches=32, diagnostics=False)


def fresh_explained_variance(cartpole, pretrain_updates):
    """Explained variance of the critic after `pretrain_updates` on fresh
    rollouts of the initial policy (new keys) against lambda = 1 targets,
    computed here with numpy: 1 - Var(target - V) / Var(target)."""
    config = FIT_CONFIG.replace(value_pretrain_updates=pretrain_updates)
    trainer, hparams = jppo.make_train(config, *cartpole), config.hparams()
    state = jax.jit(trainer.init)(KEY, hparams)
    collect = jax.jit(lambda k: trainer.phases["collect"](state, hparams, k, jnp.ones(())))
    scores = []
    for i in range(3):
        c = collect(jax.random.PRNGKey(100 + i))
        values, targets = np.asarray(c.values).ravel(), np.asarray(c.targets).ravel()
        scores.append(1 - np.var(targets - values) / np.var(targets))
    return float(np.mean(scores))


def test_value_pretraining_fits_the_critic_at_the_default_lr(cartpole):
    """Measured: 0.39 after 20 pretraining rollouts, 0.004 without pretraining
    (and about 0 when pretraining took one full-batch step per rollout)."""
    untrained = fresh_explained_variance(cartpole, 0)
    pretrained = fresh_explained_variance(cartpole, 20)
    assert abs(untrained) < 0.1
    assert pretrained > 0.3
    assert pretrained > untrained + 0.25


def test_env_steps_count_the_pretraining_rollouts():
    """The env_steps column counts pretraining env steps before update 0."""
    metrics = {"episode_return": np.zeros((2, 3))}
    table = results.metrics_table(metrics, variant="v", env="E", seeds=[0, 1], first_update=1,
                                  steps_per_update=64, pretrain_steps=5 * 64)
    assert table["env_steps"].to_pylist() == [(5 + u) * 64 for u in (2, 3, 4)] * 2


# --------------------------------------------------------- diagnostics, sweeps (shared torso)

DIAG_CONFIG = jppo.PPOConfig(**TINY, **SHARED_TORSO)  # diagnostics=True is the default


@pytest.fixture(scope="module")
def diag_trainer(cartpole):
    return jppo.make_train(DIAG_CONFIG, *cartpole)


@pytest.fixture(scope="module")
def diag_solo(diag_trainer):
    return jax.jit(diag_trainer)


@pytest.fixture(scope="module")
def diag_result(diag_solo):
    return diag_solo(KEY, DIAG_CONFIG.hparams())


def test_every_documented_metric_is_recorded_once_per_update(diag_result):
    """Discrete actions: all of METRIC_DOCS except the Gaussian log_std_mean and
    the metrics of variants off here (tests/core/test_policy_objectives.py and
    tests/core/test_network_variants.py check those: pfo_loss is recorded only with pfo=True)."""
    metrics = diag_result.metrics
    assert set(metrics) == set(METRIC_DOCS) - {"log_std_mean"} - VARIANT_METRICS
    for name, values in metrics.items():
        chex.assert_shape(values, (DIAG_CONFIG.num_updates,), custom_message=name)
    for name in set(metrics) - {"episode_return", "episode_length"}:
        chex.assert_tree_all_finite(metrics[name])


def test_diagnostics_off_drops_exactly_the_diagnostic_metrics(diag_result, full_update):
    """The KL programs run with diagnostics=False (same env and network)."""
    _, metrics = full_update
    assert DIAGNOSTIC_ONLY.isdisjoint(metrics)
    assert set(metrics) == set(diag_result.metrics) - DIAGNOSTIC_ONLY


def test_shared_torso_term_norms_show_value_dominance(diag_result):
    """Both loss terms reach the shared torso; on CartPole at init the value term's
    gradient there dwarfs the policy term's (the failure these metrics expose)."""
    m = diag_result.metrics
    policy_term, value_term = m["grad_norm_policy_term_torso"], m["grad_norm_value_term_torso"]
    assert np.all(np.asarray(policy_term) > 0) and np.all(np.asarray(value_term) > 0)
    assert np.all(np.asarray(value_term) > 10 * np.asarray(policy_term))


def test_group_gradient_norms_partition_the_global_norm(diag_result):
    """grad_norm^2 = policy^2 + value^2 + torso^2 at every step, so the step means obey
    max(groups) <= grad_norm <= sum(groups)."""
    m = {k: np.asarray(v, np.float64) for k, v in diag_result.metrics.items()}
    groups = [m["grad_norm_policy"], m["grad_norm_value"], m["grad_norm_torso"]]
    assert np.all(np.asarray(groups) > 0)
    tol = 1e-4
    assert np.all(m["grad_norm"] >= np.max(groups, axis=0) * (1 - tol))
    assert np.all(m["grad_norm"] <= np.sum(groups, axis=0) * (1 + tol))
    np.testing.assert_allclose(m["grad_clip_ratio"], m["grad_norm"] / DIAG_CONFIG.max_grad_norm,
                               rtol=1e-5)


def test_raw_targets_without_reward_scaling_report_a_unit_normalizer(diag_result):
    """normalizer_sigma is exactly 1 without PopArt or reward scaling."""
    np.testing.assert_array_equal(diag_result.metrics["normalizer_sigma"], 1.0)


SWEEP_GRID = dict(vf_coef=[0.05, 1.0], value_clip_eps=[0.2, 10.0])


@pytest.fixture(scope="module")
def swept(diag_trainer):
    grid = jppo.sweep(DIAG_CONFIG, **SWEEP_GRID)
    keys, hparams = grid.tile(num_seeds=2)
    return grid, keys, jax.jit(jax.vmap(diag_trainer))(keys, hparams)


@pytest.mark.parametrize(("point", "seed"), [(1, 1), (2, 0)])
def test_vmapped_sweep_equals_solo_runs_of_each_point(swept, diag_solo, point, seed):
    """Grid point `point`, seed `seed` of the vmapped sweep is the solo run of
    `DIAG_CONFIG.replace(**setting)` with `PRNGKey(seed)`."""
    grid, keys, result = swept
    index = point * 2 + seed
    np.testing.assert_array_equal(keys[index], jax.random.PRNGKey(seed))
    alone = diag_solo(jax.random.PRNGKey(seed), DIAG_CONFIG.replace(**grid.settings[point])
                      .hparams())
    assert_trees_close(jax.tree.map(lambda x: x[index], result.metrics), alone.metrics)
    assert_trees_close(jax.tree.map(lambda x: x[index], result.state.params),
                       alone.state.params)


def test_sweep_points_really_differ_and_split_by_point_and_seed(swept):
    """Same seed: the first rollout is shared, the vf_coef points' losses differ."""
    grid, _, result = swept
    per_point = grid.split(result.metrics)
    assert per_point["total_loss"].shape == (4, 2, DIAG_CONFIG.num_updates)
    # vf_coef 0.05 vs 1.0 at the same seed: same first rollout, different losses
    np.testing.assert_allclose(per_point["target_mean"][0, 0, 0], per_point["target_mean"][2, 0, 0])
    assert not np.allclose(per_point["total_loss"][0, 0], per_point["total_loss"][2, 0])


def test_torso_term_norms_are_taken_at_the_update_start_and_scale_with_vf_coef(swept):
    """Measured on the first minibatch at the update's starting parameters: on the
    first update (same seed, same init, same rollout) the value term is exactly
    vf_coef-proportional, the policy term does not depend on vf_coef, and the value
    clip is irrelevant (V = V_old there)."""
    grid, _, result = swept
    per_point = grid.split(result.metrics)
    value_term = per_point["grad_norm_value_term_torso"][:, :, 0]  # (points, seeds)
    policy_term = per_point["grad_norm_policy_term_torso"][:, :, 0]
    vf = np.array([s["vf_coef"] for s in grid.settings])
    np.testing.assert_allclose(value_term / vf[:, None], np.broadcast_to(
        value_term[0] / vf[0], value_term.shape), rtol=1e-4)
    np.testing.assert_allclose(policy_term, np.broadcast_to(policy_term[0], policy_term.shape),
                               rtol=1e-5)


# --------------------------------------------------------- PopArt under a 1000x reward scale

STRESS_CONFIG = jppo.PPOConfig(**{**TINY, **SHARED_TORSO, "total_timesteps": 4 * 16 * 6})
REWARD_SCALE = 1000.0


def stress_hparams(config):
    """A fast critic and a fast PopArt EMA, so six updates show the trend."""
    return config.hparams().replace(value_lr=jnp.float32(1e-2), torso_lr=jnp.float32(1e-2),
                                    popart_step=jnp.float32(0.1))


@pytest.fixture(scope="module")
def stress_runs():
    """{"popart": metrics, "raw": metrics}: CartPole with every reward x1000."""
    runs = {}
    for target in ("popart", "raw"):
        config = STRESS_CONFIG.replace(value_target=target)
        trainer = jppo.make_train(config, *envs.make("CartPole-v1", reward_scale=REWARD_SCALE))
        runs[target] = {k: np.asarray(v, np.float64) for k, v in
                        jax.jit(trainer)(KEY, stress_hparams(config)).metrics.items()}
    return runs


def test_reward_scale_multiplies_the_target_scale_by_1000(stress_runs, diag_result):
    """Same key and network, so the first rollout is CartPole's; targets scale ~1000x
    (the untrained critic's ~0 bootstrap values do not scale). PopArt starts as the
    identity, so on the first update its targets are the raw ones."""
    cartpole_max = float(diag_result.metrics["target_abs_max"][0])
    for target in ("popart", "raw"):
        ratio = stress_runs[target]["target_abs_max"][0] / cartpole_max
        assert 0.9 * REWARD_SCALE < ratio < 1.1 * REWARD_SCALE, (target, ratio)
        np.testing.assert_allclose(stress_runs[target]["reward_mean"], REWARD_SCALE)
    np.testing.assert_allclose(stress_runs["popart"]["target_abs_max"][0],
                               stress_runs["raw"]["target_abs_max"][0], rtol=1e-5)


def test_popart_sigma_grows_to_the_return_scale(stress_runs):
    """PopArt's sigma rises every update to the targets' std (thousands); raw stays 1."""
    popart = stress_runs["popart"]
    sigma = popart["normalizer_sigma"]
    assert np.all(np.diff(sigma) > 0), sigma
    assert sigma[-1] > 100.0, sigma
    assert 1 / 3 < sigma[-1] / popart["target_std"][-1] < 3, (sigma, popart["target_std"])
    np.testing.assert_array_equal(stress_runs["raw"]["normalizer_sigma"], 1.0)


def test_popart_critic_tracks_returns_where_the_raw_clipped_critic_is_frozen(stress_runs):
    """Default clipped value loss, value_clip_eps=0.2: in return units that moves a raw
    critic by ~0.2 per update against targets in the thousands; PopArt applies the
    clip in normalized units, so its predictions (in return units) catch up."""
    popart, raw = stress_runs["popart"], stress_runs["raw"]
    assert np.all(np.isfinite(popart["explained_variance"]))
    assert np.all(np.isfinite(popart["value_mean"]))
    assert popart["value_mean"][-1] > 0.1 * popart["target_mean"][-1], popart["value_mean"]
    assert popart["value_std"][-1] > 10.0
    assert abs(raw["value_mean"][-1]) < 0.01 * raw["target_mean"][-1], raw["value_mean"]


# ------------------------------------------------------------------ config validation


@pytest.mark.parametrize(("changes", "named"), [
    (dict(value_loss="hl_gauss", value_target="popart"), ["value_loss", "value_target"]),
    (dict(value_loss="hl_gauss", value_target="batch_standardize"),
     ["value_loss", "value_target"]),
    (dict(value_loss="hl_gauss", hl_gauss_range=(1.0, 0.0)), ["hl_gauss_range"]),
    (dict(value_loss="hl_gauss", hl_gauss_range=(2.0, 2.0)), ["hl_gauss_range"]),
    (dict(value_loss="hl_gauss", hl_gauss_bins=0), ["hl_gauss_bins"]),
    (dict(value_loss="expectile"), ["value_loss"]),
    (dict(value_target="standardize"), ["value_target"]),
    (dict(advantage_norm="whiten"), ["advantage_norm"]),
    (dict(grad_clip="per_layer"), ["grad_clip"]),
    (dict(ent_schedule="exponential"), ["ent_schedule"]),
    (dict(value_clip_mode="percent"), ["value_clip_mode"]),
    (dict(value_pretrain_updates=-1), ["value_pretrain_updates"]),
    (dict(value_pretrain_updates=1.5), ["value_pretrain_updates"]),
    (dict(kl_early_stop=1), ["kl_early_stop"]),
    (dict(diagnostics="yes"), ["diagnostics"]),
    (dict(target_kl=0.0), ["target_kl"]),
    (dict(popart_step=1.5), ["popart_step"]),
])
def test_invalid_variant_combinations_raise_naming_the_fields(changes, named):
    """Rejected when the config is built: before any env is made or compile starts."""
    with pytest.raises(ValueError) as info:
        jppo.PPOConfig(**TINY, **changes)
    for field in named:
        assert field in str(info.value), (field, str(info.value))
    with pytest.raises(ValueError):
        jppo.PPOConfig(**TINY).replace(**changes)


@pytest.mark.parametrize("support", [(0.0, 1.0, 2.0), 5.0, "ab", (-math.inf, 10.0)],
                         ids=["three-entries", "scalar", "string", "infinite"])
def test_malformed_hl_gauss_range_is_rejected_by_name(support):
    """A support that is not a finite (low, high) pair fails validation by name."""
    with pytest.raises(ValueError, match="hl_gauss_range"):
        jppo.PPOConfig(**TINY, value_loss="hl_gauss", hl_gauss_range=support)


@pytest.mark.parametrize("changes", [
    dict(value_loss="hl_gauss", value_target="symlog"),
    dict(value_loss="huber", value_target="popart", value_clip_mode="relative"),
    dict(advantage_norm="robust", grad_clip="per_head", ent_schedule="cosine",
         kl_early_stop=True, value_pretrain_updates=2, obs_norm=True, reward_scaling=True),
])
def test_valid_variant_combinations_are_accepted(changes):
    """Compatible variants combine freely."""
    config = jppo.PPOConfig(**TINY, **changes)
    for field, value in changes.items():
        assert getattr(config, field) == value


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_entropy_schedule_decays_from_ent_coef_to_ent_coef_final(kind):
    """The coefficient in force at update u follows the schedule over u/(N-1),
    reaching ent_coef_final at the last update."""
    config = jppo.PPOConfig(**TINY, ent_coef=0.03, ent_coef_final=0.01, ent_schedule=kind)
    env, env_params = envs.make("CartPole-v1")
    metrics = jax.jit(jppo.make_train(config, env, env_params))(jax.random.PRNGKey(0)).metrics
    frac = np.arange(config.num_updates) / (config.num_updates - 1)
    if kind == "linear":
        expected = 0.03 + (0.01 - 0.03) * frac
    else:
        expected = 0.01 + (0.03 - 0.01) * 0.5 * (1 + np.cos(np.pi * frac))
    np.testing.assert_allclose(np.asarray(metrics["ent_coef"]), expected, rtol=1e-6)


def test_relative_value_clip_is_the_absolute_clip_scaled_by_the_target_std():
    """On the first update the running target std is the rollout's (up to its tiny
    prior), so relative eps=e behaves as absolute eps=e*std(targets)."""
    env, env_params = envs.make("CartPole-v1")
    one_update = dict(TINY, total_timesteps=TINY["num_envs"] * TINY["num_steps"])
    relative = jppo.PPOConfig(**one_update, value_clip_mode="relative", value_clip_eps=0.01)
    metrics = jax.jit(jppo.make_train(relative, env, env_params))(jax.random.PRNGKey(4)).metrics
    target_std = float(metrics["target_std"][0])
    absolute = jppo.PPOConfig(**one_update, value_clip_eps=0.01 * target_std)
    reference = jax.jit(jppo.make_train(absolute, env, env_params))(jax.random.PRNGKey(4)).metrics
    assert 0.0 < float(metrics["value_clip_fraction"][0]) < 1.0, "the clip is active"
    for name in ("value_loss", "value_clip_fraction", "policy_loss"):
        np.testing.assert_allclose(metrics[name], reference[name], rtol=1e-3, atol=1e-6)
