"""Train the external-log fixtures: real Stable-Baselines3 and CleanRL PPO runs, healthy
and with failures injected by configuration, several seeds each, small budgets.

The trainers need torch, which `make test` does not install: this script runs in a
venv of its own (the fixtures it writes are committed, so the tests never run it):

    python3 -m venv /tmp/extlogs-venv
    /tmp/extlogs-venv/bin/pip install torch==2.13.0 stable-baselines3==2.9.2 \
        gymnasium==0.29.1 tyro==1.0.17 tensorboard==2.21.0
    git clone https://github.com/vwxyzjn/cleanrl /tmp/cleanrl   # then check out CLEANRL_COMMIT
    OMP_NUM_THREADS=1 /tmp/extlogs-venv/bin/python experiments/external_logs/generate.py \
        --cleanrl /tmp/cleanrl

It writes `fixtures/sb3/CONFIG/seedK/` (SB3's own logger: `progress.csv` and a
TensorBoard event file), `fixtures/cleanrl/CONFIG/RUN/` (CleanRL's TensorBoard folder,
named as the script names it) and `versions.json`. The configurations and their
labels are in `labels.toml`, fixed before any diagnosis.

CleanRL's scripts are run, unmodified, from a checkout of its repository
(`cleanrl/ppo.py`, `cleanrl/ppo_continuous_action.py` at CLEANRL_COMMIT; none of it is
kept here), because the `cleanrl` package on PyPI (1.2.0) requires Python < 3.11 and its
`ppo.py` uses the old `gym` 0.23 API; the repository's scripts use gymnasium 0.29's
vector API (`final_info`), hence the pin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
CLEANRL_COMMIT = "fe8d8a03c41a7ef5b523e2e354bd01c363e786bb"
SEEDS = (1, 2, 3)
STEPS = 12_288  # 24 updates of 4 envs x 128 steps

# name -> (env, PPO keyword arguments, reward scale, log with the diagnostics callback)
SB3_CONFIGS = {
    "sb3_healthy": ("CartPole-v1", {}, 1.0, False),
    "sb3_tiny_lr": ("CartPole-v1", {"learning_rate": 1e-7}, 1.0, False),
    "sb3_greedy_lr": ("CartPole-v1", {"learning_rate": 0.03}, 1.0, False),
    "sb3_rewards_x1000_vclip": ("CartPole-v1", {"clip_range_vf": 0.2}, 1000.0, False),
    "sb3_healthy_diagnostics": ("CartPole-v1", {}, 1.0, True),
    "sb3_vf_coef_20": ("CartPole-v1", {"vf_coef": 20.0}, 1.0, True),
    "sb3_pendulum_healthy": ("Pendulum-v1", {}, 1.0, False),
    "sb3_pendulum_greedy_lr_epochs": ("Pendulum-v1", {"learning_rate": 0.01, "n_epochs": 20},
                                      1.0, False),
    "sb3_pendulum_negative_ent_coef": ("Pendulum-v1", {"ent_coef": -0.5,
                                                       "learning_rate": 3e-3}, 1.0, False),
    # one injection per mode the rules judge on SB3's logs (labels.toml, fixed before
    # training); those whose rule reads gradient norms or target statistics log with the
    # diagnostics callback, their healthy twin is sb3_healthy_diagnostics
    "sb3_target_kl_tiny": ("CartPole-v1", {"target_kl": 1e-7}, 1.0, False),
    "sb3_target_kl_small": ("CartPole-v1", {"target_kl": 1e-3}, 1.0, False),
    "sb3_max_grad_norm_tiny": ("CartPole-v1", {"max_grad_norm": 1e-3}, 1.0, True),
    "sb3_vf_coef_0": ("CartPole-v1", {"vf_coef": 0.0}, 1.0, True),
    "sb3_gamma_0": ("CartPole-v1", {"gamma": 0.0}, 1.0, True),
    "sb3_rewards_x1000": ("CartPole-v1", {}, 1000.0, False),
    "sb3_rewards_x1e19": ("CartPole-v1", {}, 1e19, False),
    "sb3_negative_ent_coef": ("CartPole-v1", {"ent_coef": -0.5}, 1.0, False),
}
# name -> (script, command-line flags)
CLEANRL_CONFIGS = {
    "cleanrl_healthy": ("ppo.py", ["--env-id", "CartPole-v1"]),
    "cleanrl_tiny_lr": ("ppo.py", ["--env-id", "CartPole-v1", "--learning-rate", "1e-7"]),
    "cleanrl_greedy_lr": ("ppo.py", ["--env-id", "CartPole-v1", "--learning-rate", "0.03",
                                     "--ent-coef", "0.0"]),
    "cleanrl_pendulum_healthy": ("ppo_continuous_action.py",
                                 ["--env-id", "Pendulum-v1", "--num-envs", "4",
                                  "--num-steps", "128", "--num-minibatches", "4"]),
    "cleanrl_pendulum_greedy_lr": ("ppo_continuous_action.py",
                                   ["--env-id", "Pendulum-v1", "--num-envs", "4",
                                    "--num-steps", "128", "--num-minibatches", "4",
                                    "--learning-rate", "0.03"]),
    "cleanrl_greedy_lr_epochs": ("ppo.py", ["--env-id", "CartPole-v1", "--learning-rate", "0.03",
                                            "--ent-coef", "0.0", "--no-anneal-lr",
                                            "--update-epochs", "10", "--num-minibatches", "8"]),
    "cleanrl_pendulum_negative_ent_coef": ("ppo_continuous_action.py",
                                           ["--env-id", "Pendulum-v1", "--num-envs", "4",
                                            "--num-steps", "128", "--num-minibatches", "4",
                                            "--ent-coef", "-0.5", "--learning-rate", "5e-3",
                                            "--no-anneal-lr"]),
    # the same injections on CleanRL's ppo.py where its flags reach them (it has no reward
    # scale); several leave their rule without the metric it reads (not judged)
    "cleanrl_target_kl_tiny": ("ppo.py", ["--env-id", "CartPole-v1", "--target-kl", "1e-7"]),
    "cleanrl_max_grad_norm_tiny": ("ppo.py", ["--env-id", "CartPole-v1",
                                              "--max-grad-norm", "1e-3"]),
    "cleanrl_vf_coef_0": ("ppo.py", ["--env-id", "CartPole-v1", "--vf-coef", "0.0"]),
    "cleanrl_vf_coef_20": ("ppo.py", ["--env-id", "CartPole-v1", "--vf-coef", "20.0"]),
    "cleanrl_gamma_0": ("ppo.py", ["--env-id", "CartPole-v1", "--gamma", "0.0"]),
    "cleanrl_negative_ent_coef": ("ppo.py", ["--env-id", "CartPole-v1", "--ent-coef", "-0.5",
                                             "--learning-rate", "1e-3", "--no-anneal-lr"]),
}
SNIPPET_SOURCE = HERE.parent.parent / "jppo" / "analysis" / "logs" / "sb3.py"


def diagnostics_callback():
    """The callback jppo's report shows for SB3 logs (`GRADIENTS` in jppo's sb3 reader),
    taken from there verbatim, so the fixtures log with exactly the documented lines."""
    text = SNIPPET_SOURCE.read_text()
    marker = "GRADIENTS = '''\\\n"
    start = text.index(marker) + len(marker)
    namespace: dict = {}
    exec(text[start:text.index("'''", start)], namespace)
    return namespace["JppoDiagnostics"]()


def train_sb3(name: str, seed: int) -> None:
    """One SB3 PPO run logging to progress.csv and TensorBoard, as `configure` sets up."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    env_id, kwargs, scale, diagnostics = SB3_CONFIGS[name]
    folder = FIXTURES / "sb3" / name / f"seed{seed}"
    shutil.rmtree(folder, ignore_errors=True)

    def scaled(env: gym.Env) -> gym.Env:  # after the Monitor: ep_rew_mean stays unscaled
        return gym.wrappers.TransformReward(env, lambda r: scale * r) if scale != 1 else env

    env = make_vec_env(env_id, n_envs=4, seed=seed, wrapper_class=scaled)
    model = PPO("MlpPolicy", env, n_steps=128, seed=seed, device="cpu", **kwargs)
    model.set_logger(configure(str(folder), ["csv", "tensorboard"]))
    model.learn(total_timesteps=STEPS, callback=diagnostics_callback() if diagnostics else None)


def train_cleanrl(name: str, seed: int, scripts: Path) -> None:
    """One CleanRL run in a scratch folder; its `runs/RUN` folder moved into the fixtures."""
    script, flags = CLEANRL_CONFIGS[name]
    target = FIXTURES / "cleanrl" / name
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, str(scripts / script), *flags,
                        "--seed", str(seed), "--total-timesteps", str(STEPS), "--no-cuda"],
                       cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        for run in (Path(scratch) / "runs").iterdir():
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(run), target / run.name)


def versions() -> dict[str, str]:
    import gymnasium
    import stable_baselines3
    import tensorboard
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gymnasium.__version__, "tensorboard": tensorboard.version.VERSION,
            "cleanrl_scripts": f"cleanrl repository at commit {CLEANRL_COMMIT}",
            "steps_per_run": str(STEPS), "seeds": ",".join(map(str, SEEDS))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="config names (default: all)")
    parser.add_argument("--cleanrl", type=Path, help="a checkout of CleanRL's repository at "
                        "CLEANRL_COMMIT (needed for the cleanrl_* configurations)")
    args = parser.parse_args()
    names = args.only or [*SB3_CONFIGS, *CLEANRL_CONFIGS]
    if any(name in CLEANRL_CONFIGS for name in names) and not (
            args.cleanrl and (args.cleanrl / "cleanrl" / "ppo.py").is_file()):
        parser.error(f"--cleanrl: {args.cleanrl} is not a CleanRL checkout "
                     "(cleanrl/ppo.py missing); clone it at CLEANRL_COMMIT")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    for name in names:
        if name in SB3_CONFIGS:
            for seed in SEEDS:
                train_sb3(name, seed)
        else:
            shutil.rmtree(FIXTURES / "cleanrl" / name, ignore_errors=True)
            for seed in SEEDS:
                train_cleanrl(name, seed, args.cleanrl / "cleanrl")
        print(f"{name}: done at {time.perf_counter() - start:.0f} s", flush=True)
    (HERE / "versions.json").write_text(json.dumps(versions(), indent=1) + "\n")


if __name__ == "__main__":
    main()
