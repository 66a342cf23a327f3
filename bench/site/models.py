"""One tracked model: saving an item re-renders the pages that show it."""

from __future__ import annotations

from django.db import models

import reactive_blocks


@reactive_blocks.track(scope="item-{pk}", prefix="item")
class Item(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(default="")


class PlainItem(models.Model):
    """The same fields, not tracked: what a save costs without reactive_blocks."""

    title = models.CharField(max_length=200)
    body = models.TextField(default="")
