from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class RunsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "runs"
    verbose_name = "Runboard"

    def ready(self) -> None:
        from runs import tasks  # noqa: F401  (they register their chains with runs.services.queue)
        from runs.models import Agent, Orchestrator, Schedule

        # An edit of the catalog (the admin, connect) changes what the history pages show.
        for model in (Orchestrator, Schedule, Agent):
            uid = f"revision-{model._meta.label}"
            post_save.connect(_catalog_changed, sender=model, dispatch_uid=f"{uid}-save")
            post_delete.connect(_catalog_changed, sender=model, dispatch_uid=f"{uid}-delete")


def _catalog_changed(**kwargs: object) -> None:
    from runs.services.revision import revision_bump

    revision_bump(catalog=True)
