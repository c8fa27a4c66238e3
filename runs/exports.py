"""CSV exports: each table's columns, and a response that streams rows as they are read."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, CSV injection):
# vendor text (case names, messages) is written with an apostrophe before it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Lines are sent in pieces of about this size: one write per row would cost the server a
# system call (and a chunk header) per row.
PIECE_BYTES = 64 * 1024

RUN_HEADER = (
    *("run id", "orchestrator", "schedule", "vendor run id", "attempt", "status", "trigger"),
    *("build", "started at (UTC)", "finished at (UTC)", "duration (s)", "total", "passed"),
    *("failed", "other", "rerun of", "link"),
)
RESULT_HEADER = (
    *("result id", "case", "case id", "vendor result id", "status", "agent"),
    *("started at (UTC)", "finished at (UTC)", "duration (s)", "retries", "iterations"),
    *("message", "cause", "case link"),
)


class _Echo:
    """The file csv.writer writes to: it hands each line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


def cell(value: Any) -> Any:
    """A value as a CSV cell: times in UTC ISO 8601, durations in seconds, text made inert."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def absolute_link(request: HttpRequest, viewname: str) -> Callable[[int | None], str]:
    """The absolute URL of `viewname` for any pk, reversed once: reversing it per row would
    cost more than the row."""
    marker = 9_876_543_210
    url = request.build_absolute_uri(reverse(viewname, args=[marker]))
    head, _, tail = url.rpartition(str(marker))
    return lambda pk: "" if pk is None else f"{head}{pk}{tail}"


def run_rows(runs: Iterable[dict[str, Any]], link: Callable[[int], str]) -> Iterator[list]:
    """Rows under RUN_HEADER from selectors.run_history_export."""
    for run in runs:
        yield [
            *(run["id"], run["orchestrator__name"], run["schedule__title"], run["external_id"]),
            *(run["attempt"], run["status"], run["trigger"], run["build"], run["started_at"]),
            *(run["finished_at"], run["duration"], run["total_count"], run["passed_count"]),
            *(run["failed_count"], run["other_count"], run["rerun_of_id"], link(run["id"])),
        ]


def result_rows(results: Iterable[dict[str, Any]], link: Callable[[int], str]) -> Iterator[list]:
    """Rows under RESULT_HEADER from selectors.run_results_export."""
    for result in results:
        case = result["test_case__title"] or result["case_key"] or result["external_id"]
        yield [
            *(result["id"], case, result["test_case__external_id"] or result["case_key"]),
            *(result["external_id"], result["status"], result["agent__title"]),
            *(result["started_at"], result["finished_at"], result["duration"]),
            *(result["retry_count"], len(result["iterations"] or ()), result["message"]),
            *(result["cause"], link(result["test_case_id"])),
        ]


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header at once (before the query runs: the download starts), then the rows in
    pieces of about PIECE_BYTES."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    piece: list[str] = []
    size = 0
    for row in rows:
        line = writer.writerow([cell(value) for value in row])
        piece.append(line)
        size += len(line)
        if size >= PIECE_BYTES:
            yield "".join(piece)
            piece, size = [], 0
    if piece:
        yield "".join(piece)


def csv_response(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, name: str
) -> StreamingHttpResponse:
    """A streamed UTF-8 CSV download named `name`-<today>.csv."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    filename = f"{name}-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
