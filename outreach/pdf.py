"""Letter batches as one printable PDF: each letter starts on its own page, plain text.

Drawn with fpdf2, the PDF library the auditor's packet already uses: page breaks, wrapping and
font encoding are its job, so a long letter continues on a next page instead of being cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF


def _core_font_text(text: str) -> str:
    # The core fonts speak Latin-1; anything else prints as '?' rather than failing the batch.
    return text.replace("\u2014", "-").encode("latin-1", "replace").decode("latin-1")


def letters_pdf(pages: Sequence[str]) -> bytes:
    """A PDF with one letter per page (a letter longer than a page runs on to the next)."""
    if not pages:
        raise ValueError("A letter batch needs at least one letter")
    pdf = FPDF(format="Letter", unit="pt")
    pdf.set_margins(72, 72, 72)
    pdf.set_auto_page_break(auto=True, margin=72)
    pdf.set_title("Letters")
    pdf.set_author("CareHub")
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 15, _core_font_text(text))
    return bytes(pdf.output())
