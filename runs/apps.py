from django.apps import AppConfig


class RunsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "runs"
    verbose_name = "Runboard"

    def ready(self) -> None:
        # The tasks register their chains with runs.services.queue, which enqueues by name.
        from runs import tasks  # noqa: F401
