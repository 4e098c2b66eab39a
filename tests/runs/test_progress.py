"""The live view: plain lines for pipes with steps, rate, ETA and mean return."""

import io
import math

import pytest

from jppo.runs.progress import ProgressView, format_seconds


def test_lines_report_steps_rate_eta_and_return():
    lines = []
    with ProgressView("lines", write=lines.append) as view:
        view.start("CartPole-v1 · standard", 1000, note="compiled in 7.0 s")
        # 16 runs at 1,600 env-steps/s in total: 100 steps per seed per second,
        # 750 steps per seed left -> 7.5 s
        view.update("CartPole-v1 · standard", 250, 1000, 1600.0, 21.5, runs=16)
        view.update("CartPole-v1 · standard", 1000, 1000, 1600.0, math.nan, runs=16)
    assert lines[0] == "[CartPole-v1 · standard] compiled in 7.0 s"
    assert "25.0%" in lines[1] and "250/1,000 steps/seed" in lines[1]
    assert "1,600 env-steps/s" in lines[1] and "ETA 00:08" in lines[1]
    assert "mean return 21.50" in lines[1]
    assert "100.0%" in lines[2] and "ETA 00:00" in lines[2] and "return --" in lines[2]


def test_auto_picks_lines_for_a_pipe_and_off_prints_nothing():
    assert ProgressView("auto", stream=io.StringIO()).mode == "lines"
    lines = []
    with ProgressView("off", write=lines.append) as view:
        view.start("x", 10)
        view.update("x", 5, 10, 1.0, 0.0)
    assert lines == []
    with pytest.raises(ValueError, match="progress='loud' is invalid"):
        ProgressView("loud")


def test_bar_mode_renders_to_its_stream():
    stream = io.StringIO()
    with ProgressView("bar", stream=stream) as view:
        view.start("Acrobot-v1 · a", 100)
        view.update("Acrobot-v1 · a", 100, 100, 5000.0, -80.0)
    assert "Acrobot-v1 · a" in stream.getvalue() and "return -80.00" in stream.getvalue()


@pytest.mark.parametrize("seconds, text", [(0, "00:00"), (7.5, "00:08"), (61, "01:01"),
                                           (3725, "1:02:05"), (math.inf, "--:--")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
