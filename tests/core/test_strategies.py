"""Each variant strategy against a numpy reference, called directly (no training
run is compiled), and the registries: names, errors, the facts callers ask."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jppo.core import normalize as norm
from jppo.core import strategies
from jppo.core.config import PPOConfig
from jppo.core.strategies import (
    ADVANTAGE_NORMS,
    ENT_SCHEDULES,
    GRAD_CLIPS,
    LR_SCHEDULES,
    VALUE_CLIP_MODES,
    VALUE_LOSSES,
    VALUE_TARGETS,
    Registry,
    ValueLossInputs,
)

RNG = np.random.default_rng(0)
N = 64


def hparams(**values):
    return PPOConfig(**values).hparams()


def norm_state(popart_mean=0.0, popart_second=1.0, target_std=1.0):
    """The NormState fields strategies read: popart moments and target statistics."""
    targets = types.SimpleNamespace(std=jnp.float32(target_std))
    popart = norm.PopArtStats(jnp.float32(popart_mean), jnp.float32(popart_second))
    return types.SimpleNamespace(popart=popart, targets=targets)


def inputs(config=None, output=None, **arrays):
    config = config or PPOConfig()
    pred = arrays.get("pred", RNG.normal(size=N) * 3)
    return ValueLossInputs(
        output=jnp.asarray(pred if output is None else output, jnp.float32),
        pred=jnp.asarray(pred, jnp.float32),
        old=jnp.asarray(arrays.get("old", pred + RNG.normal(size=N)), jnp.float32),
        target=jnp.asarray(arrays.get("target", RNG.normal(size=N) * 3), jnp.float32),
        clip_eps=jnp.float32(arrays.get("clip_eps", 0.2)),
        hparams=config.hparams(), config=config,
    )


# ------------------------------------------------------------------ value targets


def test_raw_and_symlog_encode_and_decode_against_numpy():
    x = (RNG.normal(size=N) * 100).astype(np.float32)
    raw, symlog = VALUE_TARGETS.get("raw"), VALUE_TARGETS.get("symlog")
    np.testing.assert_array_equal(raw.encode(jnp.asarray(x), None), x)
    reference = np.sign(x) * np.log1p(np.abs(x))
    np.testing.assert_allclose(symlog.encode(jnp.asarray(x, jnp.float32), None), reference,
                               rtol=1e-6)
    np.testing.assert_allclose(symlog.decode(jnp.asarray(reference, jnp.float32), None), x,
                               rtol=1e-4)


def test_popart_encodes_with_its_moments_and_tracking_preserves_outputs():
    popart = VALUE_TARGETS.get("popart")
    ns = norm_state(popart_mean=5.0, popart_second=29.0)  # sigma = sqrt(29 - 25) = 2
    x = RNG.normal(size=N) * 10
    np.testing.assert_allclose(popart.encode(jnp.asarray(x, jnp.float32), ns), (x - 5.0) / 2.0,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(popart.decode(jnp.asarray(x, jnp.float32), ns), x * 2.0 + 5.0,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(popart.sigma(ns), 2.0)
    kernel, bias = RNG.normal(size=(3, 1)), RNG.normal(size=1)
    params = {"params": {"value_head": {"kernel": jnp.asarray(kernel, jnp.float32),
                                        "bias": jnp.asarray(bias, jnp.float32)}}}
    ns = types.SimpleNamespace(popart=ns.popart, replace=lambda **kw: types.SimpleNamespace(
        popart=kw["popart"]))
    targets = jnp.asarray(RNG.normal(size=N) * 50 + 100, jnp.float32)
    new_params, new_ns = popart.track(params, ns, targets, hparams(popart_step=0.5))
    mean = 0.5 * 5.0 + 0.5 * float(np.mean(targets))
    np.testing.assert_allclose(new_ns.popart.mean, mean, rtol=1e-5)
    features = RNG.normal(size=(8, 3))
    head = new_params["params"]["value_head"]
    before = (features @ kernel + bias) * 2.0 + 5.0
    after = (features @ np.asarray(head["kernel"]) + np.asarray(head["bias"])) \
        * float(new_ns.popart.sigma()) + mean
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


def test_batch_standardize_divides_the_loss_by_the_target_std_only():
    target = VALUE_TARGETS.get("batch_standardize")
    x = (RNG.normal(size=N) * 7 + 3).astype(np.float32)
    np.testing.assert_allclose(target.loss_scale(jnp.asarray(x, jnp.float32)),
                               np.std(x) + 1e-8, rtol=1e-5)
    np.testing.assert_array_equal(target.encode(jnp.asarray(x), None), x)
    for name in ("raw", "symlog", "popart"):
        assert float(VALUE_TARGETS.get(name).loss_scale(jnp.asarray(x))) == 1.0


def test_value_target_facts():
    facts = {name: (VALUE_TARGETS.get(name).return_units, VALUE_TARGETS.get(name).fixed_scale)
             for name in VALUE_TARGETS}
    assert facts == {"raw": (True, True), "symlog": (False, True), "popart": (False, False),
                     "batch_scaled": (False, False)}


# ------------------------------------------------------------------- value losses


def np_value_losses(v, delta):
    pred, old, target, eps = (np.asarray(a, np.float64) for a in (v.pred, v.old, v.target,
                                                                  v.clip_eps))
    clipped = old + np.clip(pred - old, -eps, eps)
    error = np.abs(pred - target)
    quad = np.minimum(error, delta)
    return {
        "clipped": 0.5 * np.mean(np.maximum((pred - target) ** 2, (clipped - target) ** 2)),
        "mse": 0.5 * np.mean((pred - target) ** 2),
        "huber": np.mean(0.5 * quad**2 + delta * (error - quad)),
    }, np.mean(np.abs(pred - old) > eps)


@pytest.mark.parametrize("name", ["clipped", "mse", "huber"])
def test_scalar_value_losses_against_numpy(name):
    config = PPOConfig(huber_delta=0.7)
    v = inputs(config, clip_eps=0.3)
    expected, fraction = np_value_losses(v, 0.7)
    loss = VALUE_LOSSES.get(name)
    np.testing.assert_allclose(loss.loss(v), expected[name], rtol=1e-5)
    np.testing.assert_allclose(loss.clip_fraction(v), fraction)
    assert loss.head.outputs(config) == 1
    np.testing.assert_array_equal(loss.head.value(v.output, config), v.output)


def test_hl_gauss_loss_and_head_against_numpy():
    config = PPOConfig(value_loss="hl_gauss", hl_gauss_bins=11, hl_gauss_range=(-5.0, 6.0),
                       hl_gauss_sigma=0.5)
    logits = RNG.normal(size=(N, 11))
    target = RNG.uniform(-7, 8, size=N)  # some beyond the support: clipped to its edge
    v = inputs(config, output=logits, target=target)
    edges = np.linspace(-5.0, 6.0, 12)
    sigma = 0.5 * 1.0
    erf = np.vectorize(math.erf)
    cdf = erf((edges[None, :] - np.clip(target, -5, 6)[:, None]) / (math.sqrt(2) * sigma))
    probs = np.diff(cdf, axis=1)
    probs /= probs.sum(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = VALUE_LOSSES.get("hl_gauss")
    np.testing.assert_allclose(loss.loss(v), -np.mean(np.sum(probs * log_softmax, axis=1)),
                               rtol=1e-4)
    assert float(loss.clip_fraction(v)) == 0.0
    assert loss.head.outputs(config) == 11 and loss.head.fixed_support
    centers = 0.5 * (edges[1:] + edges[:-1])
    softmax = np.exp(log_softmax)
    np.testing.assert_allclose(loss.head.value(jnp.asarray(logits, jnp.float32), config),
                               softmax @ centers, rtol=1e-4, atol=1e-5)


def test_value_loss_facts():
    facts = {name: (VALUE_LOSSES.get(name).squared_error, VALUE_LOSSES.get(name).uses_value_clip)
             for name in VALUE_LOSSES}
    assert facts == {"clipped": (True, True), "mse": (True, False), "huber": (False, False),
                     "hl_gauss": (False, False), "quantile": (False, False)}


def test_value_clip_modes_against_numpy():
    ns = norm_state(target_std=4.0)
    absolute, relative = VALUE_CLIP_MODES.get("absolute"), VALUE_CLIP_MODES.get("relative")
    assert float(absolute.clip_eps(jnp.float32(0.2), ns, jnp.float32(2.0))) == pytest.approx(0.2)
    assert float(relative.clip_eps(jnp.float32(0.2), ns, jnp.float32(2.0))) == pytest.approx(0.4)
    assert absolute.return_units and not relative.return_units


# ----------------------------------------------------------- advantage normalization


def test_advantage_norms_against_numpy():
    adv = RNG.normal(size=N) * 3 + 1
    tiny = RNG.normal(size=N) * 1e-5
    hp = hparams(adv_std_threshold=1e-3)
    standard = (adv - adv.mean()) / (adv.std() + 1e-8)

    def both(name, x):
        strategy = ADVANTAGE_NORMS.get(name)
        batch = strategy.batch(jnp.asarray(x, jnp.float32), hp)
        return np.asarray(strategy.minibatch(batch, hp))

    np.testing.assert_allclose(both("minibatch", adv), standard, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both("batch", adv), standard, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both("off", adv), adv, rtol=1e-6)
    np.testing.assert_allclose(both("robust", adv), standard, rtol=1e-4, atol=1e-5)
    # below the threshold robust only centers; the others blow noise up to unit std
    np.testing.assert_allclose(both("robust", tiny), tiny - tiny.mean(), rtol=1e-3, atol=1e-9)
    assert np.std(both("minibatch", tiny)) == pytest.approx(1.0, rel=1e-3)
    # "batch" acts once per update, "minibatch" per minibatch
    np.testing.assert_allclose(ADVANTAGE_NORMS.get("batch").minibatch(jnp.asarray(adv), hp), adv)
    np.testing.assert_allclose(ADVANTAGE_NORMS.get("minibatch").batch(jnp.asarray(adv), hp), adv)
    divides = {name: ADVANTAGE_NORMS.get(name).divides_by_std for name in ADVANTAGE_NORMS}
    assert divides == {"minibatch": True, "batch": True, "off": False, "robust": False,
                       "return_percentile": False}


# ---------------------------------------------------------------------- schedules


def np_schedule(kind, start, end, count, steps):
    frac = min(count / steps, 1.0)
    if kind == "linear":
        return start + (end - start) * frac
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * frac))
    return start


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
@pytest.mark.parametrize(("start", "end"), [(0.05, 0.0), (0.0, 0.02), (0.01, 0.01)])
def test_entropy_schedules_against_numpy(kind, start, end):
    fn = ENT_SCHEDULES.get(kind).make(jnp.float32(start), jnp.float32(end), 9)
    for count in (0, 1, 4, 8, 9, 12):
        np.testing.assert_allclose(fn(jnp.int32(count)), np_schedule(kind, start, end, count, 9),
                                   rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
def test_lr_schedules_decay_to_zero_and_are_optax_schedules(kind):
    fn = LR_SCHEDULES.get(kind).make(jnp.float32(3e-4), 0.0, 100)
    values = [float(fn(jnp.int32(c))) for c in (0, 50, 100)]
    assert values == pytest.approx([np_schedule(kind, 3e-4, 0.0, c, 100) for c in (0, 50, 100)],
                                   rel=1e-5, abs=1e-12)
    # usable by optax as a learning rate under jit with a traced base rate
    step = jax.jit(lambda lr: optax.scale_by_learning_rate(
        LR_SCHEDULES.get(kind).make(lr, 0.0, 100)).init(jnp.zeros(2)))
    step(jnp.float32(1e-3))


# ------------------------------------------------------------------ gradient clips


def test_gradient_clips_against_numpy():
    grads = {"a": jnp.asarray([3.0, 4.0]), "b": jnp.asarray([0.0, 0.5])}  # norms 5, 0.5
    global_clip, per_head = GRAD_CLIPS.get("global"), GRAD_CLIPS.get("per_head")
    clipped, _ = global_clip.outer_clip(jnp.float32(1.0)).update(grads, optax.EmptyState())
    total = math.sqrt(5.0**2 + 0.5**2)
    np.testing.assert_allclose(clipped["a"], np.array([3.0, 4.0]) / total, rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], np.array([0.0, 0.5]) / total, rtol=1e-6)
    one = per_head.group_clip(jnp.float32(1.0))
    alone = {g: one.update({g: grads[g]}, one.init({g: grads[g]}))[0][g] for g in grads}
    np.testing.assert_allclose(alone["a"], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(alone["b"], [0.0, 0.5], rtol=1e-6)  # untouched
    assert per_head.outer_clip is None
    norms = {"policy": jnp.float32(0.5), "value": jnp.float32(5.0), "torso": jnp.float32(0.0)}
    assert float(global_clip.clip_norm(jnp.float32(5.1), norms)) == pytest.approx(5.1)
    assert float(per_head.clip_norm(jnp.float32(5.1), norms)) == pytest.approx(5.0)
    assert global_clip.couples_groups and not per_head.couples_groups


# ---------------------------------------------------------------------- registries


def test_every_variant_knob_reads_its_allowed_names_from_its_registry():
    for field, registry in strategies.REGISTRIES.items():
        with pytest.raises(ValueError, match=rf"^{field}='nope' is invalid: allowed is one of "
                                             rf"\[{', '.join(repr(n) for n in registry)}\]"):
            PPOConfig(**{field: "nope"})
    chosen = strategies.of(PPOConfig(value_loss="huber", advantage_norm="robust"))
    assert chosen.value_loss is VALUE_LOSSES.get("huber")
    assert chosen.advantage_norm is ADVANTAGE_NORMS.get("robust")


def test_a_registry_refuses_duplicates_and_bad_names_and_lists_members():
    registry = Registry("thing")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", 2)
    registry.register("a", 3, replace=True)
    with pytest.raises(ValueError, match="thing name"):
        registry.register(" b", 4)
    with pytest.raises(ValueError, match=r"^thing='c' is invalid: allowed is one of \['a'\]"):
        registry.get("c")
    registry.unregister("a")
    assert registry.names() == ()


def test_fixed_support_losses_reject_targets_whose_scale_moves():
    for target in ("popart", "batch_standardize"):
        with pytest.raises(ValueError, match="value_loss='hl_gauss' with value_target"):
            PPOConfig(value_loss="hl_gauss", value_target=target)
    PPOConfig(value_loss="hl_gauss", value_target="symlog")
