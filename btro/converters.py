"""`<id:…>` in a URL: an id from the outside, refused (a 404) when it cannot name anything.

PostgreSQL refuses a NUL in a string with an error, so such an id must never reach a query.
"""

from django.urls import register_converter
from django.urls.converters import StringConverter


class IdConverter(StringConverter):
    # No NUL, and nothing longer than any id, token or file name the platform makes.
    regex = r"[^/\x00]{1,200}"


register_converter(IdConverter, "id")
