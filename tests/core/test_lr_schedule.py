"""The learning-rate schedule's shape knobs (`lr_end_factor`, `lr_decay_fraction`):
a decay from lr to lr * lr_end_factor over a share of the optimizer steps, then held,
checked against hand-computed values and against what Adam actually applies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.core.config import PPOConfig
from jppo.core.networks import init_params, make_network, param_labels
from jppo.core.optim import decay_steps_of, learning_rates_in_force, make_optimizer

# 10 updates of (1 epoch x 2 minibatches): 20 optimizer steps; a 0.25 decay lasts 5.
SHAPE = dict(num_envs=4, num_steps=8, total_timesteps=320, update_epochs=1, num_minibatches=2,
             policy_hidden=(8,), value_hidden=(8,), lr=5e-3, lr_end_factor=0.1,
             lr_decay_fraction=0.25)
# By hand: 5e-3 -> 5e-4 in 5 equal steps of 9e-4, then 5e-4 to the end.
HAND = [5e-3, 4.1e-3, 3.2e-3, 2.3e-3, 1.4e-3, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4,
        5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4]


def test_linear_decay_to_a_floor_over_a_fraction_then_holds():
    config = PPOConfig(**SHAPE)
    assert config.num_updates * config.steps_per_update == 20
    rates = [float(learning_rates_in_force(config, config.hparams(), jnp.int32(s))["policy"])
             for s in range(20)]
    np.testing.assert_allclose(rates, HAND, rtol=1e-5)


def test_adam_applies_the_decayed_rate_at_each_step():
    """A constant gradient makes every Adam step ~1, so |update| is the lr in force."""
    config = PPOConfig(**SHAPE, max_grad_norm=1e9)
    hparams = config.hparams()
    network = make_network(config, action_dim=2, discrete=True)
    params = init_params(network, jax.random.PRNGKey(0), 3, hparams)
    tx = make_optimizer(config, hparams, params)
    state = tx.init(params)
    ones = jax.tree.map(jnp.ones_like, params)
    applied = []
    for _ in range(8):
        updates, state = tx.update(ones, state, params)
        applied.append(float(jax.tree.leaves(updates)[0].ravel()[0]))
    assert set(jax.tree.leaves(param_labels(params))) == {"policy", "value"}
    np.testing.assert_allclose(applied, -np.array(HAND[:8]), rtol=1e-4)


def test_cosine_decays_to_the_floor_and_holds():
    config = PPOConfig(**SHAPE, lr_schedule="cosine")
    hp = config.hparams()
    at = [float(learning_rates_in_force(config, hp, jnp.int32(s))["value"]) for s in (0, 5, 19)]
    np.testing.assert_allclose(at, [5e-3, 5e-4, 5e-4], rtol=1e-5)
    half = float(learning_rates_in_force(config, hp, jnp.float32(2.5))["value"])
    np.testing.assert_allclose(half, 5e-4 + 0.5 * 4.5e-3, rtol=1e-5)


def test_defaults_keep_the_decay_to_zero_over_the_whole_run():
    config = PPOConfig(**{**SHAPE, "lr_end_factor": 0.0, "lr_decay_fraction": 1.0})
    hp = config.hparams()
    rates = [float(learning_rates_in_force(config, hp, jnp.int32(s))["policy"])
             for s in (0, 10, 20)]
    np.testing.assert_allclose(rates, [5e-3, 2.5e-3, 0.0], atol=1e-9)
    assert PPOConfig().lr_end_factor == 0.0 and PPOConfig().lr_decay_fraction == 1.0


def test_publishers_mountain_car_decay_length():
    """gymnax-blines' MountainCar schedule: transition_steps = 5% of 250k = 12,500
    optimizer steps; 0.1 of this run's 124,928 optimizer steps is 12,493."""
    config = PPOConfig(num_envs=16, num_steps=32, total_timesteps=250_000, update_epochs=64,
                       num_minibatches=4, lr=5e-3, lr_end_factor=0.1, lr_decay_fraction=0.1)
    total = config.num_updates * config.steps_per_update
    assert total == 488 * 256
    assert decay_steps_of(total, config.lr_decay_fraction) == 12_493


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("lr_decay_fraction", 0.0, r"a number in \(0, 1\]"),
    ("lr_decay_fraction", 1.5, r"a number in \(0, 1\]"),
    ("lr_end_factor", -0.1, r"a number in \[0, inf\)"),
])
def test_bad_values_are_one_line_errors(field, value, allowed):
    with pytest.raises(ValueError, match=rf"^{field}={value!r} is invalid: allowed is {allowed}$"):
        PPOConfig(**{field: value})
