"""The SMS gateway's webhooks: delivery status and inbound messages, signed with HMAC-SHA256.

The gateway sends JSON and the header `X-CareHub-Signature: sha256=<hex>`, the HMAC-SHA256 of
the raw body with CAREHUB_SMS_WEBHOOK_SECRET. An unsigned, wrongly signed or malformed request is
refused (401/400) and changes nothing; without a configured secret every request is refused.

    POST /webhooks/sms/status   {"message_id": "...", "status": "delivered"|"failed"|"undelivered",
                                 "at": "2026-03-01T10:00:00Z"}
    POST /webhooks/sms/inbound  {"from": "+16175550100", "body": "STOP", "at": "..."}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carehub.errors import DomainError
from carehub.safejson import UnsafeJSON, load_json
from outreach.services.inbound import receive_sms
from outreach.services.outbox import record_delivery_status

MAX_BODY = 16 * 1024
STATUSES = {"delivered": "delivered", "failed": "failed", "undelivered": "failed"}


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verified_payload(request: HttpRequest) -> tuple[dict | None, JsonResponse | None]:
    secret = settings.CAREHUB_SMS_WEBHOOK_SECRET
    body = request.body[: MAX_BODY + 1]
    if len(body) > MAX_BODY:
        return None, JsonResponse({"error": "body too large"}, status=413)
    given = request.headers.get("X-CareHub-Signature", "")
    if not secret or not hmac.compare_digest(given, signature(body, secret)):
        return None, JsonResponse({"error": "bad or missing signature"}, status=401)
    try:
        # The safe loader: a NUL or a lone surrogate in a message body would otherwise reach
        # PostgreSQL text columns and fail there, after the signature was accepted.
        payload = load_json(body)
    except UnsafeJSON as error:
        return None, JsonResponse(
            {"error": f"body is not JSON CareHub can take: {error}"}, status=400
        )
    if not isinstance(payload, dict):
        return None, JsonResponse({"error": "body must be a JSON object"}, status=400)
    return payload, None


def _time(payload: dict) -> dt.datetime | None:
    raw = payload.get("at")
    if raw is None:
        return timezone.now()
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None or timezone.is_naive(parsed):
        return None
    return parsed


def _field(payload: dict, name: str, limit: int) -> str | None:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value


@csrf_exempt
@require_POST
def sms_status(request: HttpRequest) -> JsonResponse:
    payload, refusal = _verified_payload(request)
    if refusal:
        return refusal
    message_id = _field(payload, "message_id", 100)
    status = STATUSES.get(payload.get("status"))
    at = _time(payload)
    if message_id is None or status is None or at is None:
        return JsonResponse(
            {"error": "need message_id, status (delivered|failed|undelivered), aware 'at'"},
            status=400,
        )
    if not record_delivery_status(message_id, status=status, at=at):
        return JsonResponse({"error": "unknown message_id"}, status=404)
    return JsonResponse({"ok": True})


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> JsonResponse:
    payload, refusal = _verified_payload(request)
    if refusal:
        return refusal
    sender = _field(payload, "from", 32)
    body = _field(payload, "body", 1600)
    at = _time(payload)
    if sender is None or body is None or at is None:
        return JsonResponse({"error": "need from, body and an aware 'at'"}, status=400)
    try:
        result = receive_sms(sender, body, at)
    except DomainError as error:
        return JsonResponse({"error": str(error)}, status=400)
    # The replies go back through the gateway; no patient ids or names in the answer.
    return JsonResponse({"ok": True, "keyword": result.keyword, "replies": result.replies})
