from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo_project.demo"
    label = "demo"
