"""Problems found while reading templates, reported by the system checks."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, with the check id it is reported under (``E001``, ``W004``...)."""

    id: str
    message: str
    hint: str | None = None
    template: str | None = None
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.id.startswith("E")

    @property
    def location(self) -> str:
        """``template:line`` (or what of it is known), for messages."""
        if self.template is None:
            return ""
        return f"{self.template}:{self.line}" if self.line else self.template
