"""URLs of the rerun forms and requests, included into runs.urls (namespace `runs`)."""

from __future__ import annotations

from django.urls import path

from runs import rerun_views

urlpatterns = [
    path("runs/<int:pk>/rerun/", rerun_views.rerun, name="rerun"),
    path("schedules/<int:pk>/run-now/", rerun_views.run_now, name="run_now"),
    path("runs/<int:pk>/reruns/", rerun_views.run_reruns, name="run_reruns"),
    path("reruns/<int:pk>/", rerun_views.rerun_request_detail, name="rerun_request"),
    path("orchestrators/track/", rerun_views.track_run, name="track_run"),
    path(
        "orchestrators/connect/", rerun_views.orchestrator_connect_view, name="orchestrator_connect"
    ),
]
