"""The Leapwork HTTP API: routes, AccessKey auth, error bodies, lookups by id, and the
schedule, run, run item and agent endpoints.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from runs.orchestrators.emulation import (
    EmulatorApp,
    HttpError,
    Request,
    Response,
    json_response,
)
from runs.orchestrators.leapwork.emulator.model import (
    FILTERS,
    ID,
    V4,
    VARIABLE_NAME,
    Agent,
    Item,
    Run,
    Schedule,
    with_ids,
)


class LeapworkApi(EmulatorApp):
    """Routes requests to handlers; part of LeapworkEmulator."""

    def authorize(self, request: Request) -> None:
        # Request.headers are lower-cased, so AccessKey and accessKey both land here.
        if self.credential and request.header("AccessKey") != self.credential:
            raise HttpError(self.error(401, "Authorization has been denied for this request."))

    def error(self, status: int, message: str) -> Response:
        return json_response({"$id": "1", "Message": message}, status)

    def _fail(self, status: int, message: str) -> HttpError:
        return HttpError(self.error(status, message))

    def _ok(self, body: Any) -> Response:
        return json_response(with_ids(body))

    # Lookups ---------------------------------------------------------------------------------

    def _schedule(self, schedule_id: str, *, deleted_ok: bool = False) -> Schedule:
        schedule = self.schedules.get(schedule_id)
        if schedule is None or (schedule.deleted and not deleted_ok):
            raise self._fail(404, f"Schedule with id '{schedule_id}' was not found.")
        return schedule

    def _run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise self._fail(404, f"Run with id '{run_id}' was not found.")
        return run

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise self._fail(404, f"Agent with id '{agent_id}' was not found.")
        return agent

    def _variables(self, request: Request, *, skip: frozenset[str] = frozenset()) -> dict[str, str]:
        """Schedule variables sent as query parameters; 400 when a name is invalid or duplicated."""
        found: dict[str, str] = {}
        for name, value in request.query_pairs:
            if name.lower() in skip:
                continue
            if not VARIABLE_NAME.match(name):
                raise self._fail(400, f"Variable name '{name}' is invalid.")
            if name in found:
                raise self._fail(400, f"Variable '{name}' is duplicated.")
            found[name] = value
        return found

    def routes(self) -> list[tuple[str, str, Any]]:
        table = [
            ("GET", f"{V4}/schedules", self.list_schedules),
            ("GET", f"{V4}/schedules/hierarchy", self.hierarchy),
            ("GET", f"{V4}/schedules/run/(?P<run_id>{ID})", self.schedule_of_run),
            (
                "GET",
                f"{V4}/schedules/(?P<schedule_id>{ID})/runIds(?:/(?P<filter_by>{ID}))?",
                self.run_ids,
            ),
            ("PUT", f"/api/v[34]/schedules/(?P<schedule_id>{ID})/runNow", self.run_now),
            ("GET", f"{V4}/schedules/(?P<run_id>{ID})/status", self.run_status),
            ("PUT", f"{V4}/schedules/(?P<run_id>{ID})/stop", self.stop),
            ("GET", f"{V4}/schedules/(?P<schedule_id>{ID})", self.get_schedule),
        ]
        if not self.legacy_forms:
            table += [
                ("GET", f"{V4}/run/(?P<run_id>{ID})/status", self.run_status),
                ("PUT", f"{V4}/run/(?P<run_id>{ID})/stop", self.stop),
            ]
        table += [
            ("GET", f"{V4}/run/(?P<run_id>{ID})", self.get_run),
            ("GET", f"/api/v[34]/run/(?P<run_id>{ID})/runItemIds", self.run_item_ids),
            ("GET", f"{V4}/runItems/(?P<item_id>{ID})", self.get_run_item),
            ("GET", f"{V4}/runItems/(?P<item_id>{ID})/keyframes", self.keyframes),
            ("PUT", f"/api/v3/run/(?P<run_id>{ID})/reRun", self.rerun),
            ("PUT", f"{V4}/run/(?P<run_id>{ID})/reRun/(?P<agent_id>{ID})", self.rerun),
            ("PUT", f"{V4}/run/(?P<run_id>{ID})/reRunOnAgents", self.rerun_on_agents),
            ("PUT", f"{V4}/flows/(?P<flow_id>{ID})/agent/(?P<agent_id>{ID})", self.run_flow),
            (
                "PUT",
                f"/api/v3/flows/(?P<flow_id>{ID})/environment/(?P<agent_id>{ID})",
                self.run_flow,
            ),
            ("GET", f"{V4}/agents", self.list_agents),
            ("GET", f"{V4}/agents/(?P<agent_id>{ID})", self.get_agent),
        ]
        return table

    # leapwork.md: list schedules
    def list_schedules(self, request: Request) -> Response:
        return self._ok([self._schedule_body(s) for s in self.schedules.values() if not s.deleted])

    # leapwork.md: one schedule
    def get_schedule(self, request: Request, schedule_id: str) -> Response:
        return self._ok(self._schedule_body(self._schedule(schedule_id)))

    # leapwork.md: schedule tree
    def hierarchy(self, request: Request) -> Response:
        nodes = []
        for schedule in self.schedules.values():
            if schedule.deleted:
                continue
            parents = []
            if schedule.folder:
                folder_id, folder_title = schedule.folder
                parents.append({"Id": folder_id, "Title": folder_title, "Type": "ScheduleFolder"})
            nodes.append(
                {
                    "ScheduleHierarchy": {
                        "Id": schedule.id,
                        "Title": schedule.title,
                        "Type": "ScheduleInfo",
                        "Parent": parents,
                    },
                    "ScheduleInfo": self._schedule_body(schedule),
                }
            )
        return self._ok(nodes)

    # leapwork.md: schedule of a run (the schedule of a Run Flow by Id run, even once deleted)
    def schedule_of_run(self, request: Request, run_id: str) -> Response:
        run = self._run(run_id)
        return self._ok(self._schedule_body(self._schedule(run.schedule_id, deleted_ok=True)))

    # leapwork.md: run ids of a schedule
    def run_ids(self, request: Request, schedule_id: str, filter_by: str | None) -> Response:
        schedule = self._schedule(schedule_id)
        filter_by = filter_by or "NoFilter"
        if filter_by not in FILTERS:
            raise self._fail(400, f"The value '{filter_by}' is not valid for filterBy.")
        raw = request.query.get("count", "0") or "0"
        try:
            count = int(raw)
        except ValueError:
            raise self._fail(400, f"The value '{raw}' is not valid for count.") from None
        runs = [run for run in self.runs.values() if run.schedule_id == schedule.id]
        runs.sort(key=lambda run: run.created, reverse=True)
        since = self._filter_start(filter_by, count)
        if since is not None:
            runs = [run for run in runs if run.created >= since]
        if count > 0 and filter_by != "LastDays":
            runs = runs[:count]
        return self._ok({"runIds": [run.id for run in runs]})

    def _filter_start(self, filter_by: str, count: int) -> datetime | None:
        now = self.now()
        local = now.astimezone(self.tz)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = {
            "LastMinute": now - timedelta(minutes=1),
            "LastHour": now - timedelta(hours=1),
            "LastDay": now - timedelta(days=1),
            "LastWeek": now - timedelta(days=7),
            "LastMonth": now - timedelta(days=30),
            "LastYear": now - timedelta(days=365),
            "ThisHour": local.replace(minute=0, second=0, microsecond=0),
            "ThisDay": day,
            "ThisWeek": day - timedelta(days=day.weekday()),
            "ThisMonth": day.replace(day=1),
            "ThisYear": day.replace(month=1, day=1),
            "LastDays": now - timedelta(days=max(count, 0)),
        }
        return starts.get(filter_by)

    # leapwork.md: run schedule now
    def run_now(self, request: Request, schedule_id: str) -> Response:
        schedule = self._schedule(schedule_id)
        sent = self._variables(request)
        # Only variables defined on the schedule apply; unknown names are ignored.
        applied = {name: value for name, value in sent.items() if name in schedule.variables}
        run = self._start_run(
            schedule,
            self._schedule_plan(schedule),
            created=self.now(),
            run_type="Manual",
            trigger="run_now",
            variables={**schedule.variables, **applied},
            variables_sent=sent,
        )
        return self._ok({"RunId": run.id})

    # leapwork.md: run status (both documented paths)
    def run_status(self, request: Request, run_id: str) -> Response:
        return self._ok({"Status": self._run(run_id).status})

    # leapwork.md: run
    def get_run(self, request: Request, run_id: str) -> Response:
        return self._ok(self._run_body(self._run(run_id)))

    # leapwork.md: run item ids
    def run_item_ids(self, request: Request, run_id: str) -> Response:
        key = "RunItemsIds" if self.legacy_forms else "RunItemIds"
        return self._ok({key: [item.id for item in self._run(run_id).items]})

    # leapwork.md: run item
    def get_run_item(self, request: Request, item_id: str) -> Response:
        return self._ok(self._item_body(self._item(item_id)))

    # leapwork.md: run item log
    def keyframes(self, request: Request, item_id: str) -> Response:
        return self._ok(self._keyframes(self._item(item_id)))

    def _item(self, item_id: str) -> Item:
        item = self.items.get(item_id)
        if item is None:
            raise self._fail(404, f"Run item with id '{item_id}' was not found.")
        return item

    # leapwork.md: stop a run (both documented paths)
    def stop(self, request: Request, run_id: str) -> Response:
        return self._ok({"OperationCompleted": self._stop(self._run(run_id))})

    # leapwork.md: re-run (v3 on the same agents, v4 on one agent)
    # leapwork.md: agents (?temporary=true for the temporary ones)
    def list_agents(self, request: Request) -> Response:
        temporary = request.query.get("temporary", "").lower() == "true"
        agents = [a for a in self.agents.values() if a.temporary == temporary]
        return self._ok([self._agent_body(agent) for agent in agents])

    # leapwork.md: one agent
    def get_agent(self, request: Request, agent_id: str) -> Response:
        return self._ok(self._agent_body(self._agent(agent_id)))
