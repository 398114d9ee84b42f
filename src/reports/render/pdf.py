"""PDF layout with reportlab: the page template every report shares, KPI cards, tables and chart images.

Built-in Helvetica only: no font file to parse or embed, which keeps both the render and the PDF
small. Every page carries the same header band (brand, title, subject date) and footer (report id,
generation time, "Page N of M"); the page total is known only at the end, so the canvas keeps each
page until ``save`` and stamps the footers then.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from reportlab.lib.colors import Color, HexColor
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from reports.render import theme
from reports.render.charts import ChartImage, Raster

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 40.0
HEADER_HEIGHT = 66.0
FOOTER_HEIGHT = 34.0
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
CONTENT_TOP = PAGE_HEIGHT - HEADER_HEIGHT - 18
CONTENT_HEIGHT = CONTENT_TOP - FOOTER_HEIGHT - 8

FONT = "Helvetica"
BOLD = "Helvetica-Bold"

IMAGE_COMPRESSION = 1
"""zlib level for chart pixels: a daily sheet is ~40 kB at 1 against ~20 kB at 6, in half the time (4 ms)."""


def colour(hex_value: str) -> Color:
    return HexColor(hex_value)


HEADING = ParagraphStyle(
    "heading",
    fontName=BOLD,
    fontSize=11,
    leading=14,
    textColor=colour(theme.ESPRESSO),
    spaceBefore=10,
    spaceAfter=6,
    alignment=TA_LEFT,
)
BODY = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=12, textColor=colour(theme.INK))
NOTE = ParagraphStyle("note", parent=BODY, fontSize=7.5, leading=10, textColor=colour(theme.MUTED))
BULLET = ParagraphStyle("bullet", parent=BODY, leftIndent=10, bulletIndent=0, spaceAfter=2)


@dataclass(frozen=True, slots=True)
class PageHeader:
    """What the header band and footer say on every page of one report."""

    title: str
    subject: str
    """The date or period the report is about, as a reader would say it."""
    report_id: str
    generated_at: datetime


@dataclass(frozen=True, slots=True)
class KpiCard:
    label: str
    value: str
    note: str
    trend: float | None = None
    """Relative change shown as a coloured arrow; None shows the note in grey without an arrow."""


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: float
    align: Literal["LEFT", "RIGHT", "CENTER"] = "LEFT"


class KpiRow(Flowable):  # type: ignore[misc]
    """A row of equal cards: label, big value, and how it compares (arrow in green or red).

    With ``note``, one line under the row says what every card would otherwise repeat; the cards
    drop their own note line and get shorter, so the row keeps its height and the page its layout.
    """

    NOTE_BAND = 15.0
    """Height the row's note takes from the cards."""

    def __init__(self, cards: Sequence[KpiCard], *, height: float = 64.0, gap: float = 8.0, note: str = "") -> None:
        super().__init__()
        self.cards = list(cards)
        self.card_height = height
        self.gap = gap
        self.note = note

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        self.width = available_width
        return available_width, self.card_height

    def draw(self) -> None:
        canvas: Canvas = self.canv
        count = len(self.cards)
        card_width = (self.width - self.gap * (count - 1)) / count
        bottom = self.NOTE_BAND if self.note else 0.0
        top = self.card_height
        for index, card in enumerate(self.cards):
            x = index * (card_width + self.gap)
            canvas.setFillColor(colour(theme.CARD))
            canvas.roundRect(x, bottom, card_width, top - bottom, 4, stroke=0, fill=1)
            canvas.setFillColor(colour(theme.CREMA))
            canvas.rect(x, top - 3, card_width, 3, stroke=0, fill=1)
            canvas.setFillColor(colour(theme.MUTED))
            canvas.setFont(BOLD, 7)
            canvas.drawString(x + 10, top - 17, card.label.upper())
            canvas.setFillColor(colour(theme.INK))
            canvas.setFont(BOLD, 18)
            canvas.drawString(x + 10, top - 40, card.value)
            if not self.note:
                self._draw_note(canvas, x + 10, 11, card_width - 20, card)
        if self.note:
            paragraph = Paragraph(self.note, NOTE)
            paragraph.wrapOn(canvas, self.width, self.NOTE_BAND)
            paragraph.drawOn(canvas, 0, 0)

    @staticmethod
    def _draw_note(canvas: Canvas, x: float, y: float, width: float, card: KpiCard) -> None:
        canvas.setFont(FONT, 7)
        if card.trend is None:
            canvas.setFillColor(colour(theme.MUTED))
            size = _shrunk(card.note, FONT, 7, width)
            canvas.setFont(FONT, size)
            canvas.drawString(x, y, _fit(card.note, FONT, size, width))
            return
        rising = card.trend >= 0
        canvas.setFillColor(colour(theme.UP if rising else theme.DOWN))
        path = canvas.beginPath()
        if rising:
            path.moveTo(x, y)
            path.lineTo(x + 6, y)
            path.lineTo(x + 3, y + 5.5)
        else:
            path.moveTo(x, y + 5.5)
            path.lineTo(x + 6, y + 5.5)
            path.lineTo(x + 3, y)
        path.close()
        canvas.drawPath(path, stroke=0, fill=1)
        change = theme.percent(card.trend, signed=True)
        canvas.setFont(BOLD, 7)
        canvas.drawString(x + 9, y, change)
        offset = x + 9 + canvas.stringWidth(change, BOLD, 7) + 3
        canvas.setFillColor(colour(theme.MUTED))
        size = _shrunk(card.note, FONT, 7, width - (offset - x))
        canvas.setFont(FONT, size)
        canvas.drawString(offset, y, _fit(card.note, FONT, size, width - (offset - x)))


class ChartBlock(Flowable):  # type: ignore[misc]
    """A chart sheet: its pixels as one image XObject, then its legend keys and words drawn as vector text."""

    def __init__(self, chart: ChartImage) -> None:
        super().__init__()
        self.chart = chart
        self.width = chart.width
        self.height = chart.height

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canvas: Canvas = self.canv
        self._draw_raster(canvas)
        for swatch in self.chart.swatches:
            canvas.setFillColor(colour(swatch.colour))
            canvas.rect(swatch.x, swatch.y, swatch.width, swatch.height, stroke=0, fill=1)
        for label in self.chart.labels:
            canvas.setFillColor(colour(label.colour))
            canvas.setFont(BOLD if label.bold else FONT, label.size)
            if label.rotation:
                canvas.saveState()
                canvas.translate(label.x, label.y)
                canvas.rotate(label.rotation)
                _draw_aligned(canvas, 0, 0, label.text, label.align)
                canvas.restoreState()
            else:
                _draw_aligned(canvas, label.x, label.y, label.text, label.align)

    def _draw_raster(self, canvas: Canvas) -> None:
        # What Canvas.drawImage does for an ImageReader, minus the md5 of the pixels and the PIL round trip.
        raster = self.chart.raster
        name = f"chart{id(raster):x}"
        document = canvas._doc
        registered = document.getXObjectName(name)
        if registered not in document.idToObject:
            document.addForm(name, _RgbImageObject(registered, raster))
        canvas._currentPageHasImages = 1
        canvas.saveState()
        canvas.scale(self.width, self.height)
        canvas._code.append(f"/{registered} Do")
        canvas.restoreState()
        canvas._formsinuse.append(name)


class _RgbImageObject(pdfdoc.PDFImageXObject):  # type: ignore[misc]
    """reportlab's image XObject, filled from raw RGB with our zlib level instead of via PIL and md5."""

    def __init__(self, name: str, raster: Raster) -> None:
        super().__init__(name)
        self.width = raster.width
        self.height = raster.height
        self.bitsPerComponent = 8
        self.colorSpace = "DeviceRGB"
        self.streamContent = zlib.compress(raster.rgb, IMAGE_COMPRESSION)
        self._filters = ("FlateDecode",)
        self.mask = None


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, total: Sequence[str] | None = None) -> Table:
    """A ruled table: dark header, zebra rows, numbers right-aligned, optional bold total row."""
    data: list[Sequence[str]] = [[column.title for column in columns], *rows]
    if total is not None:
        data.append(total)
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), colour(theme.INK)),
        ("FONT", (0, 0), (-1, 0), BOLD, 7.5),
        ("TEXTCOLOR", (0, 0), (-1, 0), colour(theme.PAPER)),
        ("BACKGROUND", (0, 0), (-1, 0), colour(theme.ESPRESSO)),
        ("TOPPADDING", (0, 0), (-1, -1), 3.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.2),
        ("LEFTPADDING", (0, 0), (-1, -1), 6),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, colour(theme.RULE)),
    ]
    for index, column in enumerate(columns):
        style.append(("ALIGN", (index, 0), (index, -1), column.align))
    for row in range(2, len(rows) + 1, 2):
        style.append(("BACKGROUND", (0, row), (-1, row), colour(theme.CARD)))
    if total is not None:
        style += [
            ("FONT", (0, -1), (-1, -1), BOLD, 8),
            ("LINEABOVE", (0, -1), (-1, -1), 0.8, colour(theme.ESPRESSO)),
        ]
    return Table(data, colWidths=[column.width for column in columns], style=TableStyle(style), repeatRows=1)


def heading(text: str) -> Paragraph:
    return Paragraph(text, HEADING)


def note(text: str) -> Paragraph:
    return Paragraph(text, NOTE)


def bullets(lines: Sequence[str]) -> list[Flowable]:
    return [Paragraph(line, BULLET, bulletText="•") for line in lines]


def gap(height: float) -> Spacer:
    return Spacer(1, height)


def page_break() -> PageBreak:
    return PageBreak()


def build(header: PageHeader, story: Sequence[Flowable]) -> bytes:
    """Lays ``story`` out on A4 pages with the shared header and footer and returns the PDF."""
    output = io.BytesIO()
    document = BaseDocTemplate(
        output,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=PAGE_HEIGHT - CONTENT_TOP,
        bottomMargin=FOOTER_HEIGHT + 8,
        title=f"{header.title} — {header.subject}",
        author=theme.BRAND,
        subject=header.subject,
        creator="async-reports",
        pageCompression=1,
    )
    frame = Frame(MARGIN, FOOTER_HEIGHT + 8, CONTENT_WIDTH, CONTENT_HEIGHT, 0, 0, 0, 0, id="content")
    document.addPageTemplates([PageTemplate(id="report", frames=[frame], onPage=_header_drawer(header))])

    def canvas_maker(*args: Any, **kwargs: Any) -> Canvas:
        return _NumberedCanvas(header, *args, **kwargs)

    document.build(list(story), canvasmaker=canvas_maker)
    return output.getvalue()


def _header_drawer(header: PageHeader) -> Any:
    def draw(canvas: Canvas, _document: BaseDocTemplate) -> None:
        canvas.saveState()
        top = PAGE_HEIGHT
        canvas.setFillColor(colour(theme.ESPRESSO))
        canvas.rect(0, top - HEADER_HEIGHT, PAGE_WIDTH, HEADER_HEIGHT, stroke=0, fill=1)
        canvas.setFillColor(colour(theme.CREMA))
        canvas.rect(0, top - HEADER_HEIGHT - 3, PAGE_WIDTH, 3, stroke=0, fill=1)
        canvas.setFont(BOLD, 7.5)
        canvas.drawString(MARGIN, top - 22, theme.BRAND.upper())
        canvas.setFillColor(colour(theme.PAPER))
        canvas.setFont(BOLD, 19)
        canvas.drawString(MARGIN, top - 47, header.title)
        canvas.setFont(FONT, 10)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, top - 46, header.subject)
        canvas.restoreState()

    return draw


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Holds pages until ``save`` so each footer can say "Page N of M"."""

    def __init__(self, header: PageHeader, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header = header
        self._saved_pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._saved_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved_pages)
        for state in self._saved_pages:
            self.__dict__.update(state)
            self._draw_footer(total)
            super().showPage()
        super().save()

    def _draw_footer(self, total: int) -> None:
        generated_at = self._header.generated_at
        if generated_at.tzinfo is None:
            generated_at = generated_at.replace(tzinfo=UTC)
        generated = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.saveState()
        self.setStrokeColor(colour(theme.RULE))
        self.setLineWidth(0.6)
        self.line(MARGIN, FOOTER_HEIGHT, PAGE_WIDTH - MARGIN, FOOTER_HEIGHT)
        self.setFillColor(colour(theme.MUTED))
        self.setFont(FONT, 7)
        self.drawString(MARGIN, FOOTER_HEIGHT - 12, f"Report {self._header.report_id}  ·  Generated {generated}")
        self.drawRightString(PAGE_WIDTH - MARGIN, FOOTER_HEIGHT - 12, f"Page {self._pageNumber} of {total}")
        self.restoreState()


def _draw_aligned(canvas: Canvas, x: float, y: float, text: str, align: str) -> None:
    if align == "right":
        canvas.drawRightString(x, y, text)
    elif align == "centre":
        canvas.drawCentredString(x, y, text)
    else:
        canvas.drawString(x, y, text)


def _shrunk(text: str, font: str, size: float, width: float, *, smallest: float = 6.0) -> float:
    """The largest of ``size``, ``size`` - 0.5, ... down to ``smallest`` at which ``text`` fits ``width`` points."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    while size > smallest and stringWidth(text, font, size) > width:
        size -= 0.5
    return size


def _fit(text: str, font: str, size: float, width: float) -> str:
    """Shortens ``text`` with an ellipsis so it fits ``width`` points."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"
