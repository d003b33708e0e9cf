"""Reading an upload: the body's framing checked first, its size counted as the bytes arrive."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers

from btro.errors import InvalidParameter, LengthRequired, UnsupportedMediaType, UploadTooLarge
from btro.errors.handlers import bad_body

# Room for the multipart boundaries and the small form fields around the file.
_FORM_OVERHEAD = 64 * 1024


class SizeLimitUploadHandler(FileUploadHandler):
    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.BTRO_MAX_UPLOAD_BYTES:
            raise UploadTooLarge()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _declared_length(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH") or "0"
    return int(value) if value.isascii() and value.isdigit() else None


def check_body_framing(request: HttpRequest) -> None:
    """A body the API can read: a Content-Length of digits, and a Content-Type."""
    if request.META.get("HTTP_TRANSFER_ENCODING", "identity").strip().lower() != "identity":
        # WSGI servers hand Django a chunked body without a length, which reads as empty.
        raise LengthRequired(
            "Send the body with a Content-Length header: chunked transfer encoding is not "
            "supported."
        )
    length = _declared_length(request)
    if length is None:
        raise InvalidParameter(
            f"The Content-Length header must be a number of bytes, not "
            f"'{request.META['CONTENT_LENGTH'][:40]}'."
        )
    if length and not request.content_type:
        raise UnsupportedMediaType("", "multipart/form-data or application/x-www-form-urlencoded")


def limit_upload_size(request: HttpRequest) -> None:
    """Check the declared length first, then count what actually arrives."""
    if (_declared_length(request) or 0) > settings.BTRO_MAX_UPLOAD_BYTES + _FORM_OVERHEAD:
        raise UploadTooLarge()
    request.upload_handlers = [SizeLimitUploadHandler(request), *request.upload_handlers]


class _NamedFilesParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str:
        # Django drops a part whose name cleans to nothing, then misreads the rest of the body.
        clean = super().sanitize_file_name(file_name)
        if clean is None:
            raise InvalidParameter(
                f"The file name {file_name!r} is not a file name: send the file's own name, "
                "such as 'track.mp3'.",
                param="file",
            )
        return clean


class UploadParser(parsers.MultiPartParser):
    """multipart/form-data, with Django's refusals as the API's errors."""

    def parse(self, stream, media_type=None, parser_context=None) -> parsers.DataAndFiles:
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            parser = _NamedFilesParser(meta, stream, request.upload_handlers, encoding)
            return parsers.DataAndFiles(*parser.parse())
        except MultiPartParserError as exc:
            raise bad_body(exc) or exc from None
