"""Channel backends: one interface, chosen per channel in settings (CAREHUB_OUTREACH_BACKENDS).

A backend gets an `OutgoingMessage` (ids and the rendered text; the attempt row is already
claimed and committed) and either returns a `SendReceipt`, raises `SendFailed` (certainly not
sent: the attempt fails) or `SendUncertain` (maybe sent: the attempt becomes `unknown` and goes to
a person, never resent). Backends run outside any transaction, so what they store commits on its
own, and a worker killed after the hand-over leaves the attempt `sending` (it then times out to
`unknown`).

Agents' phone calls have no backend: the agent makes the call and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class OutgoingMessage:
    attempt_id: int
    organization_id: int
    patient_id: int
    channel: str
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str
    delivered: bool = False  # the channel confirmed delivery at once (e.g. the portal store)


class SendFailed(Exception):
    """The channel certainly did not take the message (refused address, nothing connected)."""


class SendUncertain(Exception):
    """The channel may have taken the message (a timeout after the hand-over began)."""


class ChannelBackend(Protocol):
    def send(self, message: OutgoingMessage) -> SendReceipt: ...


@cache
def _backend(path: str) -> ChannelBackend:
    try:
        return import_string(path)()
    except ImportError as error:
        raise ImproperlyConfigured(f"CAREHUB_OUTREACH_BACKENDS: cannot import {path!r}") from error


def get_backend(channel: str) -> ChannelBackend:
    try:
        path = settings.CAREHUB_OUTREACH_BACKENDS[channel]
    except KeyError:
        raise ImproperlyConfigured(
            f"CAREHUB_OUTREACH_BACKENDS has no backend for the {channel!r} channel"
        ) from None
    return _backend(path)
