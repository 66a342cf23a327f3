"""docs/getting-started.md works as written: a fresh ``django-admin startproject``
made from the page's code blocks, served by daphne, seen in Chromium, no Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.browser import chromium, require_chromium
from tests.live_server import ROOT, served

if TYPE_CHECKING:
    from pathlib import Path

PAGE = ROOT / "docs" / "getting-started.md"
FENCE = re.compile(r"^```(python|html\+django)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# The first line of each block names its file: "# mysite/views.py" or
# "{# docs/templates/docs/list.html #}"; "(add at the end)" appends.
FILE_LINE = re.compile(r"^(?:# |\{# )(?P<path>[\w/.]+)(?P<append> \(add at the end\))?")
SSE_OPEN = "document.addEventListener('htmx:sseOpen', () => { window.sseOpen = true })"


def project_files() -> list[tuple[str, str, bool]]:
    """(path, text, append) of every code block of the page that names a file."""
    files = []
    for _, block in FENCE.findall(PAGE.read_text()):
        match = FILE_LINE.match(block)
        if match:
            files.append((match["path"], block, bool(match["append"])))
    return files


def run(directory: Path, *args: str, python: str = sys.executable) -> str:
    env = {**os.environ, "PYTHONPATH": str(directory)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [python, *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def build(tmp_path: Path, python: str = sys.executable) -> Path:
    run(tmp_path, "-m", "django", "startproject", "mysite", python=python)
    project = tmp_path / "mysite"
    run(project, "manage.py", "startapp", "docs", python=python)
    written = set()
    for path, text, append in project_files():
        target = project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if append:
            target.write_text(target.read_text() + "\n" + text)
        else:
            target.write_text(text)
        written.add(path)
    assert {
        "mysite/settings.py",
        "mysite/asgi.py",
        "mysite/urls.py",
        "docs/models.py",
        "docs/views.py",
        "docs/templates/docs/detail.html",
        "docs/templates/docs/list.html",
    } <= written
    run(project, "manage.py", "makemigrations", "docs", python=python)
    run(project, "manage.py", "migrate", "-v0", python=python)
    return project


def shell(project: Path, code: str, python: str = sys.executable) -> None:
    run(project, "manage.py", "shell", "-c", code, python=python)


def test_the_quick_start_works_in_a_real_browser(tmp_path):
    quick_start_works(tmp_path)


def quick_start_works(tmp_path: Path, python: str = sys.executable) -> None:
    """The quick start, run by ``python`` (another interpreter: a wheel's)."""
    require_chromium()
    project = build(tmp_path, python)
    shell(
        project,
        "from docs.models import Document; Document.objects.create(title='Hello')",
        python,
    )
    env = {"PYTHONPATH": str(project)}
    with (
        served(
            "mysite.asgi:application",
            "mysite.settings",
            env,
            python=python,
            cwd=project,
        ) as (url, _),
        chromium() as browser,
    ):
        errors: list[str] = []
        watcher, lister = browser.new_page(), browser.new_page()
        for page, path in ((watcher, "/docs/1/"), (lister, "/")):
            # Failed requests are caught below, with their URL (favicon.ico aside).
            page.on(
                "console",
                lambda m: (
                    m.type == "error"
                    and not m.text.startswith("Failed to load resource")
                    and errors.append(m.text)
                ),
            )
            page.on(
                "response",
                lambda r: (
                    r.status >= 400
                    and "favicon" not in r.url
                    and errors.append(f"{r.status} {r.url}")
                ),
            )
            page.add_init_script(SSE_OPEN)
            page.goto(url + path)
            page.wait_for_function("() => window.sseOpen === true", timeout=15000)
        assert watcher.inner_text("#title") == "Hello"

        # Another client saves through the page's form.
        editor = browser.new_context().new_page()
        editor.goto(f"{url}/docs/1/")
        editor.fill("input[name=title]", "Saved by another window")
        editor.click("button")
        editor.wait_for_url(f"{url}/docs/1/")
        watcher.wait_for_function(
            "() => document.querySelector('#title').textContent === 'Saved by another window'"
        )
        lister.wait_for_function(
            "() => document.querySelector('#documents').textContent.includes('Saved by another window')"
        )

        # A save in another process: manage.py shell.
        shell(
            project,
            "from docs.models import Document; d = Document.objects.get(pk=1); "
            "d.title = 'From the shell'; d.save(); "
            "Document.objects.create(title='A second one')",
            python,
        )
        watcher.wait_for_function(
            "() => document.querySelector('#title').textContent === 'From the shell'"
        )
        lister.wait_for_function(
            "() => document.querySelector('#documents').textContent.includes('A second one')"
        )
        # The app's scripts were served (DEBUG), the streams opened: no request
        # failed and the console stayed clean.
        assert not errors, errors
