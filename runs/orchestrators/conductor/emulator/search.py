"""`GET /api/workflow/search`: the query language (AND/OR clauses, IN lists), sorting, and
the search summaries' shape.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runs.orchestrators.conductor.emulator.model import (
    MAX_SEARCH_SIZE,
    Execution,
    iso_ms,
    without_nulls,
)
from runs.orchestrators.emulation import (
    EmulatorApp,
    Request,
    Response,
    json_response,
)


class ConductorSearch(EmulatorApp):
    """Workflow search; part of ConductorEmulator."""

    # GET /api/workflow/search?start&size&sort&freeText&query
    def search(self, request: Request) -> Response:
        query = request.query
        start = self._int(query.get("start"), "start", 0)
        size = self._int(query.get("size"), "size", 100)
        if size > MAX_SEARCH_SIZE:
            raise self._error(
                400, f"Cannot return more than {MAX_SEARCH_SIZE} workflows. Please use pagination."
            )
        if start < 0 or size < 0:
            raise self._error(400, "start and size must not be negative")
        matcher = self._parse_query(query.get("query", ""))
        free_text = query.get("freeText", "*").strip()
        found = [
            self.executions[workflow_id]
            for workflow_id in self._order
            if matcher(self.executions[workflow_id].wf)
        ]
        if free_text and free_text != "*":
            found = [e for e in found if free_text.lower() in json.dumps(e.wf).lower()]
        for key, descending in reversed(self._parse_sort(query.get("sort", ""))):
            found.sort(key=lambda e, key=key: _sort_key(e.wf.get(key)), reverse=descending)
        page = found[start : start + size]
        return json_response({"totalHits": len(found), "results": [self.summary(e) for e in page]})

    def summary(self, execution: Execution) -> dict[str, Any]:
        wf = execution.wf
        end = wf["endTime"]
        return without_nulls(
            {
                "workflowType": wf["workflowName"],
                "version": wf["workflowVersion"],
                "workflowId": wf["workflowId"],
                "correlationId": wf.get("correlationId"),
                "startTime": iso_ms(wf["startTime"]),
                "updateTime": iso_ms(wf["updateTime"]),
                "endTime": iso_ms(end),
                "status": wf["status"],
                "input": json.dumps(wf["input"]),
                "output": json.dumps(wf["output"]),
                "reasonForIncompletion": wf.get("reasonForIncompletion"),
                "executionTime": end - wf["startTime"] if end else 0,
                "event": "",
                "failedReferenceTaskNames": ",".join(wf["failedReferenceTaskNames"]),
                "failedTaskNames": list(wf["failedTaskNames"]),
                "priority": wf.get("priority", 0),
                "createdBy": wf.get("createdBy"),
            }
        )

    _CLAUSE = re.compile(
        r"^\s*(?P<field>[A-Za-z]+)\s*(?P<op>=|!=|>=|<=|>|<|\s+IN\s+)\s*(?P<value>.+?)\s*$",
        re.IGNORECASE,
    )
    _FIELDS = {
        "workflowType": "workflowName",
        "workflowId": "workflowId",
        "status": "status",
        "correlationId": "correlationId",
        "version": "workflowVersion",
        "startTime": "startTime",
        "endTime": "endTime",
        "updateTime": "updateTime",
        "createdBy": "createdBy",
    }

    def _parse_query(self, text: str) -> Any:
        """`a = 'x' AND b > 1 OR c IN ('y','z')`: AND binds tighter than OR, no parentheses."""
        if not text.strip():
            return lambda wf: True
        alternatives = []
        for part in re.split(r"\s+OR\s+", text.strip(), flags=re.IGNORECASE):
            clauses = [self._clause(c) for c in re.split(r"\s+AND\s+", part, flags=re.IGNORECASE)]
            alternatives.append(clauses)
        return lambda wf: any(all(c(wf) for c in clauses) for clauses in alternatives)

    def _clause(self, text: str) -> Any:
        match = self._CLAUSE.match(text)
        if not match or match["field"] not in self._FIELDS:
            raise self._error(400, f"Invalid query: cannot parse '{text.strip()}'")
        key = self._FIELDS[match["field"]]
        op = match["op"].strip().upper()
        if op == "IN":
            inner = match["value"].strip()
            if not (inner.startswith("(") and inner.endswith(")")):
                raise self._error(400, f"Invalid query: cannot parse '{text.strip()}'")
            values = {self._literal(v, text) for v in inner[1:-1].split(",")}
            return lambda wf: wf.get(key) in values
        value = self._literal(match["value"], text)

        def test(wf: dict[str, Any]) -> bool:
            actual = wf.get(key)
            if op == "=":
                return actual == value
            if op == "!=":
                return actual != value
            if actual is None or type(actual) is not type(value):
                return False
            return {
                ">": actual > value,
                "<": actual < value,
                ">=": actual >= value,
                "<=": actual <= value,
            }[op]

        return test

    def _literal(self, raw: str, clause: str) -> Any:
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            return raw[1:-1]
        try:
            return int(raw)
        except ValueError as exc:
            raise self._error(400, f"Invalid query: cannot parse '{clause.strip()}'") from exc

    def _parse_sort(self, text: str) -> list[tuple[str, bool]]:
        keys = []
        for item in filter(None, (part.strip() for part in text.split(";"))):
            name, _, direction = item.partition(":")
            key = self._FIELDS.get(name.strip(), name.strip())
            if direction.strip().upper() not in ("", "ASC", "DESC"):
                raise self._error(400, f"Invalid sort order: {item}")
            keys.append((key, direction.strip().upper() == "DESC"))
        return keys


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))
