"""Phone numbers: E.164 normalization and an indexable digits-only form for matching.

Patient phones arrive in whatever format the EHR used ("(617) 555-0123", "617.555.0123",
"+1 617 555 0123"). Sending needs E.164; matching an inbound text to patients needs a lookup that
works on a million rows, so the digits-only expression below is indexed (patient_phone_digits)
and queried in exactly the same form.
"""

from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Replace

_SEPARATORS = (" ", "-", "(", ")", ".", "+", "/")


def phone_digits_expression():
    expression = F("phone")
    for separator in _SEPARATORS:
        expression = Replace(expression, Value(separator), Value(""))
    return expression


@lru_cache(maxsize=65536)
def normalize_phone(raw: str) -> str | None:
    """The E.164 form of a dialable number, or None when it cannot be one."""
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, settings.CAREHUB_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def digit_variants(e164: str) -> list[str]:
    """The digits-only forms a stored number may take: with and without the country code."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    return [f"{number.country_code}{national}", national]


def mask_phone(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"•••-•••-{digits[-4:]}" if len(digits) >= 4 else ""
