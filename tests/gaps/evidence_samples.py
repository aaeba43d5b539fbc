"""Real evidence files made at test time: a one-page PDF (fpdf2), PNG and JPEG (Pillow)."""

import io

from fpdf import FPDF
from PIL import Image


def pdf_bytes(text: str = "HbA1c 6.8 % on 2026-03-01") -> bytes:
    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(text=text)
    return bytes(document.output())


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=kind)
    return buffer.getvalue()


def png_bytes() -> bytes:
    return image_bytes("PNG")


def jpeg_bytes() -> bytes:
    return image_bytes("JPEG")
