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
        assert "<h1>Documents</h1>" in body
        assert 'sse-swap="documents"' in body
        assert "Welcome to reactive_blocks" in body


def manage(demo_env, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` for the demo, its output captured as text."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=demo_process_env(demo_env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_seed_demo_is_idempotent(demo_env):
    result = manage(demo_env, "seed_demo")
    assert result.returncode == 0, result.stderr
    assert "already exist" in result.stdout


def test_demo_activity_edits_through_the_running_server(demo_env):
    with daphne(
        "demo_project.asgi:application", "demo_project.settings", demo_env
    ) as url:
        result = manage(
            demo_env, "demo_activity", "--changes", "2", "--interval", "0.1",
            "--url", url,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "1/2: edited 'Meeting notes'",
            "2/2: edited 'Meeting notes'",
        ]
        with urllib.request.urlopen(url + "/docs/2/", timeout=10) as response:
            assert "Decided: ship the live list first." in response.read().decode()


def test_demo_activity_is_bounded_and_says_what_is_wrong(demo_env):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return manage(demo_env, "demo_activity", *args)

    assert "--changes must be between 1 and 1000" in run("--changes", "5000").stderr
    # The default bus crosses processes: it edits from its own, no server asked.
    done = run("--url", "http://127.0.0.1:9", "--changes", "1", "--interval", "0.1")
    assert done.returncode == 0, done.stderr
    assert "1/1: " in done.stdout


def test_reactive_check_is_clean_on_the_demo(demo_env):
    result = manage(demo_env, "reactive_check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout
