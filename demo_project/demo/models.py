"""The demo's one tracked model: a document several people watch and edit."""

from __future__ import annotations

from django.db import models

import reactive_blocks


@reactive_blocks.track(scope="doc-{pk}", prefix="doc")
class Document(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    edits = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title
