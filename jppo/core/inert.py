"""Knobs that cannot act in a resolved config: one line each, never silence.

`rnn_cell="lstm"` without a recurrent width, `huber_delta` with another value
loss, an `eval_every` longer than the run: each is accepted by its own range
check, yet changes nothing. `ACTS_WHEN` says, per knob, when it can act; a knob
absent from it acts in every config (`ALWAYS_ACTS`, checked by a test that walks
the declarations, so a new knob is classified where it is declared). Knobs that
depend on the environment (`log_std_init`: continuous actions) are checked where
the environment is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jppo.core import strategies


def _loss(config: Any) -> Any:
    return strategies.VALUE_LOSSES.get(config.value_loss)


def _adapts_coef(config: Any) -> bool:
    return strategies.POLICY_LOSSES.get(config.policy_loss).adapt is not None


def _evaluates(config: Any) -> bool:
    return config.eval_interval > 0


# knob -> (can it act in this config?, what it needs, in words)
ACTS_WHEN: dict[str, tuple[Callable[[Any], bool], str]] = {
    "torso_lr": (lambda c: bool(c.torso_hidden), "a shared torso (torso_hidden)"),
    "value_clip_eps": (lambda c: _loss(c).uses_value_clip,
                       "a value loss that clips (value_loss='clipped')"),
    "value_clip_mode": (lambda c: _loss(c).uses_value_clip,
                        "a value loss that clips (value_loss='clipped')"),
    "huber_delta": (lambda c: c.value_loss == "huber", "value_loss='huber'"),
    "ent_coef_final": (lambda c: c.ent_schedule != "constant",
                       "a decaying ent_schedule (e.g. 'linear')"),
    "adv_std_threshold": (lambda c: c.advantage_norm == "robust", "advantage_norm='robust'"),
    "popart_step": (lambda c: c.value_target == "popart", "value_target='popart'"),
    "obs_norm_warmup": (lambda c: c.obs_norm, "obs_norm=True"),
    "obs_clip": (lambda c: c.obs_norm, "obs_norm=True"),
    "reward_clip": (lambda c: c.reward_scaling, "reward_scaling=True"),
    "hl_gauss_bins": (lambda c: _loss(c).head is strategies.HISTOGRAM,
                      "a histogram value loss (value_loss='hl_gauss')"),
    "hl_gauss_range": (lambda c: _loss(c).head is strategies.HISTOGRAM,
                       "a histogram value loss (value_loss='hl_gauss')"),
    "hl_gauss_sigma": (lambda c: _loss(c).head is strategies.HISTOGRAM,
                       "a histogram value loss (value_loss='hl_gauss')"),
    "target_kl": (lambda c: c.kl_early_stop or c.kl_adaptive_lr or _adapts_coef(c),
                  "kl_early_stop=True, kl_adaptive_lr=True or policy_loss='kl_penalty'"),
    "eval_episodes": (_evaluates, "evaluation (eval_every not 0)"),
    "eval_max_steps": (_evaluates, "evaluation (eval_every not 0)"),
    "eval_every": (lambda c: not c.eval_every or c.eval_every <= c.num_updates,
                   "an interval no longer than the run"),
    "lr_end_factor": (lambda c: c.lr_schedule != "constant",
                      "a decaying lr_schedule (e.g. 'linear')"),
    "lr_decay_fraction": (lambda c: c.lr_schedule != "constant",
                          "a decaying lr_schedule (e.g. 'linear')"),
    "rnn_cell": (lambda c: c.recurrent,
                 "a recurrent width (policy_rnn, value_rnn or torso_rnn > 0)"),
    "kl_coef": (lambda c: c.policy_loss not in ("clipped", "dpo"),
                "a policy loss with a KL coefficient (policy_loss='kl_penalty')"),
    "dpo_alpha": (lambda c: c.policy_loss == "dpo", "policy_loss='dpo'"),
    "dpo_beta": (lambda c: c.policy_loss == "dpo", "policy_loss='dpo'"),
    "quantile_count": (lambda c: _loss(c).head is strategies.QUANTILES,
                       "a quantile value loss (value_loss='quantile')"),
    "shrink_perturb_alpha": (lambda c: c.shrink_perturb_every > 0, "shrink_perturb_every > 0"),
    "shrink_perturb_sigma": (lambda c: c.shrink_perturb_every > 0, "shrink_perturb_every > 0"),
    "shrink_perturb_groups": (lambda c: c.shrink_perturb_every > 0, "shrink_perturb_every > 0"),
    "pfo_coef": (lambda c: c.pfo, "pfo=True"),
    "policy_std_floor": (lambda c: c.policy_std == "softplus", "policy_std='softplus'"),
}
# knobs that act in every config (or, as log_std_init and torso_kind, depend on the env)
ALWAYS_ACTS = (
    "num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches", "lr",
    "policy_lr", "value_lr", "lr_schedule", "adam_eps", "max_grad_norm", "gamma", "gae_lambda",
    "critic_lambda", "clip_eps", "value_loss", "ent_coef", "ent_schedule", "vf_coef",
    "advantage_norm", "value_target", "obs_norm", "reward_scaling", "grad_clip",
    "kl_early_stop", "value_pretrain_updates", "diagnostics", "nonfinite_check", "scan_unroll",
    "torso_kind", "activation", "torso_hidden", "policy_hidden", "value_hidden",
    "value_activation", "value_layer_norm", "policy_output_gain", "value_output_gain",
    "log_std_init", "policy_std", "policy_rnn", "value_rnn", "torso_rnn",
    "policy_loss", "kl_adaptive_lr",
    "policy_block", "value_block", "policy_layer_norm", "shrink_perturb_every", "pfo",
    "layer_init", "bias_init_max", "truncation",
)


def notes(config: Any) -> list[str]:
    """One line per knob set away from its default that cannot act in `config`."""
    defaults = type(config)()
    found = []
    for field, (acts, needs) in ACTS_WHEN.items():
        value = getattr(config, field)
        if value != getattr(defaults, field) and not acts(config):
            found.append(_line(config, field, value, needs))
    return found


def _line(config: Any, field: str, value: Any, needs: str) -> str:
    if field == "eval_every":
        return (f"eval_every={value} has no effect: the run has {config.num_updates} updates, "
                f"so no evaluation runs; it needs {needs} (at most {config.num_updates})")
    return f"{field}={value!r} has no effect: it acts only with {needs}"
