"""`manage.py token create|revoke|list USER`: personal API tokens from the shell.

`create` prints the token once (Runboard keeps only its hash); `revoke` takes the token's id
or its name, as `list` shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from runs import selectors
from runs.services.api_tokens import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create, revoke or list a user's API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create", "revoke", "list"])
        parser.add_argument("username")
        parser.add_argument("--name", help="create: what it is for; revoke: which one.")
        parser.add_argument("--id", type=int, help="revoke: the token's id (see list).")
        parser.add_argument(
            "--expires-in-days", type=int, help="create: it stops working after this many days."
        )

    def handle(self, *args: Any, action: str, username: str, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None
        getattr(self, f"_{action}")(user, options)

    def _create(self, user: Any, options: dict[str, Any]) -> None:
        name = (options["name"] or "").strip()
        if not name or any(not c.isprintable() for c in name):
            raise CommandError("Give the token a name with --name, in one line.")
        days = options["expires_in_days"]
        if days is not None and not 0 < days <= 3650:
            raise CommandError("--expires-in-days takes 1 to 3650 days.")
        expires_at = None
        if days:
            day = timezone.now().date() + timedelta(days=days)
            expires_at = datetime.combine(day, time.min, tzinfo=UTC)
        token, raw = api_token_create(user=user, name=name[:100], expires_at=expires_at)
        self.stderr.write(f"Token {token.pk} “{token.name}” for {user}; it is shown only now:")
        self.stdout.write(raw)

    def _revoke(self, user: Any, options: dict[str, Any]) -> None:
        tokens = [t for t in selectors.api_token_list(user=user) if t.revoked_at is None]
        if options["id"] is not None:
            chosen = [t for t in tokens if t.pk == options["id"]]
        elif options["name"]:
            chosen = [t for t in tokens if t.name == options["name"].strip()]
        else:
            raise CommandError("Say which token to revoke: --id or --name.")
        if not chosen:
            raise CommandError(f"{user} has no live token like that (see `token list {user}`).")
        if len(chosen) > 1:
            raise CommandError("Several live tokens have that name: revoke by --id.")
        api_token_revoke(token=chosen[0])
        self.stdout.write(self.style.SUCCESS(f"Revoked token {chosen[0].pk} “{chosen[0].name}”."))

    def _list(self, user: Any, options: dict[str, Any]) -> None:
        now = timezone.now()
        for token in selectors.api_token_list(user=user):
            if token.revoked_at:
                state = f"revoked {token.revoked_at:%Y-%m-%d}"
            elif token.expires_at and token.expires_at <= now:
                state = f"expired {token.expires_at:%Y-%m-%d}"
            else:
                state = "live"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            self.stdout.write(
                f"{token.pk}\t{token.prefix}…\t{token.name}\t{state}\tlast used {used}"
            )
