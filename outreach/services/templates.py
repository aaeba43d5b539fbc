"""Message templates: saved only after the content-class check (outreach.templating)."""

from __future__ import annotations

from django.db import transaction

from carehub.errors import DomainError
from carehub.history import save_with_history
from consent.models import Channel, ContentClass
from outreach.models import MessageTemplate, Purpose
from outreach.services.common import check_actor
from outreach.templating import check_template


@transaction.atomic
def save_template(
    organization,
    *,
    actor,
    name: str,
    purpose: str,
    channel: str,
    body: str,
    language: str = "en",
    content_class: str = ContentClass.GENERAL,
    subject: str = "",
    reason: str = "",
    template: MessageTemplate | None = None,
) -> MessageTemplate:
    check_actor(organization.pk, actor)
    if purpose not in Purpose.values:
        raise DomainError(f"Unknown purpose {purpose!r}")
    if channel not in Channel.values or channel == Channel.PHONE:
        raise DomainError(f"Templates are for portal, sms, email, voice or letter, not {channel!r}")
    check_template(channel=channel, content_class=content_class, subject=subject, body=body)
    if template is None:
        template = MessageTemplate(organization=organization)
    elif template.organization_id != organization.pk:
        raise DomainError("The template belongs to another organization")
    template.name = name
    template.purpose = purpose
    template.channel = channel
    template.language = language
    template.content_class = content_class
    template.subject = subject
    template.body = body
    save_with_history(template, actor=actor, reason=reason or "Template saved")
    return template
