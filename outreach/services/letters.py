"""Letter batches: the letters handed to the letter backend, printed together as one PDF."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import bulk_update_with_history, save_with_history
from consent.models import Channel
from outreach.models import LetterBatch, OutboundMessage
from outreach.pdf import letters_pdf
from outreach.services.common import check_actor

MAX_LETTERS = 500


@transaction.atomic
def build_letter_batch(organization, *, actor) -> LetterBatch:
    check_actor(organization.pk, actor)
    letters = list(
        OutboundMessage.objects.select_for_update()
        .filter(organization=organization, channel=Channel.LETTER, letter_batch__isnull=True)
        .order_by("created_at", "id")[:MAX_LETTERS]
    )
    if not letters:
        raise DomainError("No letters are waiting to be printed")
    pages = [f"{letter.to_address}\n\n{letter.body}" for letter in letters]
    batch = LetterBatch(
        organization=organization,
        created_by=actor,
        created_at=timezone.now(),
        letter_count=len(letters),
        pdf=letters_pdf(pages),
    )
    save_with_history(batch, actor=actor, reason=f"{len(letters)} letters to print")
    for letter in letters:
        letter.letter_batch = batch
    bulk_update_with_history(letters, ["letter_batch"], actor=actor, reason=f"Printed in {batch}")
    return batch
