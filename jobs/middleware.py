"""Dramatiq middleware of the job workers. Loaded with the broker, before Django's apps are:
the services are imported when a hook runs."""

import dramatiq
import dramatiq.worker


class GracefulShutdown(dramatiq.Middleware):
    """A worker told to stop (SIGTERM: a deploy) lets the job in hand finish within
    BTRO_SHUTDOWN_GRACE_SECONDS, then hands it back to the queue (services.job_run)."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping(False)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping(True)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping(False)  # an in-process worker (`serve`, the tests) may start again


class PrefetchPerThread(dramatiq.Middleware):
    """A worker takes from each queue only as many messages as it has threads, not Dramatiq's
    twice as many: a message a busy worker holds waits behind its job (minutes, on demucs)
    while another worker idles, and on Redis it is stranded with a worker killed outright
    until BTRO_REQUEUE_SECONDS. Queued jobs wait in the broker, where any free worker takes
    them. Dramatiq's own `dramatiq_queue_prefetch`, where set, still decides."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not dramatiq.worker.QUEUE_PREFETCH:
            worker.queue_prefetch = worker.worker_threads


def _stopping(stopping: bool) -> None:
    from jobs.services import worker_stopping

    worker_stopping(stopping)
