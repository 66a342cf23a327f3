"""The bus scopes every tracked model emits to besides its own, for live pages.

A page rendered by an ordinary view follows what its context holds (see
``reactive_blocks.pages.follows``): an instance follows its *instance scope*, a
queryset its model's *model scope*. So that a page needs no declared scope, every
save, delete and many-to-many change of a tracked model is also emitted to its
model scope and its instance scope, and, for each foreign key to another tracked
model, to that row's instance scope under the reverse accessor's name (a comment
saved reaches the page whose context holds its document, for
``doc.comments.all``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db import models

__all__ = ["instance_scope", "model_scope"]


def model_scope(model: type[models.Model]) -> str:
    """``"docs.document"``: every change of any row of ``model``."""
    return model._meta.label_lower


def instance_scope(model: type[models.Model], pk: object) -> str:
    """``"docs.document:42"``: every change of one row, and of rows pointing at it."""
    return f"{model._meta.label_lower}:{pk}"
