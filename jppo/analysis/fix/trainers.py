"""A plan for logs of other trainers: the same candidates, each change written in
the trainer's own parameter names (SB3's constructor arguments and wrappers,
CleanRL's command-line flags, the arguments of Brax's
brax.training.agents.ppo.train), never run. A change with no counterpart in the
trainer says so instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jppo.analysis.diagnose import engine
from jppo.analysis.fix.plan import Candidate, candidates
from jppo.core.config import PPOConfig

Translator = Callable[[Any, PPOConfig], str | None]  # None: the trainer has no such knob


def _kwarg(name: str) -> Translator:
    return lambda value, config: f"{name}={value!r}"


def _flag(name: str) -> Translator:
    return lambda value, config: f"{name} {value}"


def _sb3_value_loss(value: Any, config: PPOConfig) -> str | None:
    if value == "mse":
        return "clip_range_vf=None"
    if value == "clipped":
        return f"clip_range_vf={config.value_clip_eps or config.clip_eps!r}"
    return None


def _sb3_advantages(value: Any, config: PPOConfig) -> str | None:
    return {"minibatch": "normalize_advantage=True", "none": "normalize_advantage=False"}.get(
        value)


def _kl_stop(text: Callable[[float], str]) -> Translator:
    return lambda value, config: text(config.target_kl) if value else None


def _cleanrl_value_loss(value: Any, config: PPOConfig) -> str | None:
    return {"mse": "--no-clip-vloss", "clipped": "--clip-vloss"}.get(value)


SB3: dict[str, Translator] = {
    "vf_coef": _kwarg("vf_coef"), "max_grad_norm": _kwarg("max_grad_norm"),
    "ent_coef": _kwarg("ent_coef"), "clip_eps": _kwarg("clip_range"),
    "value_clip_eps": _kwarg("clip_range_vf"), "value_loss": _sb3_value_loss,
    "advantage_norm": _sb3_advantages, "update_epochs": _kwarg("n_epochs"),
    "lr": _kwarg("learning_rate"), "gae_lambda": _kwarg("gae_lambda"),
    "gamma": _kwarg("gamma"), "target_kl": _kwarg("target_kl"),
    "kl_early_stop": _kl_stop(lambda kl: f"target_kl={kl!r}"),
    "reward_scaling": lambda value, config: "VecNormalize(env, norm_reward=True)"
    if value else "VecNormalize(env, norm_reward=False)",
    "num_minibatches": lambda value, config: f"batch_size=n_steps*n_envs//{value}",
}
CLEANRL: dict[str, Translator] = {
    "vf_coef": _flag("--vf-coef"), "max_grad_norm": _flag("--max-grad-norm"),
    "ent_coef": _flag("--ent-coef"), "clip_eps": _flag("--clip-coef"),
    "value_loss": _cleanrl_value_loss,
    "advantage_norm": lambda value, config: {"minibatch": "--norm-adv",
                                             "none": "--no-norm-adv"}.get(value),
    "update_epochs": _flag("--update-epochs"), "lr": _flag("--learning-rate"),
    "num_minibatches": _flag("--num-minibatches"), "gae_lambda": _flag("--gae-lambda"),
    "gamma": _flag("--gamma"), "target_kl": _flag("--target-kl"),
    "kl_early_stop": _kl_stop(lambda kl: f"--target-kl {kl}"),
    "lr_schedule": lambda value, config: {"linear": "--anneal-lr",
                                          "constant": "--no-anneal-lr"}.get(value),
    "reward_scaling": lambda value, config: "env = gym.wrappers.NormalizeReward(env, "
    "gamma=args.gamma)" if value else None,
}


def _brax_value_loss(value: Any, config: PPOConfig) -> str | None:
    if value == "mse":
        return "clipping_epsilon_value=None"
    if value == "clipped":
        return f"clipping_epsilon_value={config.value_clip_eps or config.clip_eps!r}"
    return None


# Brax 0.14's ppo.train: its value loss is 0.5 x vf_loss_coefficient x the squared
# error, as jppo's; its reward_scaling is a constant factor and desired_kl steers an
# adaptive lr, so jppo's running-std reward scaling and KL early stop have no
# counterpart; its only lr schedules are NONE and ADAPTIVE_KL.
BRAX: dict[str, Translator] = {
    "vf_coef": _kwarg("vf_loss_coefficient"), "max_grad_norm": _kwarg("max_grad_norm"),
    "ent_coef": _kwarg("entropy_cost"), "clip_eps": _kwarg("clipping_epsilon"),
    "value_clip_eps": _kwarg("clipping_epsilon_value"), "value_loss": _brax_value_loss,
    "advantage_norm": lambda value, config: {"minibatch": "normalize_advantage=True",
                                             "none": "normalize_advantage=False"}.get(value),
    "update_epochs": _kwarg("num_updates_per_batch"), "lr": _kwarg("learning_rate"),
    "num_minibatches": _kwarg("num_minibatches"), "gae_lambda": _kwarg("gae_lambda"),
    "gamma": _kwarg("discounting"),
    "lr_schedule": lambda value, config: "learning_rate_schedule='NONE'"
    if value == "constant" else None,
}
TRAINERS: dict[str, tuple[str, Mapping[str, Translator]]] = {
    "sb3": ("SB3", SB3), "cleanrl": ("CleanRL", CLEANRL), "brax": ("Brax", BRAX)}


def translate(overrides: Mapping[str, Any], source: str, config: PPOConfig) -> list[str]:
    """Each override in the trainer's names; "no SB3 counterpart: FIELD=VALUE"
    where the trainer has none."""
    title, table = TRAINERS[source]
    lines = []
    for key, value in overrides.items():
        translator = table.get(key)
        text = translator(value, config) if translator is not None else None
        lines.append(text if text is not None else f"no {title} counterpart: jppo's "
                     f"{key}={value!r}")
    return lines


def plan_logs(paths: Sequence[str | Path], source: str = "auto",
              options: Any = None) -> list[tuple[str, str, list[Candidate], PPOConfig]]:
    """Per cell of the logs: its trainer and its candidates (kept and pruned)."""
    from jppo.analysis.logs import diagnose_logs

    found = diagnose_logs(paths, source, options)
    cells = []
    for cell in found.info["variants"]:
        trainer = found.info["variants"][cell].get("source", "")
        findings = [f for f in found.findings if f.variant == cell]
        config = engine.cell_config(found.info, cell)
        cells.append((cell, trainer, candidates(findings, config), config))
    return cells


def format_logs_plan(cells: Sequence[tuple[str, str, list[Candidate], PPOConfig]]) -> str:
    """The plan of each cell in its trainer's names; nothing is run."""
    lines = []
    for cell, trainer, found, config in cells:
        title = TRAINERS.get(trainer, (trainer or "unknown trainer", {}))[0]
        kept = [c for c in found if c.kept]
        lines.append(f"{cell} ({title}): " + ("nothing to fix" if not found else
                                               f"{len(kept)} candidate change(s)"))
        for candidate in found:
            mark = "try" if candidate.kept else "skip"
            names = translate(candidate.overrides, trainer, config) if trainer in TRAINERS \
                else [candidate.text()]
            lines.append(f"  {mark}: {'; '.join(names)}  [{candidate.reason}]")
    lines.append("nothing was run: change the trainer's parameters above and train again")
    return "\n".join(lines)
