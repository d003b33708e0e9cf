from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # The delivery actor declared to the broker in every process.
        from . import tasks  # noqa: F401
