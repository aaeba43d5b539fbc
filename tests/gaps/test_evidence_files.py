"""Evidence files are what they claim: PDF/PNG/JPEG by structure, text decoded whole, no markup."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from carehub.errors import DomainError
from gaps.care_gaps import GapEvidence, GapState
from gaps.workflow import close_gap
from tests.gaps.evidence_samples import image_bytes, jpeg_bytes, pdf_bytes, png_bytes
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]
IN_WINDOW = IN_MEASUREMENT_YEAR.date().replace(day=1)

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4


def note_straddling_byte_2048() -> bytes:
    # "é" is two bytes in UTF-8; put its first byte at index 2047 so a 2,048-byte prefix cuts it.
    return b"a" * 2047 + "é Colonoscopy done at Riverside GI, no findings.\n".encode()


ACCEPTED = {
    "pdf": (pdf_bytes, "application/pdf"),
    "png": (png_bytes, "image/png"),
    "jpeg": (jpeg_bytes, "image/jpeg"),
    "utf8-note-with-multibyte-at-byte-2048": (note_straddling_byte_2048, "text/plain"),
    "note-with-comparisons": (lambda: b"A1c <7 % and LDL < 100 mg/dL\r\n", "text/plain"),
}

REFUSED = {
    "html-renamed-pdf": (
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        "HTML, SVG or XML is not accepted",
    ),
    "svg-renamed-pdf": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
        "HTML, SVG or XML is not accepted",
    ),
    "xml-with-text-first": (
        b"Lab result follows\n<?xml version='1.0'?><result/>",
        "HTML, SVG or XML is not accepted",
    ),
    "ascii-then-elf-binary": (b"Lab result: negative\n" * 120 + ELF, "not UTF-8 text"),
    "text-with-nul": (b"negative\x00\x00\x01", "the text contains binary data"),
    "pdf-header-only": (b"%PDF-1.7\n...result...", "The PDF is damaged or incomplete"),
    "pdf-truncated": (pdf_bytes()[:-200], "The PDF is damaged or incomplete"),
    "png-header-then-junk": (b"\x89PNG\r\n\x1a\n" + b"x" * 100, "The PNG image is damaged"),
    "png-truncated": (png_bytes()[:-30], "The PNG image is damaged"),
    "png-then-elf": (png_bytes() + ELF, "Data follows the end of the PNG image"),
    "jpeg-header-then-junk": (b"\xff\xd8\xff\xe0" + b"x" * 100, "The JPEG image is damaged"),
    "jpeg-then-elf": (jpeg_bytes() + ELF, "Data follows the end of the JPEG image"),
    "windows-executable": (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\xff\xff", "PDF, PNG, JPEG"),
    "empty": (b"", "The attachment is empty"),
}


def close_with(patient, actor, payload: bytes, name: str = "result.pdf"):
    gap = CareGapFactory(patient=patient, state=GapState.COMPLETED)
    close_gap(
        gap,
        actor=actor,
        service_date=IN_WINDOW,
        evidence_kind="lab_result",
        attachment=SimpleUploadedFile(name, payload, content_type="application/pdf"),
    )
    return gap


@pytest.mark.parametrize("make, content_type", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_well_formed_files_are_accepted_with_their_real_type(
    patient_a, agent_a, settings, tmp_path, make, content_type
):
    settings.MEDIA_ROOT = tmp_path
    payload = make()
    gap = close_with(patient_a, agent_a, payload)
    evidence = GapEvidence.objects.get(gap=gap)
    assert evidence.attachment_type == content_type  # the content decides, not the name
    assert (tmp_path / evidence.attachment.name).read_bytes() == payload


@pytest.mark.parametrize("payload, message", REFUSED.values(), ids=REFUSED.keys())
def test_files_that_are_not_what_they_claim_are_refused(
    patient_a, agent_a, settings, tmp_path, payload, message
):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(DomainError, match=message):
        close_with(patient_a, agent_a, payload)
    assert not GapEvidence.objects.exists() and not (tmp_path / "evidence").exists()


def test_an_image_too_large_to_decode_safely_is_refused(patient_a, agent_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(DomainError, match="the limit is 60,000,000 pixels"):
        close_with(patient_a, agent_a, image_bytes("PNG", (10_000, 6_001), mode="1"))
