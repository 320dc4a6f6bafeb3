"""The patient link's QR code (PyPI segno) and printable one-page letter (WeasyPrint): no
patient name or address is on either; the site team adds the patient's name by hand or
posts it in its own envelope."""

from __future__ import annotations

from typing import Any

import segno

from services.forms.pages import ENV


def qr_svg(url: str) -> str:
    """An inline SVG QR code of `url` (inline: the strict CSP allows no remote images)."""
    qr = segno.make(url, error="m")
    svg: str = qr.svg_inline(scale=4, title="QR code that opens the questionnaire", omitsize=True)
    return svg


def letter_document(url: str, closes: str) -> Any:
    """The letter laid out (a WeasyPrint document: `.pages`, `.write_pdf()`): what the
    questionnaire is, the link, its QR code, the date it closes."""
    from weasyprint import HTML

    html = ENV.get_template("letter.html").render(url=url, qr=qr_svg(url), closes=closes)
    return HTML(string=html).render()


def letter_pdf(url: str, closes: str) -> bytes:
    """The letter as PDF bytes."""
    pdf: bytes = letter_document(url, closes).write_pdf()
    return pdf


async def warm_up() -> None:
    """Render one letter in a worker thread at start-up: WeasyPrint loads its fonts and
    styles on first use (about a second), so no site team waits for that."""
    import asyncio

    await asyncio.to_thread(letter_pdf, "https://example.invalid/p/warm-up", "2026-01-01")
