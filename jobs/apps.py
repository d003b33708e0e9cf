from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        # The model-folder system check, and the actors declared to the broker in every process.
        from . import checks, tasks  # noqa: F401
