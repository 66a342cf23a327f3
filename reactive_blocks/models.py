"""The table through which the default bus carries changes between processes."""

from __future__ import annotations

from django.db import models

__all__ = ["Change", "ProcessStatus"]


class Change(models.Model):
    """One emitted ``ChangeEvent``; its id is the bus revision every process agrees on.

    Serving processes read the rows after the last they saw (``bus/database.py``);
    old rows are deleted as new ones come, so the table stays small.
    """

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=200)
    event = models.TextField()  # JSON: changed paths, origin, audience, recheck

    class Meta:
        verbose_name = "change event"

    def __str__(self) -> str:
        return f"{self.pk} {self.scope}"


class ProcessStatus(models.Model):
    """The latest report of a process that serves streams on the default bus, for
    ``manage.py reactive_status``; one older than a few reports is a process gone."""

    process = models.CharField(max_length=200, primary_key=True)  # host:pid
    reported = models.FloatField()  # time.time() of the report
    report = models.TextField()  # JSON

    class Meta:
        verbose_name = "process status"
        verbose_name_plural = "process statuses"

    def __str__(self) -> str:
        return self.process
