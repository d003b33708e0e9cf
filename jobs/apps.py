from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        # The model-folder system check, and the actors declared to the broker in every process.
        from btro.health import readiness_fact

        from . import checks, tasks  # noqa: F401
        from .engines import engine_choices

        # GET /readyz says which engine each tier runs, and why.
        readiness_fact(
            "engines",
            lambda: {tier: choice._asdict() for tier, choice in engine_choices().items()},
        )
