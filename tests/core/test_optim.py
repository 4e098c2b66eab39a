"""Tests for the optimizer (jppo.core.optim): schedules, per-group learning rates, clipping."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jppo.core.config import PPOConfig
from jppo.core.networks import init_params, make_network, param_labels
from jppo.core.optim import learning_rates_in_force, make_optimizer, schedule

B1, B2 = 0.9, 0.999  # optax.scale_by_adam defaults

# 2 updates of (1 epoch x 2 minibatches): the schedule spans 4 optimizer steps.
SMALL = dict(
    num_envs=2, num_steps=4, total_timesteps=16, update_epochs=1, num_minibatches=2,
    policy_hidden=(8,), value_hidden=(8,), torso_hidden=(8,),
    policy_lr=1e-2, value_lr=1e-5, torso_lr=1e-3,
)
TOTAL_STEPS = 4
GROUP_LRS = {"policy": 1e-2, "value": 1e-5, "torso": 1e-3}


def reference_lr(kind, base, count, total):
    frac = min(count / total, 1.0)
    if kind == "linear":
        return base * (1.0 - frac)
    if kind == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * frac))
    return base


def small_setup(**overrides):
    config = PPOConfig(**{**SMALL, **overrides})
    assert config.num_updates * config.steps_per_update == TOTAL_STEPS
    hparams = config.hparams()
    network = make_network(config, action_dim=2, discrete=False)
    params = init_params(network, jax.random.PRNGKey(0), 3, hparams)
    return config, hparams, params


def run_optimizer(config, hparams, params, grads_seq):
    tx = make_optimizer(config, hparams, params)
    state = tx.init(params)
    out = []
    for grads in grads_seq:
        updates, state = tx.update(grads, state, params)
        out.append(updates)
    return out


def reference_updates(config, params, grads_seq):
    """Global-norm clip over all groups, then per-element Adam with the group's schedule."""
    labels = jax.tree.leaves(param_labels(params))
    shapes = [np.shape(p) for p in jax.tree.leaves(params)]
    m = [np.zeros(s) for s in shapes]
    v = [np.zeros(s) for s in shapes]
    total = config.num_updates * config.steps_per_update
    out = []
    for count, grads in enumerate(grads_seq):
        g = [np.asarray(x, np.float64) for x in jax.tree.leaves(grads)]
        norm = math.sqrt(sum(float(np.sum(x**2)) for x in g))
        if norm > config.max_grad_norm:
            g = [x * config.max_grad_norm / norm for x in g]
        step = []
        for i, (x, label) in enumerate(zip(g, labels, strict=True)):
            m[i] = B1 * m[i] + (1 - B1) * x
            v[i] = B2 * v[i] + (1 - B2) * x**2
            m_hat = m[i] / (1 - B1 ** (count + 1))
            v_hat = v[i] / (1 - B2 ** (count + 1))
            lr = reference_lr(config.lr_schedule, GROUP_LRS[label], count, total)
            step.append(-lr * m_hat / (np.sqrt(v_hat) + config.adam_eps))
        out.append(step)
    return out


def random_grads(params, seed, scale):
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(
        treedef, [jnp.asarray(scale * rng.normal(size=np.shape(x)), jnp.float32) for x in leaves]
    )


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_schedule_matches_formula(kind):
    fn = schedule(kind, jnp.float32(3e-4), 100)
    for count in (0, 1, 25, 50, 99, 100, 150):
        np.testing.assert_allclose(
            fn(jnp.int32(count)), reference_lr(kind, 3e-4, count, 100), rtol=1e-5, atol=1e-10
        )


def test_linear_schedule_decays_by_a_fixed_amount_per_step_and_ends_at_zero():
    fn = schedule("linear", jnp.float32(1.0), 8)
    values = np.array([fn(jnp.int32(c)) for c in range(12)])
    np.testing.assert_allclose(np.diff(values[:9]), -1.0 / 8, rtol=1e-6)
    np.testing.assert_array_equal(values[8:], 0.0)


def test_cosine_schedule_is_half_way_at_half_time():
    np.testing.assert_allclose(schedule("cosine", jnp.float32(2.0), 10)(jnp.int32(5)), 1.0)


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="lr_schedule"):
        schedule("exponential", jnp.float32(1.0), 10)


def test_first_adam_step_moves_every_parameter_by_its_group_learning_rate():
    config, hparams, params = small_setup(max_grad_norm=1e9)
    ones = jax.tree.map(jnp.ones_like, params)
    (updates,) = run_optimizer(config, hparams, params, [ones])
    labels = param_labels(params)
    assert set(jax.tree.leaves(labels)) == set(GROUP_LRS)
    for update, label in zip(jax.tree.leaves(updates), jax.tree.leaves(labels), strict=True):
        # Adam's first step is g / (|g| + eps) = 1 / (1 + 1e-5) for a gradient of ones
        np.testing.assert_allclose(update, -GROUP_LRS[label], rtol=1e-4)


@pytest.mark.parametrize(("kind", "factor"), [("linear", 0.75), ("cosine", 0.5 + 0.5 * 0.5 ** 0.5),
                                              ("constant", 1.0)])
def test_learning_rate_follows_the_schedule_per_optimizer_step(kind, factor):
    """With a constant gradient every Adam step is ~1, so |update| is the scheduled lr."""
    config, hparams, params = small_setup(max_grad_norm=1e9, lr_schedule=kind)
    ones = jax.tree.map(jnp.ones_like, params)
    _, second = run_optimizer(config, hparams, params, [ones, ones])
    labels = jax.tree.leaves(param_labels(params))
    for update, label in zip(jax.tree.leaves(second), labels, strict=True):
        np.testing.assert_allclose(update, -GROUP_LRS[label] * factor, rtol=1e-4)


@pytest.mark.parametrize("kind", ["linear", "constant"])
@pytest.mark.parametrize("max_grad_norm", [1e9, 0.05])
def test_updates_match_a_numpy_clip_then_adam_reference(kind, max_grad_norm):
    config, hparams, params = small_setup(max_grad_norm=max_grad_norm, lr_schedule=kind)
    # gradient norms that differ by 100x between steps, so clipping changes Adam's result
    grads_seq = [random_grads(params, seed, scale) for seed, scale in enumerate((1.0, 10.0, 0.1))]
    got = run_optimizer(config, hparams, params, grads_seq)
    expected = reference_updates(config, params, grads_seq)
    for step_got, step_expected in zip(got, expected, strict=True):
        for a, b in zip(jax.tree.leaves(step_got), step_expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-9)


def test_clipping_is_global_across_groups_and_changes_the_update():
    """The reference above would not notice a missing clip unless clipping matters here."""
    config, hparams, params = small_setup(max_grad_norm=0.05)
    grads_seq = [random_grads(params, seed, scale) for seed, scale in enumerate((1.0, 10.0, 0.1))]
    got = run_optimizer(config, hparams, params, grads_seq)[-1]
    unclipped = reference_updates(config.replace(max_grad_norm=1e9), params, grads_seq)[-1]
    assert not all(
        np.allclose(a, b, rtol=1e-2) for a, b in zip(jax.tree.leaves(got), unclipped, strict=True)
    )

    # Compare with optax's clip applied once to the whole tree, then the same per-group Adam.
    labels = param_labels(params)
    reference = optax.chain(
        optax.clip_by_global_norm(0.05),
        optax.multi_transform(
            {g: optax.adam(optax.linear_schedule(lr, 0.0, TOTAL_STEPS), eps=config.adam_eps)
             for g, lr in GROUP_LRS.items()},
            labels,
        ),
    )
    state = reference.init(params)
    for grads in grads_seq:
        ref_updates, state = reference.update(grads, state, params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref_updates), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-9)


def test_make_optimizer_accepts_traced_hyperparameters():
    config, hparams, params = small_setup(max_grad_norm=0.05)
    grads = random_grads(params, 0, 1.0)

    def one_step(hp, grads):
        tx = make_optimizer(config, hp, params)
        return tx.update(grads, tx.init(params), params)[0]

    jitted = jax.jit(one_step)(hparams, grads)
    eager = one_step(hparams, grads)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_learning_rates_in_force_are_the_schedule_values(kind):
    config, hparams, _ = small_setup(lr_schedule=kind)
    for step in (0, 1, 2, 4, 6):
        lrs = learning_rates_in_force(config, hparams, jnp.int32(step))
        assert set(lrs) == set(GROUP_LRS)
        for group, base in GROUP_LRS.items():
            np.testing.assert_allclose(
                lrs[group], reference_lr(kind, base, step, TOTAL_STEPS), rtol=1e-5, atol=1e-12
            )
