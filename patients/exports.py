"""Patient list export (CSV). Reading only; the caller logs the export to the access log."""

import io
from collections.abc import Iterable, Iterator

from carehub import csvsafe
from patients.models import Patient

COLUMNS = [
    ("id", lambda p: p.pk),
    ("organization", lambda p: p.organization.slug),
    ("mrn", lambda p: p.mrn),
    ("family_name", lambda p: p.family_name),
    ("given_name", lambda p: p.given_name),
    ("birth_date", lambda p: p.birth_date.isoformat()),
    ("sex", lambda p: p.sex),
    ("status", lambda p: p.status),
    ("phone", lambda p: p.phone),
    ("email", lambda p: p.email),
    ("attributed_site", lambda p: p.attributed_site.code if p.attributed_site else ""),
    (
        "attributed_provider_npi",
        lambda p: p.attributed_provider.npi if p.attributed_provider else "",
    ),
    ("payer_program", lambda p: p.payer_program.code if p.payer_program else ""),
    ("member_id", lambda p: p.member_id),
]


def patients_csv(patients: Iterable[Patient]) -> Iterator[str]:
    """CSV lines of the given patients (an iterator, so large exports stream)."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow([name for name, _ in COLUMNS])
    for patient in patients:
        writer.writerow([value(patient) for _, value in COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
