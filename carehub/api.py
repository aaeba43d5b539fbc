"""What every API endpoint shares: DomainError becomes a 4xx with its message."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from carehub.errors import DomainError
from carehub.safejson import UnsafeJSON, load_json


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"detail": str(exc)}, status=exc.status_code)
    return drf_exception_handler(exc, context)


class SafeJSONParser(JSONParser):
    """DRF's JSON parser through carehub.safejson: deep nesting is a 400 (it was a
    RecursionError, a 500), and NaN, NUL or lone surrogates never reach a service."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return load_json(stream.read() if stream is not None else b"")
        except UnsafeJSON as error:
            raise ParseError(f"JSON parse error - {error}") from None
