"""What an evidence file must be: a PDF, PNG or JPEG that parses whole, or UTF-8 plain text.

The declared content type and the file name are not trusted; neither are the first bytes
alone (HTML renamed `.pdf` passed as text, a PNG header before an executable passed as an
image). So each kind is checked by its structure:

- PDF by pypdf in strict mode: header, cross-reference table, trailer, `%%EOF`, a page tree
  with at least one page; encrypted files are refused (a reviewer could not open them).
- PNG and JPEG by Pillow: the whole image decodes (chunk CRCs, no truncation), the size is
  sane, and nothing follows the IEND chunk or the EOI marker (no file hidden behind an image).
- Text by decoding the whole file as UTF-8 (not a prefix, which cut multibyte characters at
  the boundary and let binary through after it), without control characters, and without
  HTML/SVG/XML markup, which a browser would render rather than show.
"""

from __future__ import annotations

import io
import logging
import re

from PIL import Image
from pypdf import PdfReader

from carehub.errors import DomainError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC
JPEG_END = b"\xff\xd9"
# A scanned page at 600 dpi is ~35 megapixels; more is a decompression bomb, not evidence.
MAX_IMAGE_PIXELS = 60_000_000
# Control characters other than tab, newline, form feed and carriage return mean binary data.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# A tag opener: `<html`, `<svg`, `</p`, `<?xml`, `<!DOCTYPE`. "A1c <7" or "x < y" are not.
_MARKUP = re.compile(r"<[!?/]?[A-Za-z]")

NOT_A_KNOWN_KIND = "The attachment must be a PDF, PNG, JPEG or plain-text file"


def content_type_of(data: bytes) -> str:
    """The file's content type when it is a whole, well-formed PDF/PNG/JPEG/text; else raises."""
    if not data:
        raise DomainError("The attachment is empty")
    if data.startswith(b"%PDF-"):
        _check_pdf(data)
        return "application/pdf"
    if data.startswith(PNG_MAGIC):
        _check_image(data, "PNG", data.endswith(PNG_END))
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        _check_image(data, "JPEG", data.rstrip(b"\x00").endswith(JPEG_END))
        return "image/jpeg"
    _check_text(data)
    return "text/plain"


def _check_pdf(data: bytes) -> None:
    try:
        reader = PdfReader(io.BytesIO(data), strict=True)
        if reader.is_encrypted:
            raise DomainError("The PDF is password-protected; attach an unprotected copy")
        pages = len(reader.pages)
    except DomainError:
        raise
    except Exception as error:  # pypdf raises many types on damaged input; all mean the same
        logging.getLogger(__name__).info("evidence PDF refused: %s", type(error).__name__)
        raise DomainError("The PDF is damaged or incomplete (it does not parse)") from None
    if pages < 1:
        raise DomainError("The PDF has no pages")


def _check_image(data: bytes, kind: str, ends_cleanly: bool) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != kind:
                raise DomainError(f"The file starts like a {kind} image but is not one")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise DomainError(
                    f"The image is {image.width}x{image.height} pixels; the limit is "
                    f"{MAX_IMAGE_PIXELS:,} pixels"
                )
            image.verify()  # chunk structure and CRCs
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes every pixel: truncated or corrupt data fails here
    except DomainError:
        raise
    except Exception:  # Pillow's errors on damaged data (OSError, SyntaxError, ValueError…)
        raise DomainError(f"The {kind} image is damaged or truncated") from None
    if not ends_cleanly:
        raise DomainError(f"Data follows the end of the {kind} image; attach the image alone")


def _check_text(data: bytes) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DomainError(
            f"{NOT_A_KNOWN_KIND} (it is not UTF-8 text: byte {error.start:,})"
        ) from None
    if _BINARY.search(text):
        raise DomainError(f"{NOT_A_KNOWN_KIND} (the text contains binary data)")
    if _MARKUP.search(text):
        raise DomainError(
            "HTML, SVG or XML is not accepted as evidence; print it to PDF or attach plain text"
        )
