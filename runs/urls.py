from __future__ import annotations

from django.urls import include, path

from runs import views

app_name = "runs"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("runs/", views.run_list, name="list"),
    path("runs/<int:pk>/", views.run_detail, name="detail"),
    path("runs/<int:pk>/poll/", views.run_poll, name="run_poll"),
    path("runs/<int:pk>/row/", views.run_row, name="run_row"),
    path("cases/<int:pk>/", views.test_case, name="test_case"),
    path("schedules/<int:pk>/", views.schedule, name="schedule"),
    path("agents/", views.agents, name="agents"),
    path("orchestrators/", views.orchestrators, name="orchestrators"),
    path("go/<slug:orchestrator>/<path:external_id>", views.go, name="go"),
    path("", include("runs.rerun_urls")),
]
