"""The stream of a live page served by its own view (``{% reactive_connect %}``
with no argument): no stream class, no route to declare.

The token says which page (URL, view, template) and which bus scopes it follows;
the page's hub (``hub.py``) re-runs the view when they change. Admission, limits,
heartbeats and lifetimes are those of every stream (``ReactiveStreamConsumer``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.urls import Resolver404, resolve

from reactive_blocks.conf import conf
from reactive_blocks.pages.connect import may_rerun
from reactive_blocks.pages.hub import PageHub, browser_of
from reactive_blocks.pages.tokens import verify_page
from reactive_blocks.streams.consumer import ReactiveStreamConsumer
from reactive_blocks.streams.tokens import InvalidStreamToken

if TYPE_CHECKING:
    from django.urls import ResolverMatch

    from reactive_blocks.pages.tokens import PageToken
    from reactive_blocks.streams.engine import Delivery
    from reactive_blocks.streams.hubs import Hubs

__all__ = ["PageStreamConsumer"]


class PageStreamConsumer(ReactiveStreamConsumer):
    """Streams a page rendered by an ordinary view: its view is the stream's code."""

    # The view decides, on every re-run: nothing user-specific is sent otherwise.
    connection_roots: ClassVar[frozenset[str]] = frozenset()

    page: PageToken
    match: ResolverMatch
    browser: str

    def get_scope(self) -> str:
        return self.page.path

    def get_template_name(self) -> str:
        return self.page.template

    def _connection_id(self, query: dict[str, list[str]]) -> str:
        session = self.scope.get("session")
        page = verify_page(
            query.get("token", [""])[0],
            session_key=getattr(session, "session_key", None),
            max_age=conf.TOKEN_MAX_AGE_SECONDS,
        )
        try:
            match = resolve(page.path)
        except Resolver404 as exc:
            raise InvalidStreamToken(
                "The page's URL no longer leads to a view."
            ) from exc
        if match._func_path != page.view or not may_rerun(match.func):
            raise InvalidStreamToken("The page's URL now leads to another view.")
        self.page, self.match = page, match
        self.browser = browser_of(self.scope)
        return page.connection_id

    def hub_key(self) -> tuple[object, ...]:
        page = self.page
        return (type(self), page.path, page.query, page.view, page.follows)

    def make_hub(self, hubs: Hubs, key: tuple[object, ...]) -> Delivery:
        return PageHub(hubs, key, self)

    def _connection_names(self) -> Any:
        return frozenset()
