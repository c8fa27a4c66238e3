"""Errors the services raise to their callers (views, commands), whatever the vendor."""

from __future__ import annotations


class TrackError(Exception):
    """A run could not be followed by its vendor id: the orchestrator refused or is down."""


class CheckError(Exception):
    """Runboard could not ask the orchestrator what a rerun's unknown calls started."""
