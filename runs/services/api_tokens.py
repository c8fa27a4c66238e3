"""Personal API tokens: made, shown once, stored hashed, checked, revoked, rate-limited.

A token is 32 random bytes (URL-safe base64) behind a recognisable prefix; only its SHA-256
is stored, which is enough for a secret this long (no slow hash is needed: it cannot be
guessed). A token acts with its user's permissions.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from runs.models import ApiToken

TOKEN_PREFIX = "rb_"
SHOWN_PREFIX = 10  # "rb_" and 7 characters of the secret: enough to tell tokens apart
# last_used_at is written at most this often per token, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, user: AbstractBaseUser, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Make a token for `user`; return it with its secret, which is never stored or shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        prefix=raw[:SHOWN_PREFIX],
        digest=token_digest(raw),
        expires_at=expires_at,
    )
    return token, raw


def api_token_revoke(*, token: ApiToken) -> bool:
    """Revoke a token; False when it was already revoked."""
    return bool(
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token `raw` is (not revoked, not expired, its user active), with its user;
    None for anything else. Notes when it was last used (at most once a minute)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_token_take_write(*, token: ApiToken) -> bool:
    """Count one write against the token's rate (RUNBOARD_API_WRITES_PER_MINUTE a minute);
    False when the minute's writes are spent. One UPDATE, so concurrent writes count right."""
    now = timezone.now()
    window_over = Q(window_started_at__isnull=True) | Q(
        window_started_at__lte=now - timedelta(minutes=1)
    )
    ApiToken.objects.filter(pk=token.pk).update(
        window_writes=Case(When(window_over, then=Value(1)), default=F("window_writes") + 1),
        window_started_at=Case(When(window_over, then=Value(now)), default=F("window_started_at")),
    )
    writes = ApiToken.objects.values_list("window_writes", flat=True).get(pk=token.pk)
    return writes <= settings.RUNBOARD_API_WRITES_PER_MINUTE
