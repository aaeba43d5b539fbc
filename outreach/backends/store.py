"""The default backends: the message is stored in the database and a line is logged (no network).

The portal reads its messages from this store (delivered at once); texts, automated calls and
letters wait here for a gateway adapter or the printer. The log line names ids only, never the
text or the number (PHI).
"""

from __future__ import annotations

import logging
import uuid

from django.utils import timezone

from carehub.history import get_system_user, save_with_history
from outreach.backends import OutgoingMessage, SendReceipt
from outreach.models import OutboundMessage

logger = logging.getLogger("outreach.backends")


class StoreBackend:
    delivered_at_once = False

    def send(self, message: OutgoingMessage) -> SendReceipt:
        provider_id = f"{message.channel}-{uuid.uuid4().hex}"
        stored = OutboundMessage(
            organization_id=message.organization_id,
            patient_id=message.patient_id,
            attempt_id=message.attempt_id,
            channel=message.channel,
            to_address=message.to[:320],
            subject=message.subject[:200],
            body=message.body,
            provider_message_id=provider_id,
            delivery=(
                OutboundMessage.Delivery.DELIVERED
                if self.delivered_at_once
                else OutboundMessage.Delivery.ACCEPTED
            ),
            created_at=timezone.now(),
        )
        save_with_history(stored, actor=get_system_user(), reason=f"{message.channel} handed over")
        logger.info(
            "outreach %s stored: attempt=%s message=%s",
            message.channel,
            message.attempt_id,
            provider_id,
        )
        return SendReceipt(provider_message_id=provider_id, delivered=self.delivered_at_once)


class PortalStoreBackend(StoreBackend):
    """Messages for the patient portal: stored here is delivered (the portal reads this store)."""

    delivered_at_once = True


class SmsStoreBackend(StoreBackend):
    """Texts: stored and logged; a gateway adapter replaces it and reports by the webhook."""


class VoiceStoreBackend(StoreBackend):
    """Automated calls: stored for the dialler."""


class LetterBatchBackend(StoreBackend):
    """Letters: stored until staff print a batch (outreach.services.letters makes the PDF)."""
