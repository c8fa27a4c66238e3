"""Saving an estate as plain JSON: dataclasses, datetimes, sets and containers to JSON-ready
values and back, led by the type hints of what was saved.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

# Objects saved by reference: type -> (its key, the object for a key). An estate's runs point at
# its plans or cases; saving those by key keeps one object per plan or case after a resume.
Refs = Mapping[type, tuple[Callable[[Any], Any], Callable[[Any], Any]]]


def to_plain(value: Any, refs: Refs | None = None) -> Any:
    """Dataclasses, datetimes, sets and containers of them as JSON-ready values (a copy)."""
    refs = refs or {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value) in refs:
            return refs[type(value)][0](value)
        return {f.name: to_plain(getattr(value, f.name), refs) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_plain(item, refs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item, refs) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(to_plain(item, refs) for item in value)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_plain(hint: Any, data: Any, refs: Refs | None = None) -> Any:
    """The inverse of `to_plain`, led by the type hint of what was saved."""
    refs = refs or {}
    if data is None or hint is Any:
        return data
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return from_plain(next(arg for arg in args if arg is not type(None)), data, refs)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if hint in refs:
            return refs[hint][1](data)
        hints = _hints(hint)
        values = {
            f.name: from_plain(hints[f.name], data[f.name], refs)
            for f in dataclasses.fields(hint)
            if f.name in data
        }
        return hint(**values)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if hint in (int, float, str, bool):
        return hint(data)  # JSON object keys come back as text
    if origin is list:
        return [from_plain(args[0], item, refs) for item in data]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], item, refs) for item in data)
        return tuple(from_plain(arg, item, refs) for arg, item in zip(args, data, strict=True))
    if origin in (set, frozenset):
        return origin(from_plain(args[0], item, refs) for item in data)
    if origin in (dict, Counter):
        key_hint, value_hint = args if len(args) == 2 else (args[0], int)
        return origin(
            {
                from_plain(key_hint, k, refs): from_plain(value_hint, v, refs)
                for k, v in data.items()
            }
        )
    return data
