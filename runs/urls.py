from __future__ import annotations

from django.urls import path

from runs.views import cases, exports, failures, history, orchestrators, reruns, runs, tokens

app_name = "runs"

urlpatterns = [
    path("", history.overview, name="overview"),
    path("runs/", history.run_list, name="list"),
    path("runs/export.csv", exports.run_list_csv, name="list_csv"),
    path("runs/<int:pk>/row/", history.run_row, name="run_row"),
    path("agents/", history.agents, name="agents"),
    path("failures/", failures.failure_groups, name="failure_groups"),
    path("failures/<int:pk>/", failures.failure_group, name="failure_group"),
    path("failures/<int:pk>/mute/", failures.failure_group_mute, name="failure_group_mute"),
    path("failures/<int:pk>/rerun/", failures.cause_rerun, name="cause_rerun"),
    path(
        "failures/<int:pk>/mutes/<int:mute>/lift/",
        failures.failure_mute_lift,
        name="failure_mute_lift",
    ),
    path("runs/<int:pk>/", runs.run_detail, name="detail"),
    path("runs/<int:pk>/results.csv", exports.run_results_csv, name="results_csv"),
    path("runs/<int:pk>/poll/", runs.run_poll, name="run_poll"),
    path("runs/<int:pk>/reruns/", runs.run_reruns, name="run_reruns"),
    path("go/<slug:orchestrator>/<path:external_id>", runs.go, name="go"),
    path("cases/<int:pk>/", cases.test_case, name="test_case"),
    path("schedules/<int:pk>/", cases.schedule, name="schedule"),
    path("runs/<int:pk>/rerun/", reruns.rerun, name="rerun"),
    path("schedules/<int:pk>/run-now/", reruns.run_now, name="run_now"),
    path("reruns/<int:pk>/", reruns.rerun_request_detail, name="rerun_request"),
    path("reruns/<int:pk>/check/", reruns.rerun_check, name="rerun_check"),
    path("tokens/", tokens.api_tokens, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", tokens.api_token_revoke_view, name="api_token_revoke"),
    path("orchestrators/", orchestrators.orchestrators, name="orchestrators"),
    path("orchestrators/track/", orchestrators.track_run, name="track_run"),
    path(
        "orchestrators/connect/",
        orchestrators.orchestrator_connect_view,
        name="orchestrator_connect",
    ),
]
