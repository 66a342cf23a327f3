from __future__ import annotations

from django.contrib import admin

from demo_project.demo.models import Document

admin.site.register(Document)
