"""Dramatiq middleware of the job workers. Loaded with the broker, before Django's apps are:
the services are imported when a hook runs."""

import dramatiq


class GracefulShutdown(dramatiq.Middleware):
    """A worker told to stop (SIGTERM: a deploy) lets the job in hand finish within
    BTRO_SHUTDOWN_GRACE_SECONDS, then hands it back to the queue (services.job_run)."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping(False)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping(True)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping(False)  # an in-process worker (`serve`, the tests) may start again


def _stopping(stopping: bool) -> None:
    from jobs.services import worker_stopping

    worker_stopping(stopping)
