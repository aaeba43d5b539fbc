"""E-mail through Django's e-mail backends (EMAIL_BACKEND; SMTP in production).

The message carries our own Message-ID, which is also the attempt's provider id, so a bounce or
a complaint can be matched to the attempt. A copy of what was sent is kept in the store.
"""

from __future__ import annotations

import smtplib
import uuid

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone

from carehub.history import get_system_user, save_with_history
from outreach.backends import OutgoingMessage, SendFailed, SendReceipt, SendUncertain
from outreach.models import OutboundMessage


class DjangoEmailBackend:
    def send(self, message: OutgoingMessage) -> SendReceipt:
        domain = settings.CAREHUB_OUTREACH_FROM_EMAIL.rpartition("@")[2] or "carehub.local"
        provider_id = f"<{uuid.uuid4().hex}@{domain}>"
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.CAREHUB_OUTREACH_FROM_EMAIL,
            to=[message.to],
            headers={"Message-ID": provider_id},
        )
        try:
            with get_connection(fail_silently=False, timeout=settings.CAREHUB_SMTP_TIMEOUT) as c:
                c.send_messages([email])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
            raise SendFailed(f"refused by the mail server ({type(error).__name__})") from None
        except (ConnectionRefusedError, smtplib.SMTPConnectError) as error:
            raise SendFailed(f"mail server unreachable ({type(error).__name__})") from None
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # The conversation broke part-way: the server may have queued the message.
            raise SendUncertain(f"mail hand-over interrupted ({type(error).__name__})") from None
        save_with_history(
            OutboundMessage(
                organization_id=message.organization_id,
                patient_id=message.patient_id,
                attempt_id=message.attempt_id,
                channel=message.channel,
                to_address=message.to[:320],
                subject=message.subject[:200],
                body=message.body,
                provider_message_id=provider_id,
                created_at=timezone.now(),
            ),
            actor=get_system_user(),
            reason="e-mail handed to the mail server",
        )
        return SendReceipt(provider_message_id=provider_id)
