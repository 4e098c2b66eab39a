"""The numbered examples in examples/ run on a tiny budget (03, the custom variant, is
run by tests/core/test_custom_variant.py, 01, the quickstart notebook, by
tests/docs/test_notebook.py), and the notebooks are committed with their outputs."""

import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = ["--total-timesteps", "4096", "--seeds", "2"]


def run_example(name: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *TINY], capture_output=True,
                          text=True, timeout=600, cwd=EXAMPLES.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_examples_are_numbered_one_idea_each():
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in {".py", ".ipynb"})
    assert [name[:3] for name in names] == ["01_", "02_", "03_", "04_", "05_"]


def test_your_own_environment_trains():
    out = run_example("02_your_own_environment.py")
    assert out.startswith("Corridor: final return over 2 seeds")


def test_corridor_rewards_and_episode_ends_by_hand():
    """The example's env against a hand-played episode: seven steps right reach the end
    (terminated, return 7 x 0.9), and walking into the wall is truncated at the limit."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(EXAMPLES))
    try:
        corridor = __import__("02_your_own_environment")
    finally:
        sys.path.remove(str(EXAMPLES))
    env, key = corridor.Corridor(8), jax.random.PRNGKey(0)

    def walk_right(params, steps):
        obs, state = env.reset(key, params)
        total, ends = 0.0, []
        for _ in range(steps):
            obs, state, reward, terminated, truncated, info = env.step(key, state, 1, params)
            total += float(reward)
            ends.append((bool(terminated), bool(truncated)))
        return total, ends, obs, info

    # 5 steps allowed: the 5th truncates before the end is reached
    _, ends, _, _ = walk_right(corridor.CorridorParams(max_steps_in_episode=5), 5)
    assert ends == [(False, False)] * 4 + [(False, True)]
    total, ends, obs, info = walk_right(corridor.CorridorParams(), 7)
    assert ends[-1] == (True, False) and abs(total - 7 * 0.9) < 1e-5
    assert int(jnp.argmax(info["final_observation"])) == 7 and int(jnp.argmax(obs)) == 0


def test_load_and_evaluate_a_policy():
    out = run_example("05_load_and_evaluate_a_policy.py")
    assert "greedy action at the first observation:" in out
    assert "(same keys, same episodes: identical)" in out


def test_sweep_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("JPPO_SWEEP_STEPS", "2048")
    monkeypatch.setenv("JPPO_SWEEP_SEEDS", "2")
    notebook = nbformat.read(EXAMPLES / "04_sweep.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "6 settings x 2 seeds: (6, 2, 4)" in text  # 2048 steps = 4 updates of 512
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_sweep_notebook_is_committed_with_its_outputs():
    notebook = nbformat.read(EXAMPLES / "04_sweep.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code)
    outputs = [o for cell in code for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert not [o for o in outputs if o.output_type == "error"]
