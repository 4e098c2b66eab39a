"""The fenced examples the README and the manual mark runnable, and the one rewrite
that makes them cheap enough for a test: their training budgets shrunk to a few
thousand steps on two seeds (everything else runs as written).

A block is runnable when the line before its fence is `<!-- runnable -->`; the marker
is an HTML comment, so the rendered page does not show it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- runnable -->"
_BLOCK = re.compile(re.escape(MARKER) + r"\n```(python|bash)[^\n]*\n(.*?)^```", re.S | re.M)

TINY_STEPS = 4096
TINY_SEEDS = 2
_BUDGETS = [
    (re.compile(r"(total_timesteps\s*=\s*)[\d_.e]+"), rf"\g<1>{TINY_STEPS}"),
    (re.compile(r"(--total-timesteps[ =])[\d_.e]+"), rf"\g<1>{TINY_STEPS}"),
    (re.compile(r"(num_seeds\s*=\s*)\d+"), rf"\g<1>{TINY_SEEDS}"),
    (re.compile(r"(--seeds[ =])\d+"), rf"\g<1>{TINY_SEEDS}"),
    (re.compile(r"([\"']seeds=)\d+"), rf"\g<1>{TINY_SEEDS}"),
    (re.compile(r"(jax\.random\.split\([^,()]+(?:\([^()]*\))?,\s*)\d+\)"), rf"\g<1>{TINY_SEEDS})"),
]


@dataclass(frozen=True)
class Block:
    language: str  # "python" or "bash"
    code: str
    line: int  # 1-based line of the fence in its file


def runnable_blocks(text: str) -> list[Block]:
    """The marked blocks of a Markdown text, in order."""
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 2)
            for m in _BLOCK.finditer(text)]


def shrink_budget(code: str) -> str:
    """`code` with its training budgets (steps, seeds) replaced by tiny ones."""
    for pattern, replacement in _BUDGETS:
        code = pattern.sub(replacement, code)
    return code


def markdown_files(root: Path) -> list[Path]:
    """README.md and every page of the manual."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
