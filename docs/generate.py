"""Write the manual's generated tables into their pages, between `<!-- NAME -->` and
`<!-- /NAME -->`: the knobs (`jppo config --markdown`), the metrics (`METRIC_DOCS`) and
the diagnosis rules (the rule objects). `make docs` runs it before building; with
`--check` it only reports pages that are out of date (exit 1), as the tests do."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def knobs_table() -> str:
    from jppo.core import knobs
    from jppo.core.config import PPOConfig

    return knobs.markdown(PPOConfig)


def metrics_table() -> str:
    from jppo.analysis import reference

    return reference.metrics_markdown()


def rules_sections() -> str:
    from jppo.analysis import reference

    return reference.rules_markdown()


GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "reference/knobs.md": ("knobs", knobs_table),
    "reference/metrics.md": ("metrics", metrics_table),
    "reference/rules.md": ("rules", rules_sections),
}


def filled(text: str, marker: str, content: str) -> str:
    """`text` with the span between the marker comments replaced by `content`."""
    pattern = re.compile(rf"(<!-- {marker} -->\n).*?(<!-- /{marker} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"<!-- {marker} --> ... <!-- /{marker} --> not found")
    return pattern.sub(lambda m: m.group(1) + content + "\n" + m.group(2), text, count=1)


def main(argv: list[str]) -> int:
    stale = []
    for page, (marker, render) in GENERATED.items():
        path = DOCS / page
        text = path.read_text()
        new = filled(text, marker, render())
        if new != text:
            stale.append(page)
            if "--check" not in argv:
                path.write_text(new)
    if "--check" in argv and stale:
        print("out of date (run make docs): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
