"""What every API endpoint shares: DomainError becomes a 4xx with its message."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from carehub.errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"detail": str(exc)}, status=exc.status_code)
    return drf_exception_handler(exc, context)
