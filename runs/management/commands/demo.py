"""`manage.py demo`: migrate, make the first admin, and serve Runboard on loopback."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


def admin_ensure() -> str | None:
    """Create the first admin user if there is none; return its password (shown once)."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "admin@example.com", password)
    return password


class Command(BaseCommand):
    help = "Migrate, create the first admin user if needed, and serve Runboard."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = admin_ensure()
        if password:
            self.stdout.write(self.style.SUCCESS(f"Created user 'admin' with password: {password}"))
            self.stdout.write("It is shown only this once.")
        call_command("runserver", f"{host}:{port}", use_reloader=False)
