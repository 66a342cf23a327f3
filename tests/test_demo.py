"""The demo site that ``make demo`` serves, run the same way: migrate, seed, daphne."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from tests.live_server import ROOT, daphne


def demo_process_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "DJANGO_SETTINGS_MODULE": "demo_project.settings"}


@pytest.fixture
def demo_env(tmp_path):
    env = {"DEMO_DATABASE": str(tmp_path / "demo.sqlite3")}
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=demo_process_env(env),
            check=True,
            capture_output=True,
            timeout=120,
        )
    return env


def test_demo_home_page_is_served_by_daphne(demo_env):
    with daphne(
        "demo_project.asgi:application", "demo_project.settings", demo_env
    ) as url:
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            body = response.read().decode()
            assert response.status == 200
        assert "<h1>reactive_blocks demo</h1>" in body
        assert "sse-swap" in body


def test_seed_demo_is_idempotent(demo_env):
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=ROOT,
        env=demo_process_env(demo_env),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "already exists" in result.stdout


def test_an_edit_in_one_window_appears_in_the_other(demo_env):
    """What `make demo` promises, in Debian's Chromium: two windows, one edit."""
    from tests.browser import chromium

    with (
        daphne(
            "demo_project.asgi:application", "demo_project.settings", demo_env
        ) as url,
        chromium() as browser,
    ):
        editor, watcher = browser.new_page(), browser.new_page()
        for page in (editor, watcher):
            # Record htmx's sseOpen, so the test knows the stream is up.
            page.add_init_script(
                "document.addEventListener('htmx:sseOpen',"
                " () => { window.streamOpen = true; });"
            )
            page.goto(f"{url}/docs/1/")
            page.wait_for_function("() => window.streamOpen === true")
        editor.fill("#id_title", "Edited in window one")
        editor.fill("#id_body", "Line one\nLine two")
        editor.click("button[type=submit]")
        watcher.wait_for_function(
            "() => document.querySelector('#doc-title').textContent"
            " === 'Edited in window one'"
        )
        assert "Line one<br>Line two" in watcher.inner_html("#doc-body")
        assert watcher.inner_text("#doc-stats").startswith("1 edit,")
        # The editing window updated itself from its own response.
        editor.wait_for_function(
            "() => document.querySelector('#doc-title').textContent"
            " === 'Edited in window one'"
        )
