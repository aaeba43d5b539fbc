"""A minimal PDF writer for letter batches: one letter per page, Helvetica, plain text.

Letters are a few lines of plain text; the PDF 1.4 objects needed for that (catalog, pages,
one font, one content stream per page, the cross-reference table) fit in this module, so the
project needs no PDF library. Text is encoded in WinAnsi (cp1252, the standard fonts' encoding);
a character outside it prints as '?'.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, points
MARGIN = 72
FONT_SIZE = 11
LEADING = 15
WRAP = 90


def _escape(line: str) -> bytes:
    raw = line.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _lines(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, WRAP) or [""]
    return lines


def _content(text: str) -> bytes:
    max_lines = (PAGE_HEIGHT - 2 * MARGIN) // LEADING
    parts = [b"BT", f"/F1 {FONT_SIZE} Tf {LEADING} TL".encode()]
    parts.append(f"{MARGIN} {PAGE_HEIGHT - MARGIN} Td".encode())
    for line in _lines(text)[:max_lines]:
        parts.append(b"(" + _escape(line) + b") Tj T*")
    parts.append(b"ET")
    return b"\n".join(parts)


def letters_pdf(pages: Sequence[str]) -> bytes:
    """A PDF with one page per text."""
    if not pages:
        raise ValueError("A letter batch needs at least one letter")
    objects: list[bytes] = []
    # 1 catalog, 2 pages, 3 font, then (page, content) pairs.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for i, text in enumerate(pages):
        content = _content(text)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)
