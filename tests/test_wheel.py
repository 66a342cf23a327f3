"""The package as users install it: a wheel and an sdist built from the checkout
carry the static files, templates, migrations and licences, and the quick start's
project works in a fresh virtualenv with the wheel installed (no checkout on the
path)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.live_server import ROOT
from tests.test_getting_started import quick_start_works

pytestmark = pytest.mark.timeout(300)

SHIPPED = [
    "reactive_blocks/py.typed",
    "reactive_blocks/static/reactive_blocks/reactive.js",
    "reactive_blocks/static/reactive_blocks/vendor/htmx.min.js",
    "reactive_blocks/static/reactive_blocks/vendor/htmx.LICENSE",
    "reactive_blocks/static/reactive_blocks/vendor/htmx-ext-sse.js",
    "reactive_blocks/static/reactive_blocks/vendor/htmx-ext-sse.LICENSE",
    "reactive_blocks/static/reactive_blocks/vendor/idiomorph.min.js",
    "reactive_blocks/static/reactive_blocks/vendor/idiomorph.LICENSE",
    "reactive_blocks/migrations/0001_initial.py",
    "reactive_blocks/migrations/0002_process_status.py",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist), built from the checkout with ``python -m build``, as a release
    is. ``--no-isolation``: the locked setuptools builds it, nothing is fetched."""
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy of what the package is made of: the checkout stays clean.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "reactive_blocks",
        source / "reactive_blocks",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_and_sdist_carry_the_static_files_templates_and_licences(built):
    wheel, sdist = built
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    for line in (
        "Requires-Python: >=3.11",
        "Classifier: Framework :: Django :: 5.2",
        "Classifier: Programming Language :: Python :: 3.11",
        "Requires-Dist: Django<6.1,>=5.2",
        "Requires-Dist: prometheus-client<1,>=0.20",
    ):
        assert line in metadata, line
    # The version the changelog is about.
    version = re.search(r"^Version: (.+)$", metadata, re.MULTILINE)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert version is not None
    assert re.search(r"^## (\S+)", changelog, re.MULTILINE)[1] == version[1]
    missing = [name for name in SHIPPED if name not in names]
    assert not missing, missing
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not any(n.startswith(("tests/", "demo_project/", "bench/")) for n in names)
    with tarfile.open(sdist) as archive:
        members = {
            m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name
        }
    assert {"LICENSE", "README.md", "pyproject.toml", *SHIPPED} <= members


def test_the_quick_start_runs_against_the_installed_wheel(built, tmp_path):
    wheel, _ = built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    # Its dependencies come from the test environment's site-packages, added as a
    # plain path: the checkout's editable install there (a .pth of its own) is
    # not processed, so reactive_blocks can only come from the wheel.
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [python, "-c", "import reactive_blocks; print(reactive_blocks.__file__)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(site)), where
    project_root = tmp_path / "project"
    project_root.mkdir()
    quick_start_works(project_root, python)
