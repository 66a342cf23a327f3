"""Which template files a project has: what the scans read."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING

from django.template.loaders.cached import Loader as CachedLoader

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.template import Engine

__all__ = ["list_templates", "selected"]


def list_templates(engine: Engine) -> Iterator[tuple[str, Path]]:
    """(template name, file) for every file the engine's loaders can find; first wins."""
    seen: set[str] = set()
    loaders = list(engine.template_loaders)
    while loaders:
        loader = loaders.pop(0)
        if isinstance(loader, CachedLoader):
            loaders[:0] = loader.loaders
            continue
        get_dirs = getattr(loader, "get_dirs", None)
        if get_dirs is None:
            continue
        for directory in get_dirs():
            root = Path(directory)
            for dirpath, _, filenames in os.walk(root):
                for filename in sorted(filenames):
                    path = Path(dirpath) / filename
                    name = path.relative_to(root).as_posix()
                    if name not in seen:
                        seen.add(name)
                        yield name, path


def selected(name: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether SCAN_INCLUDE/SCAN_EXCLUDE let template ``name`` be read."""
    return any(fnmatch.fnmatchcase(name, p) for p in include) and not any(
        fnmatch.fnmatchcase(name, p) for p in exclude
    )
