"""The item the benchmark saves; nothing tracks it, the save view sends the event."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(default="")

    def __str__(self) -> str:
        return self.title
