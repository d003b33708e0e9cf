"""The BTRO API from Python: `Client`, `AsyncClient`, `webhooks`, and the `btro` command line."""

from . import errors, webhooks
from ._async import AsyncClient, AsyncJob
from ._core import BtroObject, __version__
from ._sync import Client, Job
from .errors import (
    APIConnectionError,
    APIError,
    BtroError,
    JobCanceled,
    JobFailed,
    SignatureVerificationError,
    WaitTimeout,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AsyncJob",
    "BtroError",
    "BtroObject",
    "Client",
    "Job",
    "JobCanceled",
    "JobFailed",
    "SignatureVerificationError",
    "WaitTimeout",
    "__version__",
    "errors",
    "webhooks",
]
