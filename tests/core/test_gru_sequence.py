"""The learning re-run's GRU over a whole sequence (`jppo.core.gru_sequence`)
equals autodiff of flax's `GRUCell` scanned step by step (outputs and every
gradient, with resets and vmapped seeds); the recurrent loss through it equals
the loss through the general per-step scan; and the torso's per-term gradient
norms, from one pullback with both terms' cotangents, equal the norms of the
two terms' gradients taken one at a time."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jppo
from jppo import envs
from jppo.core import train
from jppo.core.gru_sequence import gru_sequence
from jppo.core.optim import group_norms

STEPS, BATCH, FEATURES, WIDTH = 7, 3, 5, 4


def scanned_flax_gru(params, x, carry, reset):
    """Reference: flax's cell stepped by `lax.scan`, restarting at zeros where `reset`."""
    cell = nn.GRUCell(WIDTH)

    def step(h, inputs):
        x_t, restart = inputs
        h = jnp.where(restart[..., None], 0.0, h)
        h, out = cell.apply({"params": params}, h, x_t)
        return h, out

    return jax.lax.scan(step, carry, (x, reset))[1]


def problem(seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    params = nn.GRUCell(WIDTH).init(keys[0], jnp.zeros((BATCH, WIDTH)),
                                    jnp.zeros((BATCH, FEATURES)))["params"]
    x = jax.random.normal(keys[1], (STEPS, BATCH, FEATURES))
    carry = 0.5 * jax.random.normal(keys[2], (BATCH, WIDTH))
    reset = jax.random.bernoulli(keys[3], 0.3, (STEPS, BATCH)).at[0, 0].set(True)
    return params, x, carry, reset


def test_outputs_and_gradients_equal_the_scanned_flax_cell_under_vmap():
    seeds = [problem(s) for s in (0, 1)]
    params, x, carry, reset = jax.tree.map(lambda *a: jnp.stack(a), *seeds)
    assert bool(jnp.any(reset[:, 1:])) and not bool(jnp.all(reset))
    weights = jnp.linspace(-1.0, 2.0, WIDTH)
    results = {}
    for name, sequence in (("fused", gru_sequence), ("flax", scanned_flax_gru)):
        def loss(p, x, h, r, sequence=sequence):
            return jnp.sum(jnp.sin(3.0 * sequence(p, x, h, r)) * weights)

        def one(p, x, h, r, sequence=sequence, loss=loss):
            return sequence(p, x, h, r), jax.grad(loss, argnums=(0, 1, 2))(p, x, h, r)

        results[name] = jax.jit(jax.vmap(one))(params, x, carry, reset)
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
                 results["fused"], results["flax"])
    _, (p_grads, _, h_grads) = results["fused"]
    assert float(jnp.max(jnp.abs(h_grads))) > 0.0  # the start carry is read (not all reset)
    assert all(float(jnp.max(jnp.abs(g))) > 0.0 for g in jax.tree.leaves(p_grads))


SMALL = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16, update_epochs=1,
             num_minibatches=2, torso_hidden=(6,), torso_rnn=5, policy_hidden=(7,),
             value_hidden=(3,))


@functools.cache
def batch_and_context():
    config = jppo.PPOConfig(**SMALL)
    setup = train.make_setup(config, *envs.make("CartPole-NoVelocity-v1",
                                                max_steps_in_episode=6))
    hp = config.hparams()
    state = jax.jit(functools.partial(train.init, setup))(jax.random.PRNGKey(0), hp)
    c = jax.jit(functools.partial(train.collect, setup))(state, hp, jax.random.PRNGKey(1),
                                                          hp.critic_lambda)
    batch = train.batch_of(setup, c, c.advantages)
    assert bool(jnp.any(batch.reset[:, 1:]))  # episodes restart inside the sequences
    ctx = train.LossContext(c.norm, hp, hp.ent_coef, jnp.ones(()), state.policy_coef)
    return setup, state.params, batch, ctx


def test_the_loss_through_the_fused_gru_equals_the_per_step_scan(monkeypatch):
    setup, params, batch, ctx = batch_and_context()

    def loss_and_grads():  # traced anew each call, so the patch below is seen
        return jax.jit(jax.value_and_grad(
            lambda p: train.total_loss(setup, p, batch, ctx)[0]))(params)

    fused = loss_and_grads()
    monkeypatch.setattr(train, "fused_gru_cells", train.scanned_cells)
    scanned = loss_and_grads()
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-7),
                 fused, scanned)


def test_torso_term_norms_from_one_pullback_equal_separate_gradients():
    setup, params, batch, ctx = batch_and_context()
    got = jax.jit(functools.partial(train.term_norms_on_torso, setup))(params, batch, ctx)
    policy_grads = jax.jit(jax.grad(lambda p: train.policy_loss(
        setup, p, batch, ctx.hparams, ctx.ent_coef, None, ctx.policy_coef)[0]))(params)
    value_grads = jax.jit(jax.grad(lambda p: ctx.hparams.vf_coef * train.value_loss(
        setup, p, batch, ctx.norm, ctx.hparams, ctx.loss_scale)[0]))(params)
    np.testing.assert_allclose(got["grad_norm_policy_term_torso"],
                               group_norms(policy_grads)["torso"], rtol=1e-5)
    np.testing.assert_allclose(got["grad_norm_value_term_torso"],
                               group_norms(value_grads)["torso"], rtol=1e-5)
    assert not np.isclose(got["grad_norm_policy_term_torso"], got["grad_norm_value_term_torso"])
