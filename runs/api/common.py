"""What the endpoint modules share: the responses every operation declares, rows by id, and
keyset cursors checked before a selector sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.forms import Form
from django.http import Http404

from runs.api.errors import BadInput
from runs.api.schemas import ProblemDetail
from runs.selectors import SortKey

READ_ERRORS = (400, 401, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409, 422, 429)


def responses(ok: dict[int, Any], errors: tuple[int, ...] = READ_ERRORS) -> dict[int, Any]:
    """Every answer an operation may give, declared so the schema tells clients (and
    schemathesis checks) each one."""
    return {**ok, **dict.fromkeys(errors, ProblemDetail)}


def get_or_404[T](getter: Callable[..., T], pk: int, what: str, **kwargs: Any) -> T:
    """A selector's row by pk, or a 404 that says what was missing."""
    try:
        return getter(pk=pk, **kwargs)
    except ObjectDoesNotExist as exc:
        raise Http404(f"No such {what}.") from exc


def cursor(key: SortKey, *, after: str, before: str) -> dict[str, str]:
    """`after`/`before` for a selector, refused (400) unless they are cursors of this list:
    a page ignores a cursor it cannot read, a script should hear that it sent one."""
    for name, value in (("after", after), ("before", before)):
        if value and key.decode(value) is None:
            raise BadInput({name: "This is not a cursor of this list: pass back `next`."})
    return {"after": after, "before": before}


def valid(form: Form) -> Form:
    """A filter form the page would forgive (it ignores a bad filter), refused here (400)."""
    if not form.is_valid():
        raise BadInput({field: " ".join(messages) for field, messages in form.errors.items()})
    return form
