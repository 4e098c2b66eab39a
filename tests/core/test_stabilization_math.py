"""The stabilization building blocks as pure functions, against independent
references: Huber / robust advantage normalization / HL-Gauss (numpy, scipy),
running statistics and reward scaling (numpy loops), symlog, PopArt's
output-preserving rescale, per-head gradient clipping, and the sweep helper.

No train program is compiled here."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

import jppo
from jppo.core import losses
from jppo.core import normalize as norm
from jppo.core.config import HPARAM_FIELDS, PPOConfig
from jppo.core.networks import init_params, make_network, param_labels
from jppo.core.optim import group_norms, make_optimizer

# --------------------------------------------------------------------------- Huber


def numpy_huber(values, targets, delta):
    error = np.abs(np.asarray(values, np.float64) - targets)
    return np.mean(np.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta)))


@pytest.mark.parametrize("delta", [0.5, 1.0, 5.0])
def test_huber_value_loss_matches_numpy_in_both_regimes(delta):
    """Errors on both sides of delta: quadratic inside, linear (slope delta) outside."""
    rng = np.random.default_rng(0)
    values = rng.normal(scale=3.0, size=256).astype(np.float32)
    targets = rng.normal(scale=3.0, size=256).astype(np.float32)
    error = np.abs(values - targets)
    assert np.any(error < delta) and np.any(error > delta), "both regimes are exercised"
    got = losses.huber_value_loss(values, targets, jnp.float32(delta))
    np.testing.assert_allclose(got, numpy_huber(values, targets, delta), rtol=1e-5)


def test_huber_value_loss_hand_computed():
    """delta = 1, errors 0.5 and 3: (0.5 * 0.25 + (3 - 0.5)) / 2."""
    got = losses.huber_value_loss(jnp.array([0.5, -3.0]), jnp.zeros(2), jnp.float32(1.0))
    np.testing.assert_allclose(got, (0.125 + 2.5) / 2, rtol=1e-6)


def test_huber_gradient_is_bounded_by_delta_for_outliers():
    """The point of Huber: a huge error pulls with force delta, not with the error itself."""
    values = jnp.array([1e4, -1e4, 0.3])
    grad = jax.grad(losses.huber_value_loss)(values, jnp.zeros(3), jnp.float32(2.0))
    # d/dV of mean: sign(e) * delta / n outside, e / n inside
    np.testing.assert_allclose(grad, [2.0 / 3, -2.0 / 3, 0.3 / 3], rtol=1e-6)


def test_huber_with_a_huge_delta_is_mse():
    """With delta beyond every error Huber is the plain 0.5 * MSE."""
    rng = np.random.default_rng(1)
    values, targets = rng.normal(size=(2, 64)).astype(np.float32)
    np.testing.assert_allclose(losses.huber_value_loss(values, targets, jnp.float32(1e6)),
                               losses.mse_value_loss(values, targets), rtol=1e-6)


# ------------------------------------------------------------- advantage normalization


def test_robust_normalize_divides_by_the_std_above_the_threshold():
    """A spread-out batch is fully standardized (numpy reference)."""
    x = (2.0 + 3.0 * np.random.default_rng(2).normal(size=128)).astype(np.float32)
    got = losses.robust_normalize(jnp.asarray(x), jnp.float32(1e-3))
    np.testing.assert_allclose(got, (x - x.mean()) / x.std(), rtol=1e-4, atol=1e-5)


def test_robust_normalize_only_centers_below_the_threshold():
    """Near-constant advantages stay tiny instead of being blown up to unit variance."""
    x = (5.0 + 1e-5 * np.random.default_rng(3).normal(size=128)).astype(np.float32)
    assert x.std() < 1e-3
    got = losses.robust_normalize(jnp.asarray(x), jnp.float32(1e-3))
    np.testing.assert_allclose(got, x - x.mean(), atol=1e-6)
    assert float(jnp.std(got)) < 1e-3
    # whereas plain standardization amplifies the noise to unit std
    np.testing.assert_allclose(jnp.std(losses.standardize(jnp.asarray(x))), 1.0, rtol=1e-2)


def test_standardize_matches_numpy():
    """Zero mean, unit std over the whole array (numpy reference)."""
    x = (-3.0 + 0.1 * np.random.default_rng(4).normal(size=64)).astype(np.float32)
    np.testing.assert_allclose(losses.standardize(jnp.asarray(x)),
                               (x - x.mean()) / (x.std() + 1e-8), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ HL-Gauss

EDGES = np.linspace(-5.0, 5.0, 21)  # 20 bins of width 0.5
CENTERS = 0.5 * (EDGES[1:] + EDGES[:-1])
SIGMA = 0.75 * 0.5  # 0.75 bin widths, the default


def scipy_histogram(targets, edges=EDGES, sigma=SIGMA):
    """Mass of N(t, sigma^2) in each bin, renormalized to the support."""
    cdf = scipy.stats.norm.cdf(edges[None, :], loc=np.asarray(targets)[:, None], scale=sigma)
    mass = np.diff(cdf, axis=-1)
    return mass / mass.sum(axis=-1, keepdims=True)


HL_TARGETS = np.array([-3.1, 0.0, 0.37, 2.25, 4.9, -4.99], np.float32)


def test_hl_gauss_targets_match_scipy_normal_cdf_differences():
    """Bin masses are scipy normal-CDF differences, renormalized to the support."""
    got = losses.hl_gauss_targets(jnp.asarray(HL_TARGETS), jnp.asarray(EDGES), SIGMA)
    np.testing.assert_allclose(got, scipy_histogram(HL_TARGETS), atol=2e-6)


def test_hl_gauss_target_rows_are_distributions_even_at_the_support_edge():
    """Every row sums to 1 with nonnegative mass, targets near the edges included."""
    got = np.asarray(losses.hl_gauss_targets(jnp.asarray(HL_TARGETS), jnp.asarray(EDGES), SIGMA))
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(got >= 0)


def test_hl_gauss_histogram_mean_recovers_targets_inside_the_support():
    """The expected bin center of the target histogram is the target itself."""
    inside = np.array([-3.1, -1.0, 0.0, 0.37, 1.11, 2.25], np.float32)
    probs = losses.hl_gauss_targets(jnp.asarray(inside), jnp.asarray(EDGES), SIGMA)
    np.testing.assert_allclose(np.asarray(probs) @ CENTERS, inside, atol=1e-3)


def test_hl_gauss_loss_is_the_numpy_cross_entropy():
    """Mean over the batch of -sum p log softmax(logits), p from scipy."""
    logits = np.random.default_rng(5).normal(size=(len(HL_TARGETS), 20)).astype(np.float32)
    expected = -np.mean(np.sum(scipy_histogram(HL_TARGETS)
                               * scipy.special.log_softmax(logits, axis=-1), axis=-1))
    got = losses.hl_gauss_loss(jnp.asarray(logits), jnp.asarray(HL_TARGETS),
                               jnp.asarray(EDGES), SIGMA)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_hl_gauss_loss_is_stationary_at_the_target_histogram():
    """Cross-entropy is minimised by logits = log(target probs): zero gradient there."""
    probs = scipy_histogram(HL_TARGETS)
    logits = jnp.asarray(np.log(np.maximum(probs, 1e-30)), jnp.float32)
    grad = jax.grad(losses.hl_gauss_loss)(logits, jnp.asarray(HL_TARGETS), jnp.asarray(EDGES),
                                          SIGMA)
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)


def test_hl_gauss_targets_beyond_the_support_go_to_the_nearest_edge_bin():
    """A target outside the support is clipped to it (as in the paper): still a
    distribution, peaked on the edge bin, whose mean sits within a bin of the edge."""
    beyond = jnp.array([12.0, 15.0, 100.0, -12.0, -1e4])
    edges = jnp.linspace(-10.0, 10.0, 52)
    probs = np.asarray(losses.hl_gauss_targets(beyond, edges, 0.75 * 20.0 / 51))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(probs[:3].argmax(axis=-1) == 50) and np.all(probs[3:].argmax(axis=-1) == 0)
    centers = 0.5 * (np.asarray(edges)[1:] + np.asarray(edges)[:-1])
    means = probs @ centers
    width = 20.0 / 51
    np.testing.assert_array_less(np.abs(means[:3] - 10.0), width)
    np.testing.assert_array_less(np.abs(means[3:] + 10.0), width)
    grad = jax.grad(losses.hl_gauss_loss)(jnp.zeros((5, 51)), beyond, edges, 0.75 * 20.0 / 51)
    assert np.all(np.abs(np.asarray(grad)).sum(axis=-1) > 0.1), "every target pulls the logits"


@pytest.mark.parametrize("bin_index", [0, 7, 19])
def test_hl_gauss_value_of_a_peaked_softmax_is_the_bin_center(bin_index):
    """Logits peaked on one bin predict that bin's center."""
    logits = jnp.zeros(20).at[bin_index].set(50.0)
    np.testing.assert_allclose(losses.hl_gauss_value(logits, jnp.asarray(EDGES)),
                               CENTERS[bin_index], atol=1e-5)


def test_hl_gauss_value_is_the_softmax_weighted_center_batchwise():
    """The prediction is softmax(logits) @ bin centers, row by row."""
    logits = np.random.default_rng(6).normal(size=(3, 20)).astype(np.float32)
    expected = scipy.special.softmax(logits, axis=-1) @ CENTERS
    np.testing.assert_allclose(losses.hl_gauss_value(jnp.asarray(logits), jnp.asarray(EDGES)),
                               expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ running statistics


def numpy_merge(count, mean, m2, batch):
    """Chan et al.'s parallel merge, in float64."""
    batch = np.asarray(batch, np.float64)
    n = batch.shape[0]
    batch_mean = batch.mean(axis=0)
    batch_m2 = ((batch - batch_mean) ** 2).sum(axis=0)
    total = count + n
    delta = batch_mean - mean
    return total, mean + delta * n / total, m2 + batch_m2 + delta**2 * count * n / total


def random_batches(seed=7, sizes=(5, 64, 1, 30)):
    rng = np.random.default_rng(seed)
    scale, shift = np.array([0.1, 3.0, 50.0]), np.array([-2.0, 5.0, 100.0])
    return [(shift + scale * rng.normal(size=(n, 3))).astype(np.float32) for n in sizes]


def test_running_stats_follow_the_numpy_merge_formula():
    """count/mean/M2 after several batches equal a float64 numpy Chan merge with the same prior."""
    stats = norm.init_stats((3,))
    count, mean, m2 = 1e-4, np.zeros(3), np.full(3, 1e-4)
    for batch in random_batches():
        stats = norm.update_stats(stats, jnp.asarray(batch))
        count, mean, m2 = numpy_merge(count, mean, m2, batch)
    np.testing.assert_allclose(stats.count, count, rtol=1e-6)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.m2, m2, rtol=1e-4)


def test_running_stats_equal_numpy_moments_of_the_concatenation():
    """Up to the tiny 1e-4 prior, the running mean/var are those of all data seen."""
    batches = random_batches()
    stats = norm.init_stats((3,))
    for batch in batches:
        stats = norm.update_stats(stats, jnp.asarray(batch))
    everything = np.concatenate(batches).astype(np.float64)
    np.testing.assert_allclose(stats.mean, everything.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.var, everything.var(axis=0), rtol=1e-3)
    np.testing.assert_allclose(stats.std, everything.std(axis=0), rtol=1e-3)


def test_running_stats_do_not_depend_on_how_the_data_is_split():
    """Merging batch by batch equals one update with their concatenation."""
    batches = random_batches()
    split = norm.init_stats((3,))
    for batch in batches:
        split = norm.update_stats(split, jnp.asarray(batch))
    whole = norm.update_stats(norm.init_stats((3,)), jnp.asarray(np.concatenate(batches)))
    for a, b in zip(jax.tree.leaves(split), jax.tree.leaves(whole), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_update_stats_flattens_leading_sample_axes():
    """A (T, N, obs_dim) rollout counts T*N samples."""
    rollout = random_batches(sizes=(24,))[0].reshape(4, 6, 3)
    stats = norm.update_stats(norm.init_stats((3,)), jnp.asarray(rollout))
    _, mean, _ = numpy_merge(1e-4, np.zeros(3), np.full(3, 1e-4), rollout.reshape(24, 3))
    np.testing.assert_allclose(stats.count, 24 + 1e-4, rtol=1e-6)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-5)


def test_normalize_obs_standardizes_then_clips():
    """(obs - mean) / sqrt(var + 1e-8), clipped to +-clip, per feature."""
    stats = norm.RunningStats(jnp.float32(10.0), jnp.array([1.0, -2.0]), jnp.array([40.0, 0.1]))
    # var = m2 / count = [4, 0.01]
    obs = np.array([[3.0, -2.05], [101.0, -5.0], [-99.0, 1.0]], np.float32)
    expected = np.clip((obs - [1.0, -2.0]) / np.sqrt(np.array([4.0, 0.01]) + 1e-8), -5.0, 5.0)
    got = norm.normalize_obs(jnp.asarray(obs), stats, jnp.float32(5.0))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got[1:], [[5.0, -5.0], [-5.0, 5.0]])  # the clipped entries


# ------------------------------------------------------------------ reward scaling


def numpy_discounted_returns(rewards, done, running, gamma):
    acc = np.array(running, np.float64)
    seen = np.zeros_like(rewards, np.float64)
    for t in range(rewards.shape[0]):
        acc = gamma * acc + rewards[t]
        seen[t] = acc
        acc = np.where(done[t], 0.0, acc)
    return seen, acc


def test_discounted_returns_hand_computed():
    """gamma 0.5, rewards 1, 1, 1 with an episode end at t=1: 1, 1.5, then restart at 1."""
    seen, final = norm.discounted_returns(jnp.ones((3, 1)), jnp.array([[False], [True], [False]]),
                                          jnp.zeros(1), jnp.float32(0.5))
    np.testing.assert_allclose(seen[:, 0], [1.0, 1.5, 1.0])
    np.testing.assert_allclose(final, [1.0])


def test_discounted_returns_match_a_numpy_loop_with_resets():
    """Random rewards and episode ends, carried-in accumulator: same as a numpy loop."""
    rng = np.random.default_rng(8)
    rewards = rng.normal(size=(40, 5)).astype(np.float32)
    done = rng.random((40, 5)) < 0.15
    running = rng.normal(size=5).astype(np.float32)  # carried over from the last rollout
    seen, final = norm.discounted_returns(jnp.asarray(rewards), jnp.asarray(done),
                                          jnp.asarray(running), jnp.float32(0.9))
    ref_seen, ref_final = numpy_discounted_returns(rewards, done, running, 0.9)
    np.testing.assert_allclose(seen, ref_seen, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final, ref_final, rtol=1e-5, atol=1e-5)


def test_scale_rewards_divides_by_the_return_std_without_centering_and_clips():
    """r / sqrt(var + 1e-8), clipped, with the return mean left alone."""
    stats = norm.RunningStats(jnp.float32(4.0), jnp.float32(30.0), jnp.float32(16.0))  # var 4
    rewards = np.array([1.0, -3.0, 0.0, 50.0, -50.0], np.float32)
    got = norm.scale_rewards(jnp.asarray(rewards), stats, jnp.float32(10.0))
    expected = np.clip(rewards / np.sqrt(4.0 + 1e-8), -10.0, 10.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[2] == 0.0, "a zero reward stays zero: the return mean is not subtracted"


# --------------------------------------------------------------------------- symlog


def test_symlog_matches_numpy_and_symexp_inverts_it():
    """symlog = sign(x) log(1 + |x|) and symexp(symlog(x)) = x from 1e-3 to 1e6."""
    x = np.array([-1e6, -1234.5, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 42.0, 1e6], np.float32)
    np.testing.assert_allclose(norm.symlog(jnp.asarray(x)),
                               np.sign(x) * np.log1p(np.abs(x.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(norm.symexp(norm.symlog(jnp.asarray(x))), x, rtol=1e-5,
                               atol=1e-7)


def test_symlog_is_odd_and_compresses_large_values():
    """Odd, strictly increasing, and 1e4 maps below 10."""
    x = jnp.linspace(-1e4, 1e4, 101)
    np.testing.assert_allclose(norm.symlog(-x), -norm.symlog(x))
    assert np.all(np.diff(np.asarray(norm.symlog(x))) > 0), "strictly increasing"
    assert float(norm.symlog(jnp.float32(1e4))) < 10.0


# --------------------------------------------------------------------------- PopArt


def test_popart_starts_as_the_identity():
    """Fresh PopArt stats are mu = 0, sigma = 1."""
    stats = norm.init_popart()
    assert float(stats.mean) == 0.0 and float(stats.sigma()) == 1.0


def test_popart_update_preserves_unnormalized_outputs_and_moves_moments_by_ema():
    """New moments are the numpy EMA and sigma' (h W' + b') + mu' = sigma (h W + b) + mu."""
    rng = np.random.default_rng(9)
    hidden = rng.normal(size=(32, 16)).astype(np.float32)
    head = {"kernel": rng.normal(size=(16, 1)).astype(np.float32),
            "bias": rng.normal(size=(1,)).astype(np.float32)}
    old = norm.PopArtStats(jnp.float32(3.0), jnp.float32(3.0**2 + 2.0**2))  # mu 3, sigma 2
    targets = (50.0 + 20.0 * rng.normal(size=256)).astype(np.float32)
    step = 0.3

    new, new_head = norm.popart_update(old, head, jnp.asarray(targets), jnp.float32(step))

    mean = (1 - step) * 3.0 + step * targets.astype(np.float64).mean()
    second = (1 - step) * 13.0 + step * (targets.astype(np.float64) ** 2).mean()
    np.testing.assert_allclose(new.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(new.second_moment, second, rtol=1e-5)
    np.testing.assert_allclose(new.sigma(), math.sqrt(second - mean**2), rtol=1e-4)

    before = 2.0 * (hidden @ head["kernel"] + head["bias"]) + 3.0
    after = new.sigma() * (hidden @ new_head["kernel"] + new_head["bias"]) + new.mean
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-3)
    assert not np.allclose(new_head["kernel"], head["kernel"]), "the head really was rescaled"


# ----------------------------------------------------------------------- optimizer

# 2 updates of (1 epoch x 2 minibatches), shared torso: three parameter groups.
OPT = dict(num_envs=2, num_steps=4, total_timesteps=16, update_epochs=1, num_minibatches=2,
           policy_hidden=(8,), value_hidden=(8,), torso_hidden=(8,), lr_schedule="constant",
           policy_lr=1e-2, value_lr=1e-3, torso_lr=3e-3, max_grad_norm=0.5)
OPT_LRS = {"policy": 1e-2, "value": 1e-3, "torso": 3e-3}


@functools.cache
def network_params(torso_hidden):
    """A real small actor-critic's parameters (jitted init: one compile, cached)."""
    config = PPOConfig(**{**OPT, "torso_hidden": torso_hidden})
    network = make_network(config, action_dim=2, discrete=True)
    return jax.jit(lambda key, hp: init_params(network, key, 3, hp))(jax.random.PRNGKey(0),
                                                                      config.hparams())


def opt_setup(**overrides):
    config = PPOConfig(**{**OPT, **overrides})
    return config, config.hparams(), network_params(config.torso_hidden)


def grads_like(params, seed, scales):
    """Random normal gradients, multiplied by `scales[group]` per parameter group."""
    labels = jax.tree.leaves(param_labels(params))
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [
        jnp.asarray(scales.get(label, 1.0) * rng.normal(size=np.shape(x)), jnp.float32)
        for x, label in zip(leaves, labels, strict=True)
    ])


def apply_steps(config, hparams, params, grads_seq):
    tx = make_optimizer(config, hparams, params)
    state = tx.init(params)
    for grads in grads_seq:
        updates, state = tx.update(grads, state, params)
    return updates


def group_leaves(tree, params, group):
    labels = jax.tree.leaves(param_labels(params))
    return [np.asarray(x) for x, lab in zip(jax.tree.leaves(tree), labels, strict=True)
            if lab == group]


def tree_norm(arrays):
    return math.sqrt(sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in arrays))


def test_per_head_clip_isolates_the_policy_step_from_a_huge_value_gradient():
    """per_head: the policy and torso updates ignore a 1e6x value gradient exactly."""
    config, hparams, params = opt_setup(grad_clip="per_head")
    normal = grads_like(params, 0, {})
    huge_value = grads_like(params, 0, {"value": 1e6})
    a = apply_steps(config, hparams, params, [normal])
    b = apply_steps(config, hparams, params, [huge_value])
    for group in ("policy", "torso"):
        for x, y in zip(group_leaves(a, params, group), group_leaves(b, params, group),
                        strict=True):
            np.testing.assert_array_equal(x, y)


def test_global_clip_lets_a_huge_value_gradient_shrink_the_policy_step():
    """The failure per-head clipping exists for: one global scale for all groups."""
    config, hparams, params = opt_setup(grad_clip="global")
    normal = apply_steps(config, hparams, params, [grads_like(params, 0, {})])
    huge = apply_steps(config, hparams, params, [grads_like(params, 0, {"value": 1e6})])
    ratio = (tree_norm(group_leaves(huge, params, "policy"))
             / tree_norm(group_leaves(normal, params, "policy")))
    assert ratio < 1e-2, ratio


def numpy_per_head_clip_then_adam(config, params, grads_seq):
    """Each group clipped to max_grad_norm by its own norm, then element-wise Adam."""
    labels = jax.tree.leaves(param_labels(params))
    m = [np.zeros(np.shape(p)) for p in jax.tree.leaves(params)]
    v = [np.zeros(np.shape(p)) for p in jax.tree.leaves(params)]
    for count, grads in enumerate(grads_seq, start=1):
        g = [np.asarray(x, np.float64) for x in jax.tree.leaves(grads)]
        for group in OPT_LRS:
            idx = [i for i, lab in enumerate(labels) if lab == group]
            group_norm = tree_norm([g[i] for i in idx])
            if group_norm > config.max_grad_norm:
                for i in idx:
                    g[i] = g[i] * config.max_grad_norm / group_norm
        step = []
        for i, label in enumerate(labels):
            m[i] = 0.9 * m[i] + 0.1 * g[i]
            v[i] = 0.999 * v[i] + 0.001 * g[i] ** 2
            m_hat, v_hat = m[i] / (1 - 0.9**count), v[i] / (1 - 0.999**count)
            step.append(-OPT_LRS[label] * m_hat / (np.sqrt(v_hat) + config.adam_eps))
    return step


def test_per_head_clip_matches_a_numpy_per_group_clip_then_adam():
    """Gradient scales that change 100x between steps, so clipping alters Adam's output."""
    config, hparams, params = opt_setup(grad_clip="per_head", max_grad_norm=0.05)
    grads_seq = [grads_like(params, s, {"value": v, "policy": p})
                 for s, (v, p) in enumerate([(1.0, 0.001), (100.0, 10.0), (0.01, 0.1)])]
    got = apply_steps(config, hparams, params, grads_seq)
    expected = numpy_per_head_clip_then_adam(config, params, grads_seq)
    for a, b in zip(jax.tree.leaves(got), expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-9)


@pytest.mark.parametrize("torso", [(8,), ()])
def test_group_norms_match_numpy_norms_of_the_subtrees(torso):
    """Per-group L2 norms equal numpy's, and an absent torso reports 0."""
    _, _, params = opt_setup(torso_hidden=torso)
    grads = grads_like(params, 3, {"policy": 0.1, "value": 10.0})
    norms = group_norms(grads)
    assert set(norms) == {"policy", "value", "torso"}
    for group in norms:
        np.testing.assert_allclose(norms[group], tree_norm(group_leaves(grads, params, group)),
                                   rtol=1e-5)
    if not torso:
        assert float(norms["torso"]) == 0.0


# --------------------------------------------------------------------------- sweep

BASE = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2,
                 num_minibatches=2)


def test_sweep_settings_are_the_cartesian_product_in_order():
    """settings follow itertools.product over the grid, first field slowest."""
    grid = dict(vf_coef=[0.05, 0.5], gamma=[0.9, 0.99, 0.999])
    swept = jppo.sweep(BASE, **grid)
    expected = [dict(vf_coef=a, gamma=b) for a, b in itertools.product(*grid.values())]
    assert swept.settings == expected
    assert len(swept) == 6


def test_sweep_hparams_are_stacked_per_point():
    """Every HParams leaf has shape (points,) and entry i is the hparams of setting i."""
    swept = jppo.sweep(BASE, vf_coef=[0.05, 0.5], gamma=[0.9, 0.99, 0.999])
    for field in HPARAM_FIELDS:
        assert np.shape(getattr(swept.hparams, field)) == (6,), field
    np.testing.assert_allclose(swept.hparams.vf_coef, [0.05] * 3 + [0.5] * 3)
    np.testing.assert_allclose(swept.hparams.gamma, [0.9, 0.99, 0.999] * 2, rtol=1e-7)
    # unswept fields keep the base value at every point
    np.testing.assert_allclose(swept.hparams.clip_eps, np.full(6, BASE.clip_eps))
    # each point is exactly what `replace(**setting).hparams()` gives
    for i, setting in enumerate(swept.settings):
        solo = BASE.replace(**setting).hparams()
        for field in HPARAM_FIELDS:
            assert getattr(swept.hparams, field)[i] == getattr(solo, field), (i, field)


def test_sweep_over_lr_moves_all_three_group_learning_rates():
    """`lr` is not an HParams field: it fans out to policy/value/torso lr."""
    swept = jppo.sweep(BASE, lr=[1e-3, 3e-4])
    for field in ("policy_lr", "value_lr", "torso_lr"):
        np.testing.assert_allclose(getattr(swept.hparams, field), [1e-3, 3e-4], rtol=1e-7)


@pytest.mark.parametrize(("field", "values"), [("num_envs", [4, 8]),
                                                ("value_loss", ["mse", "huber"]),
                                                ("value_target", ["raw", "popart"]),
                                                ("kl_early_stop", [True, False])])
def test_sweeping_a_static_field_is_rejected_by_name(field, values):
    """Shapes and variant choices change the program, so they cannot be swept."""
    with pytest.raises(ValueError, match=f"{field}.*static"):
        jppo.sweep(BASE, **{field: values})


def test_sweep_rejects_empty_lists_unknown_fields_and_bad_values():
    """Each failure names the field, before anything is compiled."""
    with pytest.raises(ValueError, match=r"vf_coef.*non-empty"):
        jppo.sweep(BASE, vf_coef=[])
    with pytest.raises(ValueError, match="vf_coeff"):
        jppo.sweep(BASE, vf_coeff=[0.5])
    with pytest.raises(ValueError, match="gamma"):
        jppo.sweep(BASE, gamma=[0.9, 1.5])


def test_sweep_accepts_numpy_scalars_for_every_field():
    """Grid values may be numpy scalars (as from np.linspace)."""
    swept = jppo.sweep(BASE, vf_coef=[np.float32(0.05), np.float64(0.5)])
    np.testing.assert_allclose(swept.hparams.vf_coef, [0.05, 0.5], rtol=1e-6)


def test_sweep_over_lr_accepts_numpy_float32_like_the_group_learning_rates():
    """`lr` accepts numpy float32 values as policy_lr does."""
    assert len(jppo.sweep(BASE, policy_lr=[np.float32(1e-3)])) == 1
    swept = jppo.sweep(BASE, lr=[np.float32(1e-3), np.float32(3e-4)])
    np.testing.assert_allclose(swept.hparams.value_lr, [1e-3, 3e-4], rtol=1e-6)


def test_tile_is_point_major_with_seeds_shared_across_points():
    """Run point*num_seeds + i uses PRNGKey(first_seed + i) and the hparams of point."""
    swept = jppo.sweep(BASE, vf_coef=[0.05, 0.5, 1.0])
    keys, hparams = swept.tile(num_seeds=4, first_seed=10)
    assert keys.shape == (12, 2)
    np.testing.assert_allclose(hparams.vf_coef, np.repeat([0.05, 0.5, 1.0], 4))
    for point in range(3):
        for seed in range(4):
            np.testing.assert_array_equal(keys[point * 4 + seed], jax.random.PRNGKey(10 + seed))
    assert np.shape(hparams.gamma) == (12,)


def test_split_reshapes_runs_into_points_by_seeds():
    """(points * seeds, updates) -> (points, seeds, updates), in tile's order."""
    swept = jppo.sweep(BASE, vf_coef=[0.05, 0.5, 1.0])
    flat = np.arange(12 * 5, dtype=np.float32).reshape(12, 5)  # (points * seeds, updates)
    out = swept.split({"value_loss": flat})
    assert out["value_loss"].shape == (3, 4, 5)
    for point, seed in itertools.product(range(3), range(4)):
        np.testing.assert_array_equal(out["value_loss"][point, seed], flat[point * 4 + seed])


def test_jppo_sweep_stays_the_function_after_its_module_is_imported():
    """`import jppo.runs.sweeps` (any tool may) must not replace `jppo.sweep`."""
    import importlib

    importlib.import_module("jppo.runs.sweeps")
    assert callable(jppo.sweep) and jppo.sweep is importlib.import_module("jppo.runs.sweeps").sweep
