"""Indexes PostgreSQL needs spelled its own way, with a plain equivalent on other databases.

Both keep the same name everywhere, so the schema has one shape, migrations that rebuild a
table (SQLite does for most changes) recreate them, and removing one works on every database.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper


class TrigramIndex(GinIndex):
    """A pg_trgm GIN index on UPPER(field): what `icontains` compiles to on PostgreSQL, so a
    search for any substring reads the index. Elsewhere a plain index on the same expression
    (SQLite has no GIN; its LIKE scans, which is fast enough at its sizes)."""

    def __init__(self, *, field: str, name: str) -> None:
        self.field = field
        super().__init__(OpClass(Upper(field), name="gin_trgm_ops"), name=name)

    def deconstruct(self) -> tuple[str, tuple, dict[str, Any]]:
        return f"{__name__}.{type(self).__name__}", (), {"field": self.field, "name": self.name}

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = models.Index(Upper(self.field), name=self.name)
        return plain.create_sql(model, schema_editor, **kwargs)


class DescendingNullsLastIndex(models.Index):
    """(field DESC NULLS LAST, id DESC): the "largest first, empty at the end" order of a history
    sorted by a nullable column. PostgreSQL sorts nulls first when descending, so it needs NULLS
    LAST spelled out; SQLite sorts them last when descending already, and cannot spell it."""

    def __init__(self, *, field: str, name: str) -> None:
        self.field = field
        super().__init__(F(field).desc(nulls_last=True), F("id").desc(), name=name)

    def deconstruct(self) -> tuple[str, tuple, dict[str, Any]]:
        return f"{__name__}.{type(self).__name__}", (), {"field": self.field, "name": self.name}

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = models.Index(F(self.field).desc(), F("id").desc(), name=self.name)
        return plain.create_sql(model, schema_editor, **kwargs)
