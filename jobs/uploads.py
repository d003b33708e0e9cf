"""Refuse oversized uploads as the bytes arrive, never holding the whole body."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from btro.errors import PayloadTooLarge

# Room for the multipart boundaries and the small form fields around the file.
_FORM_OVERHEAD = 64 * 1024


def too_large() -> PayloadTooLarge:
    limit = settings.BTRO_MAX_UPLOAD_BYTES
    return PayloadTooLarge(f"The file is larger than the {limit // 2**20} MB limit.", param="file")


class SizeLimitUploadHandler(FileUploadHandler):
    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.BTRO_MAX_UPLOAD_BYTES:
            raise too_large()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def limit_upload_size(request: HttpRequest) -> None:
    """Check the declared length first, then count what actually arrives."""
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.BTRO_MAX_UPLOAD_BYTES + _FORM_OVERHEAD:
        raise too_large()
    request.upload_handlers.insert(0, SizeLimitUploadHandler(request))
