"""Flax actor-critic: policy and value networks, optionally on a shared torso.

Separate networks are the default (they beat shared ones on classic control).
The value head's depth, width, LayerNorm, activation and output init gain are
configurable because a badly scaled critic is the most common PPO failure.

The observation first passes an *encoder* chosen by `torso_kind`: "mlp"
flattens it, "cnn" is MinAtar's convolution (3x3, 16 channels, stride 1, no
padding; Young & Tian 2019) then flattens; "auto" picks "cnn" for rank-3
(H, W, C) observations. The dense layers after it are the usual
`torso_hidden` / `policy_hidden` / `value_hidden` (MinAtar's own network is
`policy_hidden=value_hidden=(128,)`, `activation="relu"`). The encoder belongs
to whichever network reads the observation: with separate networks
(`torso_hidden=()`) policy and critic each have their own conv layer, so the
critic stays a separate deep network whose value-loss gradients, often far
larger than the policy's, never reshape the policy's features (the conv layer
costs little: 10x10x4 -> 8x8x16 on MinAtar); with a shared torso one encoder
feeds it and both heads.

Memory: `policy_rnn` / `value_rnn` > 0 puts a recurrent cell (`rnn_cell`:
flax's GRU or LSTM) of that width between a network's features (its encoder, or
the shared torso) and its own dense layers; each network has its own cell, so
the policy and the critic are recurrent or feed-forward independently.
`torso_rnn` > 0 instead puts one cell after the shared torso, feeding both
heads (PureJaxRL's and Craftax's recurrent PPO): each head's step reads and
returns that cell's carry, so the policy's and the critic's carries are the
same state. Every network steps through one signature, recurrent or not:

    dist_params, carry = network.apply(params, obs, carry, reset, method=ActorCritic.policy_step)
    value, carry = network.apply(params, obs, carry, reset, method=ActorCritic.value_step)

with `carry = network.initial_carry(batch_shape)[head]` at the start, and
`reset` (batch,) True where `obs` begins an episode (the carry restarts from the
initial state before the cell reads `obs`). A feed-forward network's carry is
None and passes through unchanged (a checkpoint holds no empty arrays).

Output gains are applied after init by scaling the orthogonal(1.0) kernel, so
they can be traced hyperparameters (orthogonal(g) == g * orthogonal(1)).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jppo.core import strategies
from jppo.core.config import NETWORK_BLOCKS, RNN_CELLS, TORSO_KINDS, HParams, PPOConfig
from jppo.core.knobs import invalid

_ACTIVATIONS = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
}

HIDDEN_GAIN = math.sqrt(2.0)


def householder_q(a: jax.Array) -> jax.Array:
    """Q of the QR decomposition of a tall `(n, m)` matrix, with sign(diag R) > 0.

    Plain jnp ops (reflections in two `fori_loop`s) instead of LAPACK: XLA's CPU
    QR kernel, once batched by `vmap` over seeds, splits work onto the same
    intra-op thread pool it runs on and deadlocks a 2-core machine. The
    positive-diagonal QR is unique, so this equals `jnp.linalg.qr` up to
    rounding.
    """
    n, m = a.shape
    rows = jnp.arange(n)

    def reflect(j, carry):
        r, vectors = carry
        x = jnp.where(rows >= j, r[:, j], 0.0)
        x_j = x[j]
        alpha = -jnp.where(x_j >= 0, 1.0, -1.0) * jnp.linalg.norm(x)
        v = x.at[j].add(-alpha)
        v = v / jnp.maximum(jnp.linalg.norm(v), 1e-30)
        r = r - 2.0 * jnp.outer(v, v @ r)
        return r, vectors.at[j].set(v)

    r, vectors = jax.lax.fori_loop(0, m, reflect, (a, jnp.zeros((m, n), a.dtype)))

    def apply(k, q):
        v = vectors[m - 1 - k]
        return q - 2.0 * jnp.outer(v, v @ q)

    q = jax.lax.fori_loop(0, m, apply, jnp.eye(n, m, dtype=a.dtype))
    signs = jnp.where(jnp.diagonal(r) >= 0, 1.0, -1.0).astype(a.dtype)
    return q * signs[None, :]


def orthogonal(scale: float = 1.0) -> nn.initializers.Initializer:
    """The orthogonal initializer every jppo layer uses; see `householder_orthogonal`."""
    return householder_orthogonal(scale)


def householder_orthogonal(scale: float = 1.0) -> nn.initializers.Initializer:
    """Drop-in for `nn.initializers.orthogonal(scale)` (same draws, same matrices)
    that is safe to vmap on CPU; see `householder_q`."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        n_rows, n_cols = math.prod(shape) // shape[-1], shape[-1]
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        q = householder_q(jax.random.normal(key, tall, dtype))
        if n_rows < n_cols:
            q = q.T
        return scale * q.reshape(shape)

    return init


class MLP(nn.Module):
    """Dense -> [LayerNorm] -> activation, per hidden size; orthogonal(sqrt 2) init."""

    hidden: Sequence[int]
    activation: str
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = nn.Dense(
                width,
                kernel_init=orthogonal(HIDDEN_GAIN),
                bias_init=nn.initializers.zeros,
            )(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            self.sow("intermediates", PREACTIVATION, x)  # a no-op unless asked for (PFO)
            x = act(x)
        return x


class SimBa(nn.Module):
    """SimBa's residual network (Lee et al. 2025) over `hidden`'s one width w:
    a linear embed x_0 = W_e x, one pre-LayerNorm residual block per entry,

        x_{k+1} = x_k + W_2 act(W_1 LN(x_k)),   W_1: w -> 4w,  W_2: 4w -> w,

    and a final LayerNorm. `act` is the network's activation (SimBa's is relu).
    Init: orthogonal(sqrt 2) before an activation, orthogonal(1) elsewhere (the
    embed and the block outputs), zero biases, as every jppo layer. SimBa's
    running observation statistics are jppo's `obs_norm`. The pre-activations
    W_1 LN(x_k) are sown for PFO."""

    hidden: Sequence[int]
    activation: str
    layer_norm: bool = False  # unused: the blocks normalize (the config rejects it)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act, width = _ACTIVATIONS[self.activation], self.hidden[0]
        x = _dense(width, 1.0)(x)
        for _ in self.hidden:
            y = _dense(SIMBA_EXPANSION * width, HIDDEN_GAIN)(nn.LayerNorm()(x))
            self.sow("intermediates", PREACTIVATION, y)
            x = x + _dense(width, 1.0)(act(y))
        return nn.LayerNorm()(x)


def _dense(width: int, gain: float) -> nn.Dense:
    return nn.Dense(width, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros)


PREACTIVATION = "preactivation"  # the sown name of each hidden layer's pre-activation
SIMBA_EXPANSION = 4  # a SimBa block's inner width, as a multiple of its width
BLOCKS: dict[str, type[nn.Module]] = {"mlp": MLP, "simba": SimBa}
if set(NETWORK_BLOCKS) != set(BLOCKS):  # the knobs' choices are declared in config.py
    raise TypeError(f"block choices {NETWORK_BLOCKS} disagree with the modules {BLOCKS}")


class Flatten(nn.Module):
    """The "mlp" encoder: no parameters; the trailing `obs_rank` axes become one."""

    activation: str = "tanh"  # unused; every encoder takes the same fields
    obs_rank: int = 1

    def __call__(self, x: jax.Array) -> jax.Array:
        return x.reshape((*x.shape[: x.ndim - self.obs_rank], -1))


class PatchConv(nn.Module):
    """A stride-1 VALID 2-D convolution written as im2col + matmul.

    Numerically `nn.Conv(features, (k, k), padding="VALID")` with the same
    parameters (`kernel` (k, k, C_in, features), `bias` (features,)) and init.
    jppo vmaps training over seeds, so every seed has its own kernel; `vmap` of
    `lax.conv` with a batched *kernel* lowers to a grouped convolution
    (feature_group_count = seeds; a batch-group conv in the backward pass),
    which XLA runs many times slower than a dense convolution on CPU and GPU.
    Here the only weight-bearing op is a matmul, which vmap batches cheaply:
    the k*k shifted views of the input (no weights, so a plain batch op under
    vmap) are concatenated along channels in (kh, kw, C_in) order, the order
    of `kernel.reshape(k * k * C_in, features)`. Leading batch axes are kept.
    """

    features: int
    kernel_size: int
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, channels = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, channels, self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        x, kernel, bias = promote_dtype(x, kernel, bias)  # as nn.Conv does
        height, width = x.shape[-3] - k + 1, x.shape[-2] - k + 1
        patches = jnp.concatenate([x[..., i:i + height, j:j + width, :]
                                   for i in range(k) for j in range(k)], axis=-1)
        return patches @ kernel.reshape(k * k * channels, self.features) + bias


class ConvEncoder(nn.Module):
    """The "cnn" encoder: MinAtar's 3x3 convolution, 16 channels, stride 1, no
    padding, orthogonal(sqrt 2) init (as every hidden layer), then flatten.
    Any leading batch axes are kept. The convolution is `PatchConv` (a matmul
    on 3x3 patches, equal to `nn.Conv`) because per-seed kernels under vmap
    make `nn.Conv` a slow grouped convolution; its parameters keep nn.Conv's
    names, shapes, init and path (`Conv_0/kernel`, `Conv_0/bias`)."""

    activation: str = "relu"
    obs_rank: int = 3
    features: int = 16
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = PatchConv(self.features, self.kernel, kernel_init=orthogonal(HIDDEN_GAIN),
                      bias_init=nn.initializers.zeros, name="Conv_0")(x)
        x = _ACTIVATIONS[self.activation](x)
        return x.reshape((*x.shape[:-3], -1))


def _flatten_cost(obs_shape: tuple[int, ...]) -> tuple[int, int]:
    return 0, math.prod(obs_shape)


def _conv_cost(obs_shape: tuple[int, ...]) -> tuple[int, int]:
    height, width, channels = obs_shape
    k, features = ConvEncoder.kernel, ConvEncoder.features
    positions = (height - k + 1) * (width - k + 1)
    return 2 * positions * k * k * channels * features, positions * features


@dataclasses.dataclass(frozen=True)
class TorsoKind:
    """An encoder, the observation ranks it reads (None: any) and its cost:
    `cost(obs_shape)` is (FLOPs of one forward, width of its flat output)."""

    encoder: type[nn.Module]
    cost: Callable[[tuple[int, ...]], tuple[int, int]]
    ranks: tuple[int, ...] | None = None

    def accepts(self, obs_shape: tuple[int, ...]) -> bool:
        return self.ranks is None or len(obs_shape) in self.ranks


# In preference order: "auto" resolves to the first kind that accepts the observation.
ENCODERS: dict[str, TorsoKind] = {"cnn": TorsoKind(ConvEncoder, _conv_cost, ranks=(3,)),
                                  "mlp": TorsoKind(Flatten, _flatten_cost)}
AUTO = "auto"
if set(TORSO_KINDS) != {AUTO, *ENCODERS}:  # the knob's choices are declared in config.py
    raise TypeError(f"torso_kind choices {TORSO_KINDS} disagree with the encoders {ENCODERS}")


def resolve_torso_kind(kind: str, obs_shape: Sequence[int]) -> str:
    """The encoder `kind` stands for on observations of `obs_shape`; a one-line
    error (before anything compiles) when that encoder cannot read them."""
    obs_shape = tuple(obs_shape)
    candidates = {AUTO: list(ENCODERS)}.get(kind, [kind])
    for name in candidates:
        if ENCODERS[name].accepts(obs_shape):
            return name
    readable = [AUTO, *(n for n, k in ENCODERS.items() if k.accepts(obs_shape))]
    raise invalid("torso_kind", kind, f"one of {readable} for observations of shape "
                  f"{obs_shape} (cnn reads rank-3 (H, W, C) images)")


@dataclasses.dataclass(frozen=True)
class CellKind:
    """A flax recurrent cell and its gate count (for the FLOP estimate)."""

    module: type[nn.RNNCellBase]
    gates: int

    def make(self, width: int, name: str) -> nn.RNNCellBase:
        # Householder orthogonal recurrent kernels: flax's default orthogonal
        # init is LAPACK QR, which deadlocks vmapped over seeds on CPU (see above).
        return self.module(width, recurrent_kernel_init=orthogonal(1.0), name=name)

    def initial_carry(self, width: int, batch_shape: tuple[int, ...]) -> Carry:
        """The cell's own initial state (zeros), for `batch_shape` leading axes."""
        cell = self.module(width, parent=None)  # unbound: only its carry_init is read
        return cell.initialize_carry(jax.random.PRNGKey(0), (*batch_shape, 1))

    def output(self, carry: Carry) -> jax.Array:
        """The cell's output of the step that left `carry`: a GRU's state, an
        LSTM's hidden state h of its (c, h) pair (flax's cells return these)."""
        return carry[1] if self.gates == 4 else carry

    def cost(self, inputs: int, width: int) -> int:
        """FLOPs of one step: each gate has an input and a recurrent matmul."""
        return 2 * self.gates * (inputs + width) * width


# A head's recurrent state: (batch, width) for a GRU, (c, h) for an LSTM, None
# for a feed-forward head.
Carry = Any
CELLS: dict[str, CellKind] = {"gru": CellKind(nn.GRUCell, 3),
                              "lstm": CellKind(nn.OptimizedLSTMCell, 4)}
if set(RNN_CELLS) != set(CELLS):  # the knob's choices are declared in config.py
    raise TypeError(f"rnn_cell choices {RNN_CELLS} disagree with the cells {CELLS}")
HEADS = ("policy", "value")


def _head(features: int, name: str) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=orthogonal(1.0),
        bias_init=nn.initializers.zeros,
        name=name,
    )


class ActorCritic(nn.Module):
    """`policy_step` / `value_step` (the one single-step API, see the module
    docstring); `policy(obs)` and `value(obs)` are the first step of an episode."""

    action_dim: int
    discrete: bool
    activation: str = "tanh"
    torso_hidden: Sequence[int] = ()
    policy_hidden: Sequence[int] = (64, 64)
    value_hidden: Sequence[int] = (64, 64)
    value_activation: str = "tanh"
    value_layer_norm: bool = False
    value_outputs: int = 1  # > 1: logits over value bins (HL-Gauss)
    torso_kind: str = "mlp"  # resolved (never "auto"): a key of ENCODERS
    obs_rank: int = 1  # axes of one observation; the leading ones are batch axes
    policy_rnn: int = 0  # width of the policy's recurrent cell; 0: feed-forward
    value_rnn: int = 0
    rnn_cell: str = "gru"  # a key of CELLS
    torso_rnn: int = 0  # width of the cell both heads share, after the torso; 0: none
    policy_layer_norm: bool = False
    policy_block: str = "mlp"  # a key of BLOCKS
    value_block: str = "mlp"
    policy_std: str = "parameter"  # a Gaussian policy's std: "parameter" or "softplus"
    policy_std_floor: float = 1e-3  # softplus: the smallest standard deviation
    layer_init: str = "orthogonal"  # or "lecun_normal": see `reinitialize`
    bias_init_max: float = 0.0  # > 0: biases uniform in [0, bias_init_max]

    def setup(self) -> None:
        encoder = ENCODERS[self.torso_kind].encoder
        if self.torso_hidden:  # one encoder under the shared torso
            self.torso_encoder = encoder(activation=self.activation, obs_rank=self.obs_rank)
        else:  # each network reads the observation with its own encoder
            self.policy_encoder = encoder(activation=self.activation, obs_rank=self.obs_rank)
            self.value_encoder = encoder(activation=self.value_activation,
                                         obs_rank=self.obs_rank)
        self.torso = MLP(self.torso_hidden, self.activation)
        self.policy_torso = BLOCKS[self.policy_block](self.policy_hidden, self.activation,
                                                      self.policy_layer_norm)
        self.policy_head = _head(self.action_dim, "policy_head")
        self.value_torso = BLOCKS[self.value_block](self.value_hidden, self.value_activation,
                                                    self.value_layer_norm)
        self.value_head = _head(self.value_outputs, "value_head")
        if self.policy_rnn:
            self.policy_cell = CELLS[self.rnn_cell].make(self.policy_rnn, "policy_cell")
        if self.value_rnn:
            self.value_cell = CELLS[self.rnn_cell].make(self.value_rnn, "value_cell")
        if self.torso_rnn:
            self.torso_cell = CELLS[self.rnn_cell].make(self.torso_rnn, "torso_cell")
        if not self.discrete and self.policy_std == "softplus":
            # A small kernel: the initial std is nearly the same in every state; its
            # bias is set from log_std_init in `init_params`.
            self.policy_std_head = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01),
                                            bias_init=nn.initializers.zeros,
                                            name="policy_std_head")
        elif not self.discrete:
            self.policy_log_std = self.param(
                "policy_log_std", nn.initializers.zeros, (self.action_dim,)
            )

    @nn.nowrap
    def rnn_width(self, head: str) -> int:
        """Width of the cell `head` reads through (the shared one with torso_rnn); 0: none."""
        if self.torso_rnn:
            return self.torso_rnn
        return self.policy_rnn if head == "policy" else self.value_rnn

    @nn.nowrap
    def recurrent_heads(self) -> tuple[str, ...]:
        """The heads whose features pass a recurrent cell."""
        return tuple(head for head in HEADS if self.rnn_width(head))

    @nn.nowrap
    def initial_carry(self, batch_shape: int | Sequence[int]) -> dict[str, Carry]:
        """{"policy": carry, "value": carry} at the start of an episode, for
        `batch_shape` leading axes; needs no parameters."""
        shape = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
        return {head: CELLS[self.rnn_cell].initial_carry(self.rnn_width(head), shape)
                if self.rnn_width(head) else None for head in HEADS}

    def features(self, obs: jax.Array, head: str) -> jax.Array:
        """What `head`'s ("policy" or "value") own layers read: the shared torso's
        output, or the observation through the head's own encoder."""
        if self.torso_hidden:
            return self.torso(self.torso_encoder(obs))
        return getattr(self, f"{head}_encoder")(obs)

    def memory(self, obs: jax.Array, carry: Carry, reset: jax.Array, head: str
               ) -> tuple[jax.Array, Carry]:
        """`head`'s features of `obs` after its recurrent cell, and the cell's next
        carry (restarted first where `reset`); feed-forward: the features, and the
        carry unchanged. The part of a step that a sequence must scan."""
        x = self.features(obs, head)
        if not self.rnn_width(head):
            return x, carry
        return self.cell_step(x, carry, reset, head)

    def cell_step(self, x: jax.Array, carry: Carry, reset: jax.Array, head: str
                  ) -> tuple[jax.Array, Carry]:
        """`head`'s recurrent cell on its features `x`: (output, next carry), the
        carry restarted first where `reset`. Features need no carry, so a
        sequence computes them batched and scans only this."""
        start = CELLS[self.rnn_cell].initial_carry(self.rnn_width(head), x.shape[:-1])
        carry = jax.tree.map(lambda s, c: jnp.where(reset[..., None], s, c), start, carry)
        carry, out = getattr(self, self.cell_name(head))(carry, x)
        return out, carry

    @nn.nowrap
    def cell_name(self, head: str) -> str:
        """The parameter name of the cell `head` reads through."""
        return "torso_cell" if self.torso_rnn else f"{head}_cell"

    def policy_output(self, memory: jax.Array) -> tuple[jax.Array, ...]:
        """Distribution parameters from the policy's `memory` output (any batch axes)."""
        hidden = self.policy_torso(memory)
        out = self.policy_head(hidden)
        if self.discrete:
            return (out,)
        if self.policy_std == "softplus":
            std = jax.nn.softplus(self.policy_std_head(hidden)) + self.policy_std_floor
            return out, jnp.log(std)
        return out, self.policy_log_std

    def value_output(self, memory: jax.Array) -> jax.Array:
        """The critic's raw output from its `memory` output: a scalar per
        observation, or bin logits."""
        out = self.value_head(self.value_torso(memory))
        return out[..., 0] if self.value_outputs == 1 else out

    def policy_step(self, obs: jax.Array, carry: Carry, reset: jax.Array
                    ) -> tuple[tuple[jax.Array, ...], Carry]:
        """One policy step: (logits or (mean, log_std), next carry)."""
        memory, carry = self.memory(obs, carry, reset, "policy")
        return self.policy_output(memory), carry

    def value_step(self, obs: jax.Array, carry: Carry, reset: jax.Array
                   ) -> tuple[jax.Array, Carry]:
        """One critic step: (raw value output, next carry)."""
        memory, carry = self.memory(obs, carry, reset, "value")
        return self.value_output(memory), carry

    def policy(self, obs: jax.Array) -> tuple[jax.Array, ...]:
        return self.policy_step(obs, *self._episode_start(obs, "policy"))[0]

    def value(self, obs: jax.Array) -> jax.Array:
        """The critic's raw output: a scalar per observation, or bin logits."""
        return self.value_step(obs, *self._episode_start(obs, "value"))[0]

    def _episode_start(self, obs: jax.Array, head: str) -> tuple[Carry, jax.Array]:
        batch_shape = obs.shape[: obs.ndim - self.obs_rank]
        return self.initial_carry(batch_shape)[head], jnp.ones(batch_shape, bool)

    def __call__(self, obs: jax.Array) -> tuple[tuple[jax.Array, ...], jax.Array]:
        return self.policy(obs), self.value(obs)


def make_network(config: PPOConfig, action_dim: int, discrete: bool,
                 obs_shape: Sequence[int] | None = None) -> ActorCritic:
    """The network `config` describes for observations of `obs_shape` (None: a
    vector); `torso_kind` is resolved here, so a cnn on vectors fails now."""
    obs_shape = (1,) if obs_shape is None else tuple(obs_shape)
    value_activation = config.value_activation or config.activation
    return ActorCritic(
        action_dim=action_dim,
        discrete=discrete,
        activation=config.activation,
        torso_hidden=tuple(config.torso_hidden),
        policy_hidden=tuple(config.policy_hidden),
        value_hidden=tuple(config.value_hidden),
        value_activation=value_activation,
        value_layer_norm=config.value_layer_norm,
        value_outputs=strategies.of(config).value_loss.head.outputs(config),
        torso_kind=resolve_torso_kind(config.torso_kind, obs_shape),
        obs_rank=len(obs_shape),
        policy_rnn=config.policy_rnn,
        value_rnn=config.value_rnn,
        rnn_cell=config.rnn_cell,
        torso_rnn=config.torso_rnn,
        policy_layer_norm=config.policy_layer_norm,
        policy_block=config.policy_block,
        value_block=config.value_block,
        policy_std=config.policy_std,
        policy_std_floor=config.policy_std_floor,
        layer_init=config.layer_init,
        bias_init_max=config.bias_init_max,
    )


def init_params(
    network: ActorCritic, key: jax.Array, obs_shape: int | Sequence[int], hparams: HParams
) -> dict:
    """Initialise for one observation of `obs_shape` (an int: a vector of that
    size), then apply the traced output gains and initial log-std."""
    shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
    params = network.init(key, jnp.zeros((1, *shape), jnp.float32))
    if network.layer_init != "orthogonal" or network.bias_init_max > 0:
        params = reinitialize(params, jax.random.fold_in(key, REINIT_STREAM),
                              network.layer_init, network.bias_init_max)
    inner = dict(params["params"])
    inner["policy_head"] = _scale_kernel(inner["policy_head"], hparams.policy_output_gain)
    inner["value_head"] = _scale_kernel(inner["value_head"], hparams.value_output_gain)
    if "policy_log_std" in inner:
        inner["policy_log_std"] = jnp.full_like(inner["policy_log_std"], hparams.log_std_init)
    if "policy_std_head" in inner:
        bias = softplus_inverse(jnp.exp(hparams.log_std_init) - network.policy_std_floor)
        layer = inner["policy_std_head"]
        inner["policy_std_head"] = {**layer, "bias": jnp.full_like(layer["bias"], bias)}
    return {"params": inner}


REINIT_STREAM = 0x1A7E  # the key stream of `reinitialize`, apart from flax's init draws


def reinitialize(params: dict, key: jax.Array, layer_init: str, bias_init_max: float) -> dict:
    """Re-draw the dense and conv layers' kernels and biases another trainer's way:
    `layer_init="lecun_normal"` draws every kernel from flax's default, LeCun
    normal (variance 1 / fan_in, truncated), and `bias_init_max` > 0 every bias
    uniformly from [0, bias_init_max] (gymnax-blines' PPO uses both, with 0.05).
    The orthogonal init's gains belong to that init, so LeCun kernels take none;
    the traced output gains still scale the heads afterwards. LayerNorm
    parameters and recurrent cells (`*_cell`) keep theirs; each leaf gets its
    own key, folded from `key` by its place in the sorted parameter paths."""
    flat = flax.traverse_util.flatten_dict(params["params"])
    out = {}
    for index, (path, leaf) in enumerate(sorted(flat.items())):
        leaf_key = jax.random.fold_in(key, index)
        out[path] = _redrawn(path, leaf, leaf_key, layer_init, bias_init_max)
    return {**params, "params": flax.traverse_util.unflatten_dict(out)}


def _redrawn(path: tuple[str, ...], leaf: jax.Array, key: jax.Array, layer_init: str,
             bias_init_max: float) -> jax.Array:
    if any(part.endswith("_cell") or part.startswith("LayerNorm") for part in path):
        return leaf
    if path[-1] == "kernel" and layer_init == "lecun_normal":
        return nn.initializers.lecun_normal()(key, leaf.shape, leaf.dtype)
    if path[-1] == "bias" and bias_init_max > 0:
        return nn.initializers.uniform(bias_init_max)(key, leaf.shape, leaf.dtype)
    return leaf


def softplus_inverse(y: jax.Array) -> jax.Array:
    """x with softplus(x) = y > 0, stable for large y: y + log(-expm1(-y))."""
    return y + jnp.log(-jnp.expm1(-y))


def _scale_kernel(layer: dict, gain: jax.Array) -> dict:
    return {**layer, "kernel": layer["kernel"] * gain}


PARAM_GROUPS = ("policy", "value", "torso")


def param_group(top_level_name: str) -> str:
    """Which optimizer group ("policy", "value", "torso") a top-level module belongs to."""
    for group in PARAM_GROUPS:
        if top_level_name.startswith(group):
            return group
    raise ValueError(f"parameter {top_level_name!r} belongs to no group {PARAM_GROUPS}")


def param_labels(params: dict) -> dict:
    """A pytree of group labels shaped like `params`, for `optax.multi_transform`."""
    labels = {}
    for name, sub in params["params"].items():
        group = param_group(name)
        labels[name] = jax.tree.map(lambda _, g=group: g, sub)
    return {"params": labels}
