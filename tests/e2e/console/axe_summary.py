"""Summarises the axe-core findings the console's browser tests logged ($RAAS_CONSOLE_SCREENSHOTS/axe/*.json):
pages checked, and each rule found below serious (serious and critical ones fail the tests) with its pages.

    .venv/bin/python -m tests.e2e.console.axe_summary DIR"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def summarise(directory: Path) -> str:
    pages = 0
    rules: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for path in sorted(directory.glob("*.json")):
        for check in json.loads(path.read_text(encoding="utf-8")):
            pages += 1
            for violation in check["violations"]:
                rules[(violation["impact"] or "none", violation["id"], violation["help"])].add(check["page"])
    lines = [f"axe-core: {pages} page checks in {len(list(directory.glob('*.json')))} tests"]
    if not rules:
        lines.append("no violations")
    for (impact, rule, help_text), where in sorted(rules.items()):
        lines.append(f"{impact:9} {rule}: {help_text} ({len(where)} pages: {', '.join(sorted(where))})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
