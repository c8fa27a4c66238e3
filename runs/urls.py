from django.urls import include, path

from runs import views

app_name = "runs"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("runs/", views.run_list, name="list"),
    path("runs/<int:pk>/", views.run_detail, name="detail"),
    path("go/<slug:orchestrator>/<path:external_id>", views.go, name="go"),
    path("", include("runs.rerun_urls")),
]
