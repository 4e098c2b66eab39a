"""A GRU run over a whole sequence with one matmul per step, forward and backward.

The learning re-run of a recurrent PPO update scans the cell over every env
sequence of every minibatch, forward and backward, and on a CPU those scans are
the whole update (CartPole, a GRU of 128 shared by both heads: about 97% of it).
Autodiff of a scanned flax `GRUCell` does per step six matmuls forward, and
backward six more for the cotangents plus six outer products that accumulate
the kernels' gradients in the loop's carry; at a minibatch of one env sequence
those tiny ops are all per-op overhead. Here, with the same parameters (flax's
`ir`/`iz`/`in`/`hr`/`hz`/`hn` layers) and the same function:

- the input projections of every step are one batched matmul before the scan;
- the scan does one matmul per step, the three recurrent kernels side by side;
- a custom VJP's reverse scan computes only each step's gate cotangents and the
  carry's (one matmul per step); the recurrent kernel's gradient is one matmul
  over all steps after it, and the input kernels' come from the batched
  projection's own gradient.

The outputs and gradients equal autodiff of the scanned flax cell up to float
rounding (`tests/core/test_gru_sequence.py`). The rollout still steps flax's
cell: it runs once per env step and takes no gradient.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

GATES = ("r", "z", "n")  # the order of the side-by-side kernels' column blocks


def gru_sequence(cell_params: Any, x: jax.Array, carry: jax.Array, reset: jax.Array,
                 unroll: int = 1) -> jax.Array:
    """Outputs (T, batch..., width) of flax's `GRUCell` with `cell_params` over the
    time-major inputs `x` (T, batch..., features) from `carry` (batch..., width),
    the carry restarting at zeros (the cell's initial state) before each step where
    `reset` (T, batch...) is True. `unroll`: steps per trip of both time scans."""
    p = cell_params
    w_in = jnp.concatenate([p["ir"]["kernel"], p["iz"]["kernel"], p["in"]["kernel"]], axis=-1)
    b_in = jnp.concatenate([p["ir"]["bias"], p["iz"]["bias"], p["in"]["bias"]], axis=-1)
    w_rec = jnp.concatenate([p["hr"]["kernel"], p["hz"]["kernel"], p["hn"]["kernel"]], axis=-1)
    projected = x @ w_in + b_in  # every step's input side of the three gates at once
    return recurrence(w_rec, p["hn"]["bias"], projected, carry, reset, unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def recurrence(w_rec: jax.Array, b_rec_n: jax.Array, projected: jax.Array, carry: jax.Array,
               reset: jax.Array, unroll: int = 1) -> jax.Array:
    """The GRU's sequential part given the input projections `projected`
    (T, batch..., 3 width): the outputs (T, batch..., width)."""
    return _forward(w_rec, b_rec_n, projected, carry, reset, unroll)[0]


def _forward(w_rec, b_rec_n, projected, carry, reset, unroll):
    width = carry.shape[-1]

    def step(h, inputs):
        proj, restart = inputs
        h = jnp.where(restart[..., None], jnp.zeros_like(h), h)
        rec = h @ w_rec
        r = jax.nn.sigmoid(proj[..., :width] + rec[..., :width])
        z = jax.nn.sigmoid(proj[..., width:2 * width] + rec[..., width:2 * width])
        rec_n = rec[..., 2 * width:] + b_rec_n
        n = jnp.tanh(proj[..., 2 * width:] + r * rec_n)
        new = (1.0 - z) * n + z * h
        return new, (new, r, z, n, rec_n)

    _, (outputs, r, z, n, rec_n) = jax.lax.scan(step, carry, (projected, reset), unroll=unroll)
    return outputs, (r, z, n, rec_n)


def _previous_states(outputs: jax.Array, carry: jax.Array, reset: jax.Array) -> jax.Array:
    """The state each step's cell read: the step before's output (the start
    carry at the first step), zeros where the step restarted."""
    before = jnp.concatenate([carry[None], outputs[:-1]], axis=0)
    return jnp.where(reset[..., None], jnp.zeros_like(before), before)


def _recurrence_fwd(w_rec, b_rec_n, projected, carry, reset, unroll):
    outputs, gates = _forward(w_rec, b_rec_n, projected, carry, reset, unroll)
    return outputs, (w_rec, carry, reset, outputs, gates)


def _recurrence_bwd(unroll, residuals, d_outputs):
    w_rec, carry, reset, outputs, (r, z, n, rec_n) = residuals
    previous = _previous_states(outputs, carry, reset)

    def step(d_carry, inputs):  # d_carry: the cotangent of the state this step left
        d_out, restart, h, r_t, z_t, n_t, rec_n_t = inputs
        d_new = d_carry + d_out
        d_pre_n = d_new * (1.0 - z_t) * (1.0 - n_t * n_t)
        d_pre_r = d_pre_n * rec_n_t * r_t * (1.0 - r_t)
        d_pre_z = d_new * (h - n_t) * z_t * (1.0 - z_t)
        d_proj = jnp.concatenate([d_pre_r, d_pre_z, d_pre_n], axis=-1)
        d_rec = jnp.concatenate([d_pre_r, d_pre_z, d_pre_n * r_t], axis=-1)
        d_h = d_new * z_t + d_rec @ w_rec.T
        return jnp.where(restart[..., None], jnp.zeros_like(d_h), d_h), (d_proj, d_rec)

    d_start, (d_projected, d_rec) = jax.lax.scan(
        step, jnp.zeros_like(carry), (d_outputs, reset, previous, r, z, n, rec_n), reverse=True,
        unroll=unroll)
    width = carry.shape[-1]
    flat_h, flat_d_rec = previous.reshape(-1, width), d_rec.reshape(-1, 3 * width)
    d_w_rec = flat_h.T @ flat_d_rec
    d_b_rec_n = jnp.sum(flat_d_rec[:, 2 * width:], axis=0)
    return d_w_rec, d_b_rec_n, d_projected, d_start, None


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)
