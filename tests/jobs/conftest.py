import dramatiq
import pytest


@pytest.fixture
def worker(settings):
    """An in-process Dramatiq worker on the StubBroker; yields the broker."""
    settings.BTRO_JOB_MAX_ATTEMPTS = 2
    broker = dramatiq.get_broker()
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()
