"""Muting a cause of failure, and lifting the mute: both recorded (who, when, why).

A mute changes no stored count: the pages that tell "failing" apply mutes as they read."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from runs.models import Agent, FailureGroup, FailureMute, Schedule

PERMISSION = "runs.mute_failuregroup"


def failure_mute(
    *,
    group: FailureGroup,
    user: AbstractBaseUser,
    reason: str,
    schedule: Schedule | None = None,
    agent: Agent | None = None,
    until: datetime | None = None,
) -> FailureMute:
    """Mute `group` (on one schedule or agent, until a time, when given)."""
    if not user.has_perm(PERMISSION):
        raise PermissionDenied("Muting a cause of failure needs the permission to mute.")
    return FailureMute.objects.create(
        group=group, schedule=schedule, agent=agent, until=until, reason=reason, muted_by=user
    )


def failure_unmute(*, mute: FailureMute, user: AbstractBaseUser) -> bool:
    """Lift a mute still in force; False if it was lifted or had expired already."""
    if not user.has_perm(PERMISSION):
        raise PermissionDenied("Lifting a mute needs the permission to mute.")
    lifted = (
        FailureMute.objects.active()
        .filter(pk=mute.pk)
        .update(lifted_at=timezone.now(), lifted_by=user)
    )
    return bool(lifted)
