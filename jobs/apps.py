from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the model-folder system check)
