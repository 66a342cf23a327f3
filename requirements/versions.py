"""What the unlocked test runs need to know about versions.

``python requirements/versions.py oldest``
    prints ``name==lowest`` for each runtime dependency of reactive_blocks (its
    own, and the ``demo`` and ``redis`` extras): the oldest releases its ranges
    allow, for ``make test-oldest``.
``python requirements/versions.py moved requirements/dev.txt``
    prints each installed package whose version differs from the lock's pin,
    for ``make test-latest`` and ``make test-oldest``.

Standard library and ``packaging`` only: it runs in any of the project's venvs.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_EXTRAS = ("demo", "redis")
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def oldest() -> list[str]:
    """``name==lowest`` for every runtime requirement with a lower bound."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        specs += project["optional-dependencies"][extra]
    pins = []
    for spec in specs:
        requirement = Requirement(spec)
        lows = [s.version for s in requirement.specifier if s.operator == ">="]
        if len(lows) != 1:
            raise SystemExit(f"{spec!r} has no single '>=' bound to test against.")
        pins.append(f"{requirement.name}=={lows[0]}")
    return pins


def locked(lock: Path) -> dict[str, str]:
    """The lock's pins that apply to this interpreter, by canonical name."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def moved(lock: Path) -> list[str]:
    """One line per installed package whose version is not the lock's."""
    pins = locked(lock)
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]  # a broken install may have none
    }
    lines = []
    for name, version in sorted(installed.items()):
        if name == "reactive-blocks":
            continue
        pin = pins.get(name)
        if pin is None:
            lines.append(f"  {name} {version} (not in the lock)")
        elif Version(pin) != Version(version):
            lines.append(f"  {name} {pin} -> {version}")
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["oldest"]:
        print(" ".join(oldest()))
        return 0
    if argv[:1] == ["moved"] and len(argv) == 2:
        lines = moved(Path(argv[1]))
        print(f"Versions that differ from {argv[1]}:" if lines else "As locked.")
        for line in lines:
            print(line)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
