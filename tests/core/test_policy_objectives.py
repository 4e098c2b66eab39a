"""Policy objectives as a strategy family, the adaptive-KL learning rate and
return-percentile advantage scaling: each formula against numpy, each wired
into a compiled update (one collected batch, one optimizer step on the whole
batch, as tests/core/test_train_step_by_hand.py does), and a user's own objective used from
Python, a TOML experiment and `--set`. Two compiles of the learning phase.
"""

from __future__ import annotations

import functools
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.analysis import diagnose
from jppo.analysis.metrics import METRIC_DOCS, VARIANT_METRICS
from jppo.core import losses, optim, strategies
from jppo.core import normalize as norm
from jppo.core.networks import ActorCritic
from jppo.core.strategies.policy import adaptive_kl_coef
from jppo.runs import experiment, results

RNG = np.random.default_rng(0)
LOG_PROB = RNG.normal(-0.7, 0.3, 256)
OLD_LOG_PROB = LOG_PROB + RNG.normal(0.0, 0.25, 256)  # ratios from ~0.5 to ~2
ADVANTAGE = RNG.normal(0.0, 1.5, 256)


# ------------------------------------------------------------ numpy references


def np_kl_penalty(log_prob, old, adv, beta):
    ratio = np.exp(log_prob - old)
    kl = np.mean(ratio - 1.0 - np.log(ratio))
    return -np.mean(ratio * adv) + beta * kl


def np_dpo(log_prob, old, adv, alpha, beta):
    """Lu et al. 2022, written per sample."""
    out = []
    for lp, o, a in zip(log_prob, old, adv, strict=True):
        r = np.exp(lp - o)
        if a >= 0:
            x = (r - 1.0) * a
            drift = max(0.0, x - alpha * np.tanh(x / alpha))
        else:
            x = np.log(r) * a
            drift = max(0.0, x - beta * np.tanh(x / beta))
        out.append(r * a - drift)
    return -np.mean(out)


def np_kl_coef(beta, kl, target):
    if kl < target / 1.5:
        return beta / 2
    if kl > 1.5 * target:
        return beta * 2
    return beta


def np_rsl_rl_lr(lr, kl, target):
    if kl > 2.0 * target:
        return max(1e-5, lr / 1.5)
    if 0.0 < kl < target / 2.0:
        return min(1e-2, lr * 1.5)
    return lr


def test_kl_penalty_and_dpo_match_numpy():
    args = [jnp.asarray(x, jnp.float32) for x in (LOG_PROB, OLD_LOG_PROB, ADVANTAGE)]
    assert float(losses.kl_penalty_surrogate(*args, 0.7)) == pytest.approx(
        np_kl_penalty(LOG_PROB, OLD_LOG_PROB, ADVANTAGE, 0.7), rel=1e-5)
    for alpha, beta in ((2.0, 0.6), (0.5, 0.2)):
        got = float(losses.dpo_surrogate(*args, alpha, beta))
        assert got == pytest.approx(np_dpo(LOG_PROB, OLD_LOG_PROB, ADVANTAGE, alpha, beta),
                                    rel=1e-5)
    # the drift is active on this batch: DPO differs from the plain ratio objective
    assert abs(float(losses.dpo_surrogate(*args, 2.0, 0.6))
               + np.mean(np.exp(LOG_PROB - OLD_LOG_PROB) * ADVANTAGE)) > 1e-3


@pytest.mark.parametrize("kl", [0.001, 0.0066, 0.0068, 0.01, 0.0149, 0.0151, 0.1])
def test_adaptive_kl_coefficient_and_learning_rate_rules_match_numpy(kl):
    target = 0.01
    assert float(adaptive_kl_coef(jnp.float32(0.8), jnp.float32(kl), target)) == \
        pytest.approx(np_kl_coef(0.8, kl, target))
    for lr in (3e-4, 1.2e-5, 8e-3):
        assert float(optim.adapted_lr(jnp.float32(lr), jnp.float32(kl), target)) == \
            pytest.approx(np_rsl_rl_lr(lr, kl, target), rel=1e-6)
    assert float(optim.adapted_lr(jnp.float32(3e-4), jnp.float32(0.0), target)) == \
        pytest.approx(3e-4)  # rsl_rl raises only on a positive KL


def test_return_spread_is_dreamerv3s_percentile_ema():
    spread = norm.init_return_spread()
    low = high = 0.0
    for batch in (RNG.normal(5, 30, 512), RNG.normal(-2, 80, 512), RNG.normal(0, 0.1, 512)):
        spread = norm.update_return_spread(spread, jnp.asarray(batch, jnp.float32))
        low = 0.99 * low + 0.01 * np.percentile(batch, 5)
        high = 0.99 * high + 0.01 * np.percentile(batch, 95)
        assert float(spread.low) == pytest.approx(low, rel=1e-4)
        assert float(spread.high) == pytest.approx(high, rel=1e-4)
        assert float(spread.scale()) == pytest.approx(max(1.0, high - low), rel=1e-4)
    assert float(norm.ReturnSpread(jnp.float32(0.2), jnp.float32(0.5)).scale()) == 1.0


def test_the_default_objective_is_the_clipped_surrogate():
    chosen = strategies.of(jppo.PPOConfig())
    assert chosen.policy_loss is strategies.POLICY_LOSSES.get("clipped")
    inputs = strategies.PolicyLossInputs(*(jnp.asarray(x) for x in (LOG_PROB, OLD_LOG_PROB,
                                                                      ADVANTAGE)),
                                         jnp.float32(0.2), jnp.float32(1.0), None, None)
    ratio = np.exp(LOG_PROB - OLD_LOG_PROB)
    expected = -np.mean(np.minimum(ratio * ADVANTAGE, np.clip(ratio, 0.8, 1.2) * ADVANTAGE))
    assert float(chosen.policy_loss.loss(inputs)) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------- inside a compiled update

BASE = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2, update_epochs=1,
            num_minibatches=1, policy_hidden=(16, 16), value_hidden=(16, 16),
            lr_schedule="constant")
CONFIGS = {
    "kl": dict(policy_loss="kl_penalty", kl_coef=0.7, kl_adaptive_lr=True, target_kl=0.002,
               advantage_norm="return_percentile", gamma=0.999),
    "dpo": dict(policy_loss="dpo", dpo_alpha=0.5, dpo_beta=0.3),
}


@functools.cache
def prepared(name: str):
    config = jppo.PPOConfig(**{**BASE, **CONFIGS[name]})
    trainer = jppo.make_train(config, *envs.make("CartPole-v1", max_steps_in_episode=5))
    hparams = config.hparams()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0), hparams)
    _, rollout_key, learn_key = jax.random.split(state.key, 3)
    collected = jax.jit(trainer.phases["collect"])(state, hparams, rollout_key,
                                                   hparams.critic_lambda)
    leaves, tree = jax.tree.flatten(collected.params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    nearby = jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape)
                                       for x, k in zip(leaves, keys, strict=True)])
    off_policy = collected._replace(params=nearby)
    learn = jax.jit(trainer.phases["learn"])
    return dict(config=config, trainer=trainer, hparams=hparams, state=state, learn=learn,
                collected=off_policy, learn_key=learn_key,
                learned=learn(state, off_policy, hparams, learn_key))


def log_probs(p, params):
    c = p["collected"]
    obs = np.asarray(c.rollout.traj.obs).reshape(-1, 4)
    logits = np.asarray(p["trainer"].network.apply(params, obs, method=ActorCritic.policy)[0],
                        np.float64)
    logits -= logits.max(-1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    action = np.asarray(c.rollout.traj.action).reshape(-1)
    return log_softmax[np.arange(len(action)), action], \
        np.asarray(c.rollout.traj.log_prob, np.float64).reshape(-1)


def test_kl_penalty_return_percentile_and_adaptive_lr_inside_the_update():
    """Catches the loss not reading the carried beta, advantages not divided by
    the EMA spread of the returns, the lr factor not applied or not following
    rsl_rl's rule, and beta adapted from anything but the KL the update ended at."""
    p = prepared("kl")
    c, hp = p["collected"], p["hparams"]
    targets = np.asarray(c.targets, np.float64)
    low, high = (0.01 * np.percentile(targets, q) for q in (5, 95))
    assert float(c.norm.return_spread.low) == pytest.approx(low, rel=1e-4, abs=1e-6)
    assert float(c.norm.return_spread.high) == pytest.approx(high, rel=1e-4)
    scale = max(1.0, high - low)
    params, opt_state, stats = p["learned"]
    log_prob, old = log_probs(p, c.params)
    advantage = np.asarray(c.advantages, np.float64).reshape(-1) / scale
    assert float(stats["policy_loss"]) == pytest.approx(
        np_kl_penalty(log_prob, old, advantage, 0.7), rel=1e-4)
    kl = np.mean(np.exp(log_prob - old) - 1 - (log_prob - old))
    assert kl > 2 * 0.002  # the lowering branch, then the raising one at a wide target
    policy_lr = float(hp.policy_lr)
    assert float(stats["lr_policy"]) == pytest.approx(policy_lr / 1.5, rel=1e-5)
    assert float(optim.kl_lr_factor(opt_state)) == pytest.approx(1 / 1.5, rel=1e-5)
    wide = hp.replace(target_kl=jnp.float32(10 * kl))
    _, raised, _ = p["learn"](p["state"], c, wide, p["learn_key"])
    assert float(optim.kl_lr_factor(raised)) == pytest.approx(1.5, rel=1e-5)
    final_log_prob, _ = log_probs(p, params)
    final_kl = np.mean(np.exp(final_log_prob - old) - 1 - (final_log_prob - old))
    assert float(stats["policy_kl_final"]) == pytest.approx(final_kl, rel=1e-3)
    state, metrics = jax.jit(p["trainer"].update)(p["state"], hp)
    assert float(state.policy_coef) == pytest.approx(
        np_kl_coef(0.7, float(metrics["policy_kl_final"]), 0.002))
    assert float(metrics["policy_coef"]) == pytest.approx(0.7)
    assert float(metrics["return_spread_scale"]) == pytest.approx(scale, rel=1e-4)
    objective_metrics = VARIANT_METRICS - {"pfo_loss"}  # pfo is off here
    assert objective_metrics <= set(metrics) <= set(METRIC_DOCS)  # each documented


def test_dpo_inside_the_update_reads_its_hyperparameters():
    p = prepared("dpo")
    c = p["collected"]
    log_prob, old = log_probs(p, c.params)
    adv = np.asarray(c.advantages, np.float64).reshape(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    stats = p["learned"][2]
    assert float(stats["policy_loss"]) == pytest.approx(np_dpo(log_prob, old, adv, 0.5, 0.3),
                                                        rel=1e-4)
    assert float(stats["policy_loss"]) != pytest.approx(np_dpo(log_prob, old, adv, 2.0, 0.6),
                                                        rel=1e-3)
    assert "policy_coef" not in stats  # DPO adapts no coefficient


# ------------------------------------------------------------------- diagnosis


def test_policy_stall_reads_the_clip_fraction_only_where_the_objective_clips():
    """A clip fraction of 0.05 (some samples clipped, too few for a clip range
    that holds the policy) blocks a stall verdict under the clipped surrogate;
    under kl_penalty nothing is clipped, so the tiny KL alone judges."""
    arrays = {name: np.full((4, 40), value) for name, value in
              (("approx_kl", 1e-8), ("clip_fraction", 0.05))}
    frame = results.metrics_table(arrays, variant="v", env="E", seeds=range(4), first_update=0,
                                  steps_per_update=100).to_pandas()

    def stall(policy_loss):
        info = {"variants": {"v": {"overrides": {"policy_loss": policy_loss}}}}
        (found,) = [f for f in diagnose.diagnose_frame(frame, info) if f.rule == "policy_stall"]
        return found

    assert not stall("clipped").fired
    penalized = stall("kl_penalty")
    assert penalized.fired and "clip_fraction" not in penalized.quote


# ------------------------------------------------------------ a user's objective

USER_MODULE = '''
import jax.numpy as jnp
import jppo


@jppo.register_policy_loss("{name}")
def plain_ratio(p):
    """-E[r A]: no trust region at all."""
    return -jnp.mean(jnp.exp(p.log_prob - p.old_log_prob) * p.advantage)
'''


@pytest.fixture
def user_objective(tmp_path):
    name, module = "plain_ratio_25", "user_objective_25"
    (tmp_path / f"{module}.py").write_text(USER_MODULE.format(name=name))
    yield name, module, tmp_path
    if name in strategies.POLICY_LOSSES:
        strategies.POLICY_LOSSES.unregister(name)
    sys.modules.pop(module, None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_a_user_policy_loss_from_python(user_objective):
    name, module, folder = user_objective
    with pytest.raises(ValueError, match=rf"^policy_loss='{name}' is invalid: allowed is one "
                                         r"of \['clipped', 'kl_penalty', 'dpo'"):
        jppo.PPOConfig(policy_loss=name)
    experiment.import_modules([module], folder)
    config = jppo.PPOConfig(**{**BASE, "policy_loss": name})
    assert strategies.of(config).policy_loss is strategies.POLICY_LOSSES.get(name)
    assert not strategies.of(config).policy_loss.clips_ratio
    # a NaN in the policy loss would name it as the strategy computing that term
    assert strategies.user_strategies(config, "policy_loss") == [f"policy_loss={name!r}"]
    with pytest.raises(strategies.StrategyError, match="policy_loss 'bad': loss"):
        jppo.register_policy_loss("bad", lambda a, b: a)


def _experiment_file(folder, module, name):
    path = folder / "exp.toml"
    path.write_text(textwrap.dedent(f'''
        imports = ["{module}"]
        envs = ["CartPole-v1"]
        [variants.standard]
        [variants.mine]
        policy_loss = "{name}"
    '''))
    return path


def test_a_user_policy_loss_from_a_toml_file(user_objective):
    name, module, folder = user_objective
    exp = experiment.load(_experiment_file(folder, module, name))  # imports, then validates
    assert exp.variant_config("mine").policy_loss == name
    assert exp.variant_config("standard").policy_loss == "clipped"


def test_a_user_policy_loss_from_set(user_objective):
    name, module, folder = user_objective
    path = _experiment_file(folder, module, name)
    assert experiment.load(path, [f"policy_loss={name}"]).variant_config(
        "standard").policy_loss == name
    with pytest.raises(ValueError, match=rf"policy_loss='typo' is invalid: allowed is one of "
                                         rf"\[.*'{name}'\]"):
        experiment.load(path, ["policy_loss=typo"])
