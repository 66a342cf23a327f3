"""What travels on the bus: a change to some paths of a scope, and who is listening."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from reactive_blocks.paths import (
    freeze_paths,
    freeze_strings,
    require_name,
    validate_scope,
)

__all__ = ["ChangeEvent", "ConnectionInfo"]


def _check_optional_str(value: object, *, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{name} must be a str or None, got {type(value).__name__}: {value!r}."
        )


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """Some context paths of one scope changed.

    ``origin`` names the connection that caused the change (it is not notified);
    ``audience`` restricts delivery to these user ids (``None``: everyone in scope);
    ``recheck`` says the change may have taken access away: every stream of the
    scope asks ``has_permission()`` again before anything of it is rendered;
    ``rows`` names the rows that changed (instance scopes, ``"app.model:pk"``), so
    that a keyed list re-renders those rows only (``None``: unknown, whole blocks).
    """

    scope: str
    changed_paths: frozenset[str]
    origin: str | None = None
    audience: frozenset[str] | None = None
    recheck: bool = False
    # Not compared: an event equals one written without it, as before it existed
    # (users' tests compare captured events with ChangeEvent(...)).
    rows: frozenset[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        validate_scope(self.scope)
        # frozen=True forbids normal assignment; normalising in place is the
        # documented way for frozen dataclasses.
        object.__setattr__(
            self,
            "changed_paths",
            freeze_paths(self.changed_paths, name="changed_paths"),
        )
        _check_optional_str(self.origin, name="origin")
        if self.audience is not None:
            object.__setattr__(
                self, "audience", freeze_strings(self.audience, name="audience")
            )
        if self.rows is not None:
            object.__setattr__(self, "rows", freeze_strings(self.rows, name="rows"))
        if not isinstance(self.recheck, bool):
            raise TypeError(
                f"recheck must be a bool, got {type(self.recheck).__name__}: "
                f"{self.recheck!r}."
            )


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Who is behind one subscription: presence and audience filtering use it.

    ``session`` names the Django session that opened it (a digest, never the key),
    so ``close_session()`` can end it when that session logs out.
    """

    session_id: str
    user_id: str | None = None
    connected_at: float = field(default_factory=time.monotonic)
    session: str | None = None

    def __post_init__(self) -> None:
        require_name(self.session_id, name="session_id")
        if self.user_id is not None and not isinstance(self.user_id, str):
            raise TypeError(
                f"user_id must be a str or None, got {type(self.user_id).__name__}: "
                f"{self.user_id!r}. Use str(user.pk)."
            )
        _check_optional_str(self.session, name="session")
