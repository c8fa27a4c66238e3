"""Indexes PostgreSQL needs spelled its own way, with a plain equivalent on other databases.

Both keep the same name everywhere, so the schema has one shape, migrations that rebuild a
table (SQLite does for most changes) recreate them, and removing one works on every database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper


class _UpperOnPostgres:
    """An index on UPPER(field) with a PostgreSQL operator class (what `icontains` and
    `istartswith` compile to there), and a plain index on the same expression elsewhere."""

    field: str
    name: str

    def deconstruct(self) -> tuple[str, tuple, dict[str, Any]]:
        return f"{__name__}.{type(self).__name__}", (), {"field": self.field, "name": self.name}

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = models.Index(Upper(self.field), name=self.name)
        return plain.create_sql(model, schema_editor, **kwargs)


class TrigramIndex(_UpperOnPostgres, GinIndex):
    """A pg_trgm GIN index on UPPER(field): a search for any substring reads the index.
    Elsewhere a plain index on the same expression (SQLite has no GIN; its LIKE scans, which is
    fast enough at its sizes)."""

    def __init__(self, *, field: str, name: str) -> None:
        self.field = field
        super().__init__(OpClass(Upper(field), name="gin_trgm_ops"), name=name)


class PrefixIndex(_UpperOnPostgres, models.Index):
    """A B-tree on UPPER(field) in pattern order: a search for a start (`istartswith`) reads
    the range of keys that begin with it. A trigram index answers a start too, but slowly when
    the text is made of trigrams most rows share ("build-10…" in every run's build)."""

    def __init__(self, *, field: str, name: str) -> None:
        self.field = field
        super().__init__(OpClass(Upper(field), name="text_pattern_ops"), name=name)


class DescendingNullsLastIndex(models.Index):
    """(leading..., field DESC NULLS LAST, id DESC): the "largest first, empty at the end" order
    of a list sorted by a nullable column, within equal `leading` columns (a test case's
    results). PostgreSQL sorts nulls first when descending, so it needs NULLS LAST spelled out;
    SQLite sorts them last when descending already, and cannot spell it."""

    def __init__(self, *, field: str, name: str, leading: Sequence[str] = ()) -> None:
        self.field, self.leading = field, tuple(leading)
        super().__init__(*self._columns(nulls_last=True), name=name)

    def _columns(self, *, nulls_last: bool) -> list[Any]:
        last = F(self.field).desc(nulls_last=True) if nulls_last else F(self.field).desc()
        return [*(F(column) for column in self.leading), last, F("id").desc()]

    def deconstruct(self) -> tuple[str, tuple, dict[str, Any]]:
        kwargs: dict[str, Any] = {"field": self.field, "name": self.name}
        if self.leading:
            kwargs["leading"] = list(self.leading)
        return f"{__name__}.{type(self).__name__}", (), kwargs

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = models.Index(*self._columns(nulls_last=False), name=self.name)
        return plain.create_sql(model, schema_editor, **kwargs)


class CoveringIndex(models.Index):
    """An index whose entries carry more columns (`covering`, PostgreSQL's INCLUDE), so a
    query that reads only those is answered from the index alone, without a heap page per
    row. Elsewhere the same index without them (SQLite has no INCLUDE)."""

    def __init__(
        self, *, fields: Sequence[str], name: str, covering: Sequence[str], **kwargs: Any
    ) -> None:
        self.covering = tuple(covering)
        super().__init__(fields=fields, name=name, **kwargs)

    def deconstruct(self) -> tuple[str, tuple, dict[str, Any]]:
        _path, args, kwargs = super().deconstruct()
        kwargs["covering"] = list(self.covering)
        return f"{__name__}.{type(self).__name__}", args, kwargs

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        covered = models.Index(
            fields=self.fields, name=self.name, condition=self.condition, include=self.covering
        )
        return covered.create_sql(model, schema_editor, using=using, **kwargs)
