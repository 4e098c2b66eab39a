"""The compiled train step checked against hand computations on one collected batch.

Each test names the wrong implementation it catches. The train step is only
reached through its public parts: `make_train` -> `Trainer.init`, `.update` and
`.phases` ("collect", "learn"), the metric names, and `Trainer.network`. With
`update_epochs=1` and `num_minibatches=1` an update takes one optimizer step on
the whole batch, so every loss metric is a function of the collected batch and
the parameters the step starts from, and numpy recomputes it exactly.

The environment is CartPole with a 5-step time limit: every episode ends by
truncation, so the bootstrap at time limits is exercised in every batch.

Three configurations cover the variants between them (one compile each):

- "popart": huber loss, PopArt targets, observation normalization, per-batch
  advantage normalization, per-head gradient clipping;
- "hl_gauss": HL-Gauss loss on symlog targets, robust advantage normalization
  (threshold high enough that it only centers);
- "batch_std": clipped loss with batch-standardized targets, no advantage
  normalization, a shared torso and decoupled critic lambda = 1.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import jppo
from jppo import envs
from jppo.core.networks import ActorCritic, make_network
from jppo.core.networks import init_params as eager_init_params

init_params = jax.jit(eager_init_params, static_argnums=(0, 2))

TIME_LIMIT = 5
BASE = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2, update_epochs=1,
            num_minibatches=1, policy_hidden=(16, 16), value_hidden=(16, 16))
CONFIGS = {
    "popart": dict(value_loss="huber", huber_delta=0.5, value_target="popart",
                   popart_step=0.3, obs_norm=True, advantage_norm="batch",
                   grad_clip="per_head"),
    "hl_gauss": dict(value_loss="hl_gauss", value_target="symlog", advantage_norm="robust",
                     adv_std_threshold=1e3, hl_gauss_bins=21, hl_gauss_range=(-1.0, 3.0)),
    "batch_std": dict(value_loss="clipped", value_target="batch_standardize",
                      advantage_norm="off", torso_hidden=(16,), policy_hidden=(16,),
                      value_hidden=(16,), critic_lambda=1.0),
}
# Parameter noise that moves some probability ratios past the clip but not all
# (with tiny raw CartPole observations the hl_gauss config needs more).
PERTURBATION = {"popart": 0.1, "hl_gauss": 0.3, "batch_std": 0.1}
LOSS_METRICS = ("policy_loss", "value_loss", "entropy", "total_loss", "clip_fraction",
                "value_clip_fraction", "approx_kl", "approx_kl_k1")


@functools.cache
def truncating_cartpole():
    return envs.make("CartPole-v1", max_steps_in_episode=TIME_LIMIT)


def as_numpy(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def perturbed(params, scale, seed=1):
    """Parameters near `params`, so the probability ratios and value changes are
    neither all 1 nor all clipped."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(treedef, [
        leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype)
        for leaf, k in zip(leaves, keys, strict=True)
    ])


@functools.cache
def jitted(trainer, phase: str):
    return jax.jit(trainer.phases[phase])


def collect_like_update(trainer, state, hparams):
    """The batch `trainer.update(state, hparams)` collects, and the key its
    optimization phase gets (the split of `state.key` that `update` performs)."""
    _, rollout_key, learn_key = jax.random.split(state.key, 3)
    collected = jitted(trainer, "collect")(state, hparams, rollout_key, hparams.critic_lambda)
    return collected, learn_key


@functools.cache
def prepared(name: str) -> dict[str, Any]:
    """Everything the tests of one configuration look at, computed once."""
    config = jppo.PPOConfig(**{**BASE, **CONFIGS[name]})
    trainer = jppo.make_train(config, *truncating_cartpole())
    hparams = config.hparams()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0), hparams)
    collected, learn_key = collect_like_update(trainer, state, hparams)
    learn = jitted(trainer, "learn")
    nearby = perturbed(collected.params, PERTURBATION[name])
    off_policy = collected._replace(params=nearby)
    _, _, learn_stats = learn(state, collected, hparams, learn_key)
    _, _, off_policy_stats = learn(state, off_policy, hparams, learn_key)
    return dict(config=config, trainer=trainer, hparams=hparams, state=state,
                collected=collected, learn_key=learn_key, learn_stats=as_numpy(learn_stats),
                off_policy=off_policy, off_policy_stats=as_numpy(off_policy_stats))


@functools.cache
def popart_updates(popart_step: float):
    """One update of the "popart" configuration at `popart_step`: (state, metrics,
    the batch it collected)."""
    p = prepared("popart")
    hparams = p["hparams"].replace(popart_step=jnp.float32(popart_step))
    state, metrics = jax.jit(p["trainer"].update)(p["state"], hparams)
    collected, _ = collect_like_update(p["trainer"], p["state"], hparams)
    return state, as_numpy(metrics), collected


# ------------------------------------------------------------------ references


def symlog(x, xp=np):
    return xp.sign(x) * xp.log1p(xp.abs(x))


def log_softmax(logits, xp=np):
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def numpy_gae(rewards, values, bootstrap, terminated, done, gamma, lam):
    """Textbook GAE over a (T, N) rollout. `bootstrap[t]` is the value of the state
    reached after step t (the final observation at an episode end)."""
    advantages = np.zeros_like(values)
    running = np.zeros(values.shape[1])
    for t in reversed(range(len(values))):
        delta = rewards[t] + gamma * (1.0 - terminated[t]) * bootstrap[t] - values[t]
        running = delta + gamma * lam * (1.0 - done[t]) * running
        advantages[t] = running
    return advantages


def popart_moments(popart_step, targets):
    """PopArt's EMA of the first and second target moments after one batch,
    starting from mean 0 and second moment 1."""
    mean = popart_step * np.mean(targets)
    second = (1.0 - popart_step) * 1.0 + popart_step * np.mean(targets**2)
    return mean, np.sqrt(second - mean**2)


def reference_losses(xp, erf, config, hparams, logits, value_out, batch, popart=None):
    """The PPO loss terms, written out from their definitions; `xp` is numpy (values)
    or jax.numpy (gradients). `batch` holds flat arrays: action, old_log_prob,
    old_value and target (return units), advantage (as collected)."""
    def hp(name):
        return float(getattr(hparams, name))

    # --- actor
    log_probs = log_softmax(logits, xp)
    log_prob = xp.take_along_axis(log_probs, batch["action"][:, None], axis=-1)[:, 0]
    entropy = xp.mean(-xp.sum(xp.exp(log_probs) * log_probs, axis=-1))
    adv = batch["advantage"]
    centered = adv - xp.mean(adv)
    if config.advantage_norm in ("batch", "minibatch"):  # one minibatch = the batch
        adv = centered / (xp.std(adv) + 1e-8)
    elif config.advantage_norm == "robust":
        std = xp.std(adv)
        adv = xp.where(std > hp("adv_std_threshold"), centered / std, centered)
    log_ratio = log_prob - batch["old_log_prob"]
    ratio = xp.exp(log_ratio)
    eps = hp("clip_eps")
    policy_loss = -xp.mean(xp.minimum(ratio * adv, xp.clip(ratio, 1 - eps, 1 + eps) * adv))
    # --- critic, in the space the head predicts
    if config.value_target == "symlog":
        encode = functools.partial(symlog, xp=xp)
    elif config.value_target == "popart":
        mean, sigma = popart

        def encode(x):
            return (x - mean) / sigma
    else:
        def encode(x):
            return x
    scale = float(np.std(batch["target"]) + 1e-8) \
        if config.value_target == "batch_standardize" else 1.0
    target = encode(batch["target"]) / scale
    if config.value_loss == "hl_gauss":
        lo, hi = config.hl_gauss_range
        edges = np.linspace(lo, hi, config.hl_gauss_bins + 1)
        sigma = hp("hl_gauss_sigma") * (hi - lo) / config.hl_gauss_bins
        clipped = xp.clip(target, lo, hi)
        cdf = erf((edges[None, :] - clipped[:, None]) / (np.sqrt(2.0) * sigma))
        mass = cdf[:, 1:] - cdf[:, :-1]
        probs = mass / xp.sum(mass, axis=-1, keepdims=True)
        value_loss = -xp.mean(xp.sum(probs * log_softmax(value_out, xp), axis=-1))
        value_clip_fraction = 0.0
    else:
        pred = value_out / scale
        old = encode(batch["old_value"]) / scale
        veps = hp("value_clip_eps")
        error = pred - target
        if config.value_loss == "clipped":
            moved = old + xp.clip(pred - old, -veps, veps)
            value_loss = 0.5 * xp.mean(xp.maximum(error**2, (moved - target) ** 2))
        elif config.value_loss == "huber":
            delta = hp("huber_delta")
            a = xp.abs(error)
            value_loss = xp.mean(xp.where(a <= delta, 0.5 * error**2, delta * (a - 0.5 * delta)))
        else:
            value_loss = 0.5 * xp.mean(error**2)
        value_clip_fraction = xp.mean(xp.abs(pred - old) > veps)
    total = policy_loss + hp("vf_coef") * value_loss - hp("ent_coef") * entropy
    return {
        "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
        "total_loss": total, "clip_fraction": xp.mean(xp.abs(ratio - 1.0) > eps),
        "value_clip_fraction": value_clip_fraction,
        "approx_kl": xp.mean(ratio - 1.0 - log_ratio), "approx_kl_k1": xp.mean(-log_ratio),
    }


def flat_batch(collected) -> dict[str, np.ndarray]:
    c, traj = collected, collected.rollout.traj
    flat = {"obs": traj.obs, "action": traj.action, "old_log_prob": traj.log_prob,
            "old_value": c.values, "advantage": c.advantages, "target": c.targets}
    flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in flat.items()}
    flat["action"] = flat["action"].astype(np.int32)
    return flat


def network_outputs(trainer, params, obs):
    logits = trainer.network.apply(params, obs, method=ActorCritic.policy)[0]
    return logits, trainer.network.apply(params, obs, method=ActorCritic.value)


def popart_for(name: str):
    """The PopArt moments the learner must be using, from the EMA definition."""
    if name != "popart":
        return None
    p = prepared(name)
    return popart_moments(float(p["hparams"].popart_step), np.asarray(p["collected"].targets,
                                                                     np.float64))


def numpy_losses(name: str, params) -> dict[str, float]:
    p = prepared(name)
    batch = flat_batch(p["collected"])
    logits, value_out = as_numpy(network_outputs(p["trainer"], params, batch["obs"]))
    batch = {k: v.astype(np.float64) if k != "action" else v for k, v in batch.items()}
    return reference_losses(np, scipy.special.erf, p["config"], p["hparams"], logits, value_out,
                            batch, popart_for(name))


def reference_gradient(name: str, params):
    """jax.grad of the written-out loss (not jppo's), at `params`."""
    p = prepared(name)
    batch = {k: jnp.asarray(v) for k, v in flat_batch(p["collected"]).items()}

    def total(prm):
        logits, value_out = network_outputs(p["trainer"], prm, batch["obs"])
        return reference_losses(jnp, jax.scipy.special.erf, p["config"], p["hparams"], logits,
                                value_out, batch, popart_for(name))["total_loss"]

    return jax.grad(total)(params)


def group_norm(grads, prefix: str) -> float:
    leaves = [np.asarray(leaf, np.float64) for name, sub in grads["params"].items()
              if name.startswith(prefix) for leaf in jax.tree.leaves(sub)]
    return float(np.sqrt(sum(np.sum(leaf**2) for leaf in leaves)))


# ----------------------------------------------------------------------- tests


def test_truncated_steps_bootstrap_from_the_final_observation():
    """Catches `terminated | truncated` passed as `terminated` inside train: the
    advantages and targets of a rollout whose episodes all end by time limit must
    bootstrap V(final observation), as a numpy GAE does."""
    p = prepared("batch_std")  # raw head: V is the critic's output
    c, hp, trainer = p["collected"], p["hparams"], p["trainer"]
    terminated = np.asarray(c.rollout.traj.terminated, np.float64)
    truncated = np.asarray(c.rollout.traj.truncated, np.float64)
    assert truncated.sum() >= 8 and terminated.sum() == 0  # the case under test
    value = functools.partial(trainer.network.apply, c.params, method=ActorCritic.value)
    values = np.asarray(value(c.rollout.traj.obs), np.float64)
    np.testing.assert_allclose(np.asarray(c.values), values, rtol=1e-5, atol=1e-6)
    # after step t: the next observation, or at a time limit the final one
    next_values = np.concatenate([values[1:], np.asarray(value(c.rollout.obs))[None]], axis=0)
    final_values = np.asarray(value(c.rollout.traj.final_obs), np.float64)
    bootstrap = np.where(truncated > 0, final_values, next_values)
    assert np.abs(final_values[truncated > 0]).min() > 1e-3  # dropping it would show
    rewards = np.asarray(c.rewards, np.float64)
    gamma = float(hp.gamma)
    advantages = numpy_gae(rewards, values, bootstrap, terminated, truncated, gamma,
                           float(hp.gae_lambda))
    critic = numpy_gae(rewards, values, bootstrap, terminated, truncated, gamma,
                       float(hp.critic_lambda))
    assert float(hp.critic_lambda) != float(hp.gae_lambda)
    np.testing.assert_allclose(np.asarray(c.advantages), advantages, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c.targets), critic + values, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("popart_step", [0.01, 0.3])
def test_popart_statistics_follow_the_popart_step_hyperparameter(popart_step):
    """Catches `popart_step` hard-coded instead of read from the hyperparameters:
    after one update, PopArt's sigma (the `normalizer_sigma` metric) is the EMA of
    the batch's target moments with that step, and the value head was rescaled so
    the critic's predictions in return units did not move."""
    _, metrics, c = popart_updates(popart_step)
    targets = np.asarray(c.targets, np.float64)
    mean, sigma = popart_moments(popart_step, targets)
    assert metrics["normalizer_sigma"] == pytest.approx(sigma, rel=1e-4)
    # output preservation: sigma' * head(params') + mu' == V before the rescale
    trainer = prepared("popart")["trainer"]
    head = np.asarray(trainer.network.apply(c.params, c.rollout.traj.obs, method=ActorCritic.value))
    np.testing.assert_allclose(sigma * head + mean, np.asarray(c.values), rtol=1e-4, atol=1e-4)


def test_popart_steps_give_different_statistics():
    """The two steps above must be distinguishable, or the test above proves nothing."""
    a, b = (popart_updates(step)[1]["normalizer_sigma"] for step in (0.01, 0.3))
    assert abs(a - b) > 0.05


def test_advantage_std_is_logged_before_batch_normalization():
    """Catches `advantage_std` (and `advantage_mean`) logged after normalization,
    which pins them at 1 and 0 and silently disables the noisy-advantages diagnosis."""
    _, metrics, c = popart_updates(0.3)
    advantages = np.asarray(c.advantages, np.float64)
    assert abs(np.std(advantages) - 1.0) > 0.05
    assert metrics["advantage_std"] == pytest.approx(np.std(advantages), rel=1e-4)
    assert metrics["advantage_mean"] == pytest.approx(np.mean(advantages), rel=1e-4, abs=1e-6)


def test_one_update_metrics_match_numpy_losses_on_its_batch():
    """One whole `update` (popart configuration): its rollout statistics and loss
    metrics equal numpy on the batch it collected, at the parameters it started
    from (where every probability ratio is 1)."""
    _, metrics, c = popart_updates(0.3)
    targets = np.asarray(c.targets, np.float64)
    # the collect call reproduces the update's rollout (same key split)
    assert metrics["target_mean"] == pytest.approx(np.mean(targets), rel=1e-5)
    assert metrics["value_mean"] == pytest.approx(np.mean(np.asarray(c.values)), rel=1e-5, abs=1e-6)
    expected = numpy_losses("popart", prepared("popart")["collected"].params)
    for name in LOSS_METRICS:
        assert metrics[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-6), name
    assert metrics["clip_fraction"] == 0.0 and metrics["approx_kl"] == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("where", ["on_policy", "off_policy"])
def test_learn_metrics_match_numpy_losses(name, where):
    """Wiring of every variant: value loss (huber, hl_gauss, clipped), value target
    (popart, symlog, batch_standardize), advantage normalization (batch, robust,
    off), observation normalization. The optimization phase's loss metrics equal
    the losses written out in numpy, at the collected parameters and at nearby
    ones (ratios != 1, so clipping and advantage scaling both matter)."""
    p = prepared(name)
    params = p["collected"].params if where == "on_policy" else p["off_policy"].params
    stats = p["learn_stats"] if where == "on_policy" else p["off_policy_stats"]
    expected = numpy_losses(name, params)
    for metric in LOSS_METRICS:
        assert stats[metric] == pytest.approx(expected[metric], rel=1e-4, abs=1e-6), metric
    if where == "off_policy":  # the case is informative: some ratios clipped, not all
        assert 0.05 < stats["clip_fraction"] < 0.95
        if name != "hl_gauss":
            assert 0.05 < stats["value_clip_fraction"] < 0.95


@pytest.mark.parametrize("name", list(CONFIGS))
def test_total_loss_is_policy_loss_plus_value_loss_minus_entropy_bonus(name):
    """Catches the entropy bonus added with the wrong sign (`+ ent_coef * entropy`):
    total_loss == policy_loss + vf_coef * value_loss - ent_coef * entropy."""
    p = prepared(name)
    hp = p["hparams"]
    sets = [p["learn_stats"], p["off_policy_stats"]]
    if name == "popart":
        sets.append(popart_updates(0.3)[1])
    for m in sets:
        assert m["ent_coef"] == pytest.approx(float(hp.ent_coef))
        assert m["entropy"] > 0.1  # the bonus term is large enough to see
        expected = (m["policy_loss"] + float(hp.vf_coef) * m["value_loss"]
                    - float(hp.ent_coef) * m["entropy"])
        assert m["total_loss"] == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_global_grad_norm_is_the_l2_norm_of_the_group_norms(name):
    """Catches the global gradient norm computed as the sum (or max) of the group
    norms: grad_norm**2 == grad_norm_policy**2 + grad_norm_value**2 + grad_norm_torso**2."""
    for m in (prepared(name)["learn_stats"], prepared(name)["off_policy_stats"]):
        groups = np.array([m["grad_norm_policy"], m["grad_norm_value"], m["grad_norm_torso"]])
        assert (groups[:2] > 1e-4).all()
        assert m["grad_norm"] == pytest.approx(np.sqrt(np.sum(groups**2)), rel=1e-5)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_grad_norms_match_an_independent_gradient(name):
    """The gradient norms the update logs are those of jax.grad of the written-out
    loss (catches a wrong global norm and any term of the loss wired with the
    wrong sign or input, e.g. the entropy bonus)."""
    p = prepared(name)
    grads = reference_gradient(name, p["off_policy"].params)
    stats = p["off_policy_stats"]
    for group in ("policy", "value", "torso"):
        assert stats[f"grad_norm_{group}"] == pytest.approx(group_norm(grads, group),
                                                            rel=1e-3, abs=1e-6), group
    total = np.sqrt(sum(group_norm(grads, g) ** 2 for g in ("policy", "value", "torso")))
    assert stats["grad_norm"] == pytest.approx(total, rel=1e-3)
    if name == "batch_std":
        assert group_norm(grads, "torso") > 1e-4  # the shared torso is exercised


@pytest.mark.parametrize("name", list(CONFIGS))
def test_grad_clip_ratio_is_taken_on_the_norm_the_clip_acts_on(name):
    """Global clipping looks at the global norm; per-head clipping (popart config)
    at the largest group norm."""
    p = prepared(name)
    m, mgn = p["off_policy_stats"], float(p["hparams"].max_grad_norm)
    if p["config"].grad_clip == "per_head":
        norm = max(m["grad_norm_policy"], m["grad_norm_value"], m["grad_norm_torso"])
        assert norm < m["grad_norm"] * (1 - 1e-3)  # the two choices differ here
    else:
        norm = m["grad_norm"]
    assert m["grad_clip_ratio"] == pytest.approx(norm / mgn, rel=1e-5)
    assert m["grad_clipped"] == float(norm > mgn)


def test_normalized_observations_are_what_acting_and_learning_both_see():
    """obs_norm (popart config): the stored observations are a per-feature affine
    image of the raw ones, clipped to +-obs_clip; the stored log-probabilities are
    the policy's on exactly those inputs; the final observations used for the
    bootstrap are normalized the same way (equal to the next observation wherever
    the episode went on)."""
    p = prepared("popart")
    c, trainer = p["collected"], p["trainer"]
    seen = np.asarray(c.rollout.traj.obs, np.float64).reshape(-1, c.rollout.traj.obs.shape[-1])
    raw = np.asarray(c.rollout.raw_obs, np.float64).reshape(seen.shape)
    clip = float(p["hparams"].obs_clip)
    assert np.abs(seen).max() <= clip + 1e-6
    assert not np.allclose(seen, raw, atol=1e-3)
    for j in range(seen.shape[1]):
        inside = np.abs(seen[:, j]) < clip - 1e-3
        assert inside.sum() >= 3
        slope, intercept = np.polyfit(raw[inside, j], seen[inside, j], 1)
        assert slope > 0
        np.testing.assert_allclose(seen[inside, j], slope * raw[inside, j] + intercept,
                                   rtol=1e-4, atol=1e-4)
    logits = np.asarray(network_outputs(trainer, c.params, c.rollout.traj.obs)[0], np.float64)
    log_prob = np.take_along_axis(log_softmax(logits), np.asarray(c.rollout.traj.action)[..., None],
                                  axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(c.rollout.traj.log_prob), log_prob, rtol=1e-5, atol=1e-5)
    done = np.asarray(c.rollout.traj.truncated | c.rollout.traj.terminated)
    final, nxt = np.asarray(c.rollout.traj.final_obs)[:-1], np.asarray(c.rollout.traj.obs)[1:]
    np.testing.assert_allclose(final[~done[:-1]], nxt[~done[:-1]], rtol=1e-6, atol=1e-6)


# -------------------------------------------------------------------- networks


def numpy_mlp(layers, x):
    for layer in layers:
        x = np.tanh(x @ layer["kernel"] + layer["bias"])
    return x


def dense(layer, x):
    return x @ layer["kernel"] + layer["bias"]


def mlp_layers(params, name):
    sub = params.get(name, {})
    return [sub[f"Dense_{i}"] for i in range(len(sub))]


def small_network(torso=()):
    """3 actions, 4-dim observations; the tests below share its compiled init."""
    config = jppo.PPOConfig(torso_hidden=torso, policy_hidden=(5, 7), value_hidden=(3,))
    return config, make_network(config, 3, True)


@pytest.mark.parametrize("torso", [(), (6,)])
def test_actor_critic_equals_a_numpy_tanh_mlp(torso):
    """Policy logits and value of `ActorCritic` equal a numpy forward pass through
    its parameters: [torso ->] tanh MLP -> linear head, for both heads."""
    config, network = small_network(torso)
    hparams = config.hparams().replace(policy_output_gain=jnp.float32(0.7),
                                       value_output_gain=jnp.float32(1.3))
    params = init_params(network, jax.random.PRNGKey(3), 4, hparams)
    obs = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    (logits,), value = network.apply(params, obs)
    w = as_numpy(params["params"])
    x = numpy_mlp(mlp_layers(w, "torso"), obs.astype(np.float64))
    np.testing.assert_allclose(
        logits, dense(w["policy_head"], numpy_mlp(mlp_layers(w, "policy_torso"), x)),
        rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        value, dense(w["value_head"], numpy_mlp(mlp_layers(w, "value_torso"), x))[:, 0],
        rtol=1e-5, atol=1e-6)
    assert len(mlp_layers(w, "policy_torso")) == 2 and len(mlp_layers(w, "torso")) == len(torso)


def test_output_gains_scale_the_initial_output_kernels_exactly():
    """policy_output_gain / value_output_gain multiply the output kernels of the
    same draw and touch nothing else."""
    config, network = small_network()
    key = jax.random.PRNGKey(5)
    unit = config.hparams().replace(policy_output_gain=jnp.float32(1.0),
                                    value_output_gain=jnp.float32(1.0))
    gained = unit.replace(policy_output_gain=jnp.float32(0.25),
                          value_output_gain=jnp.float32(3.0))
    a = as_numpy(init_params(network, key, 4, unit)["params"])
    b = as_numpy(init_params(network, key, 4, gained)["params"])
    np.testing.assert_allclose(b["policy_head"]["kernel"], 0.25 * a["policy_head"]["kernel"],
                               rtol=1e-6)
    np.testing.assert_allclose(b["value_head"]["kernel"], 3.0 * a["value_head"]["kernel"],
                               rtol=1e-6)
    for name in ("policy_torso", "value_torso"):
        for x, y in zip(jax.tree.leaves(a[name]), jax.tree.leaves(b[name]), strict=True):
            np.testing.assert_array_equal(x, y)
    for name in ("policy_head", "value_head"):
        np.testing.assert_array_equal(a[name]["bias"], b[name]["bias"])
    # gain 1 is the orthogonal init itself: orthonormal columns
    kernel = a["value_head"]["kernel"]
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(1), atol=1e-5)
