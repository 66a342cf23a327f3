"""The Python examples in docs/ run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
# Pages whose examples are self-contained (no project or server needed).
RUNNABLE = ["events.md", "bus.md", "dependency-index.md"]
# Pages whose examples need a project around them are checked for syntax only.
COMPILED = [
    "getting-started.md",
    "pages.md",
    "templates.md",
    "streams.md",
    "settings.md",
    "checks.md",
    "tracking.md",
    "testing.md",
    "deployment.md",
    "security.md",
]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", RUNNABLE)
def test_examples_run(page, capsys):
    blocks = FENCE.findall((DOCS / page).read_text())
    assert blocks, f"{page} has no python examples"
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), namespace)


@pytest.mark.parametrize("page", COMPILED)
def test_examples_compile(page):
    for block in FENCE.findall((DOCS / page).read_text()):
        compile(block, f"docs/{page}", "exec")


def test_the_readme_quick_start_compiles():
    readme = DOCS.parent / "README.md"
    blocks = FENCE.findall(readme.read_text())
    assert blocks, "README.md has no python quick start"
    for block in blocks:
        compile(block, "README.md", "exec")
