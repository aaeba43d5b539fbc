"""Exports for auditors: the access log, a user's activity and a patient timeline as CSV, JSON or
a printable PDF packet. Every CSV cell goes through carehub.csvsafe, the spreadsheet formula
guard of every CSV the product writes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence

from django.utils import timezone
from fpdf import FPDF
from fpdf.fonts import FontFace

from audit.timeline import Event
from carehub import csvsafe


def csv_lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """CSV text line by line, so large exports stream."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


EVENT_COLUMNS = ("at", "kind", "record", "action", "actor", "path", "changes", "reason")


def events_csv(events: Iterable[Event]) -> Iterator[str]:
    return csv_lines(
        EVENT_COLUMNS,
        (
            (
                e.at.isoformat(),
                e.kind,
                e.record,
                e.action,
                e.actor,
                e.path,
                json.dumps([list(c) for c in e.changes]) if e.changes else "",
                e.reason,
            )
            for e in events
        ),
    )


def events_json(events: Iterable[Event], *, subject: dict) -> str:
    return json.dumps(
        {
            "subject": subject,
            "exported_at": timezone.now().isoformat(),
            "events": [e.as_dict() for e in events],
        },
        indent=1,
        default=str,
    )


ACCESS_LOG_COLUMNS = (
    "at",
    "user",
    "action",
    "channel",
    "model",
    "object_ids",
    "patient_ids",
    "object_count",
    "query",
    "path",
    "client_address",
    "organization",
)


def access_log_csv(entries) -> Iterator[str]:
    return csv_lines(
        ACCESS_LOG_COLUMNS,
        (
            (
                e.at.isoformat(),
                e.user.username,
                e.action,
                e.channel,
                e.model,
                " ".join(map(str, e.object_ids)),
                " ".join(map(str, e.patient_ids)),
                e.object_count,
                e.query,
                e.path,
                e.client_address,
                e.organization.slug if e.organization_id else "",
            )
            for e in entries
        ),
    )


def _latin1(text: str) -> str:
    # The PDF core fonts speak Latin-1; anything else prints as '?', never fails the export.
    return (
        str(text)
        .replace("—", "-")
        .replace("→", "->")
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


class _Packet(FPDF):
    def __init__(self, title: str):
        super().__init__(orientation="landscape", format="Letter")
        self.packet_title = title
        self.set_title(title)
        self.set_author("CareHub")
        self.set_auto_page_break(auto=True, margin=14)
        self.alias_nb_pages()

    def header(self):
        self.set_font("Helvetica", "B", 11)
        self.cell(0, 7, _latin1(self.packet_title), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "", 8)

    def footer(self):
        self.set_y(-11)
        self.set_font("Helvetica", "", 7)
        self.cell(
            0,
            6,
            _latin1(f"Confidential: contains PHI. Page {self.page_no()} of {{nb}}"),
            align="C",
        )


def events_pdf(events: Sequence[Event], *, title: str, subtitle_lines: Sequence[str]) -> bytes:
    """A printable audit packet: the subject, the filters, then one table row per event."""
    pdf = _Packet(title)
    pdf.add_page()
    pdf.set_font("Helvetica", "", 9)
    for line in subtitle_lines:
        pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 7)
    widths = (30, 12, 34, 14, 24, 16, 80, 50)
    with pdf.table(
        col_widths=widths,
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 235)),
        line_height=3.6,
        text_align="LEFT",
        repeat_headings=1,
    ) as table:
        table.row([h.capitalize() for h in EVENT_COLUMNS])
        for e in events:
            table.row(
                [
                    _latin1(e.at.strftime("%Y-%m-%d %H:%M:%S UTC")),
                    e.kind,
                    _latin1(e.record),
                    e.action,
                    _latin1(e.actor),
                    e.path,
                    _latin1("\n".join(f"{f}: {o} -> {n}" for f, o, n in e.changes)[:1500]),
                    _latin1(e.reason),
                ]
            )
    if not events:
        pdf.cell(0, 6, "No events for these filters.")
    return bytes(pdf.output())
