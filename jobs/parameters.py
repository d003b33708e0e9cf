"""Strict parameters: every /v1 action declares what it accepts, and refuses anything else.

An unknown parameter is a 400 `invalid_parameter` naming it ("Received unknown parameter:
tierr"), as Stripe does, so a typo never looks like success. One declaration feeds the
OpenAPI document, the body parsers and the check, so the three cannot disagree.

How an action declares its parameters (a new route needs nothing else):

    class WidgetViewSet(ApiViewSet):               # or StrictParameters in an APIView's bases
        @extend_schema(responses=WidgetSerializer, summary="List widgets")
        @accepts(query=WidgetListQuerySerializer)  # the query string's names: its fields
        def list(self, request): ...

        @extend_schema(responses={201: WidgetSerializer}, summary="Create a widget")
        @accepts(body=WidgetCreateSerializer)      # the body's fields (form or multipart)
        @idempotent
        def create(self, request): ...

- An action without `@accepts` (or with `@accepts()`) takes no parameter at all: a POST
  such as `/cancel` documents no body and refuses any field.
- Field names are the parameters' names. A `DictField` takes Stripe's bracket form,
  `metadata[key]=value` (and `metadata=` alone, empty, to clear it); a `ListField` takes
  `name[]=a&name[]=b` as well as a repeated `name` (the view reads both); a field named `a__b`
  in a `BracketNames` serializer is the parameter `a[b]` (`created[gte]`).
- `media_types` picks the body's encodings (form and multipart by default); the parsers
  follow it, so another Content-Type is a 415 that names the accepted ones.
- Headers (`Authorization`, `Idempotency-Key`) are not parameters and are not checked.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework import parsers, serializers, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from btro.errors import InvalidParameter, PayloadTooLarge
from btro.errors.handlers import TOO_LARGE

from .throttles import ThrottledByAction
from .uploads import UploadParser, check_body_framing, limit_upload_size

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_BRACKETS = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")
Action = TypeVar("Action", bound=Callable[..., Any])


class FormParser(parsers.FormParser):
    """application/x-www-form-urlencoded, read no further than Django reads a form."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream else b""
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge(TOO_LARGE)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        return QueryDict(body, encoding=encoding)  # immutable, as DRF's


PARSERS: dict[str, type[parsers.BaseParser]] = {MULTIPART: UploadParser, FORM: FormParser}


@dataclass(frozen=True)
class Accepts:
    query: type[serializers.Serializer] | None = None
    body: type[serializers.Serializer] | None = None
    media_types: tuple[str, ...] = (FORM, MULTIPART)


NOTHING = Accepts()


def accepts(
    *,
    query: type[serializers.Serializer] | None = None,
    body: type[serializers.Serializer] | None = None,
    media_types: tuple[str, ...] = (FORM, MULTIPART),
    documented: Mapping[str, type[serializers.Serializer]] | None = None,
) -> Callable[[Action], Action]:
    """Declare an action's query and body parameters: documented, parsed and enforced.
    `documented` gives a media type its own schema in the document where it takes fewer
    fields than `body` (a URL-encoded form has no file); `body` is still what is enforced."""
    declared = Accepts(query, body, media_types)
    schemas = {m: (documented or {}).get(m, body) for m in media_types}

    def declare(action: Action) -> Action:
        schema: dict[str, Any] = {"request": schemas if body else None}
        if query:
            schema["parameters"] = [query]
        action = extend_schema(**schema)(action)
        action.accepts = declared  # type: ignore[attr-defined]
        return action

    return declare


class BracketNames(serializers.Serializer):
    """A serializer whose field `a__b` is the parameter `a[b]`, validated as `a__b`."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {}
        for name, field in super().get_fields().items():
            if "__" in name:
                field.source = name
                name = "{}[{}]".format(*name.split("__", 1))
            fields[name] = field
        return fields


def _unknown(name: str, known: Iterable[str]) -> InvalidParameter:
    name = name[:100]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    return InvalidParameter(f"Received unknown parameter: {name}.{hint}", param=name)


def refuse_unknown(
    params: Mapping[str, Any], serializer: type[serializers.Serializer] | None
) -> None:
    """A 400 for the first parameter the serializer does not declare (see the module doc)."""
    fields = serializer().fields if serializer else {}
    for name in params:
        if name in fields:
            if isinstance(fields[name], serializers.DictField) and params[name] != "":
                raise InvalidParameter(
                    f"Send {name} as {name}[key]=value pairs ({name}= alone, empty, clears it).",
                    param=name,
                )
            continue
        bracket = _BRACKETS.match(name)
        if bracket and isinstance(fields.get(bracket[1]), serializers.DictField):
            continue
        if bracket and not bracket[2] and isinstance(fields.get(bracket[1]), serializers.ListField):
            continue  # Stripe's array form, `events[]=a&events[]=b`
        raise _unknown(name, fields)


def bracket_values(params: Mapping[str, Any], name: str) -> tuple[dict[str, Any], bool]:
    """The `name[key]=value` pairs of a form, and whether `name=` (empty) asked to clear."""
    pairs = {}
    for param in params:
        bracket = _BRACKETS.match(param)
        if bracket and bracket[1] == name:
            pairs[bracket[2]] = params[param]
    return pairs, name in params


# Refuses what the handler's `@accepts` does not declare (see the module doc). Comments, not
# docstrings, on these bases: drf-spectacular would describe every operation with them.
class StrictParameters(APIView):
    def declared_parameters(self) -> Accepts | None:
        """The handler's declaration; None when the method has no handler (a 405 follows)."""
        request = getattr(self, "request", None)  # None while drf-spectacular inspects
        method = (getattr(request, "method", None) or "").lower()
        # A viewset maps each of its methods to its action's handler (ViewSetMixin.as_view).
        handler = getattr(self, method, None) if method else None
        return None if handler is None else getattr(handler, "accepts", NOTHING)

    def get_parsers(self) -> list[parsers.BaseParser]:
        declared = self.declared_parameters()
        if declared is None:
            return super().get_parsers()
        return [PARSERS[media_type]() for media_type in declared.media_types]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        declared = self.declared_parameters()
        if declared is None:
            return
        refuse_unknown(request.query_params, declared.query)
        if request.method in SAFE_METHODS:
            return
        check_body_framing(request._request)  # before anything reads the body
        limit_upload_size(request._request)
        refuse_unknown(request.data, declared.body)


# The base of every /v1 viewset: strict parameters and per-action throttles.
class ApiViewSet(StrictParameters, ThrottledByAction, viewsets.ViewSet):
    pass
