"""Charts: matplotlib draws the data, the PDF writes the words.

Measured, not guessed (``bench/bench_render.py``): in a matplotlib render almost all the time goes
to text (tick machinery, font lookup, glyph layout) and to building axes, very little to filling
bars. So every chart of a page is one ``Figure`` drawn once by Agg with its axes switched off, bars
as one ``PolyCollection`` rather than a patch each, and every word on a chart (titles, tick and
value labels, legends) is recorded as a ``Label`` in page points and written by reportlab over
the image. Text stays vector — sharp at any zoom, searchable, in the same Helvetica as the page —
and the raster holds only flat shapes, which compress to a few tens of kilobytes. Axes are placed
by hand in points with explicit limits, so data positions map to points without a layout pass.

Never pyplot (global state, GUI backends); Agg is forced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from reports.render import fonts, theme

fonts.prepare_font_cache()

import matplotlib  # noqa: E402  (the font list must be in place before matplotlib looks for it)

matplotlib.use("Agg")

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 144
"""Twice the PDF's 72 points per inch: smooth edges on screen and in print at a quarter of 300 dpi's pixels."""

Align = Literal["left", "right", "centre"]
_CAP_CENTRE = 0.35
"""Helvetica's capital letters are centred about 0.35 em above the baseline."""


@dataclass(frozen=True, slots=True)
class Raster:
    """An opaque RGB image: ``width * height * 3`` bytes, rows top to bottom."""

    width: int
    height: int
    rgb: bytes


@dataclass(frozen=True, slots=True)
class Label:
    """Text the PDF writes over the chart; ``x``/``y`` in points from the sheet's bottom-left, ``y`` the baseline."""

    x: float
    y: float
    text: str
    size: float = 7.0
    colour: str = theme.MUTED
    bold: bool = False
    align: Align = "left"
    rotation: float = 0.0
    """Degrees anticlockwise about ``(x, y)``: 0, or 90 for text running up the page."""


@dataclass(frozen=True, slots=True)
class Swatch:
    """A small filled rectangle (legend key), in the same coordinates as ``Label``."""

    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True, slots=True)
class ChartImage:
    """A drawn sheet: the pixels and what to write and place over them."""

    raster: Raster
    width: float
    height: float
    labels: tuple[Label, ...]
    swatches: tuple[Swatch, ...]


@dataclass(frozen=True, slots=True)
class Box:
    """A chart's plotting area on the sheet, in points from the sheet's top-left (how a page is read)."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


@dataclass
class _Plot:
    box: Box
    xlim: tuple[float, float]
    ylim: tuple[float, float]


@dataclass
class ChartSheet:
    """One figure holding every chart of a block of the page; see the module docstring for why."""

    width: float
    height: float
    dpi: int = DPI
    labels: list[Label] = field(default_factory=list)
    swatches: list[Swatch] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.figure = Figure(figsize=(self.width / 72, self.height / 72), dpi=self.dpi, facecolor=theme.PAPER)
        self._canvas = FigureCanvasAgg(self.figure)
        self._plots: dict[int, _Plot] = {}

    def plot(self, box: Box, xlim: tuple[float, float], ylim: tuple[float, float]) -> Axes:
        """An axes without ticks or spines over ``box`` with fixed limits, so data maps linearly to points."""
        ax = self.figure.add_axes(
            (box.left / self.width, 1 - box.bottom / self.height, box.width / self.width, box.height / self.height)
        )
        ax.set_axis_off()
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        self._plots[id(ax)] = _Plot(box, xlim, ylim)
        return ax

    def to_points(self, ax: Axes, x: float, y: float) -> tuple[float, float]:
        """Where data ``(x, y)`` of ``ax`` lands, in points from the sheet's bottom-left."""
        plot = self._plots[id(ax)]
        (x0, x1), (y0, y1) = plot.xlim, plot.ylim
        px = plot.box.left + (x - x0) / (x1 - x0) * plot.box.width
        py = self.height - plot.box.bottom + (y - y0) / (y1 - y0) * plot.box.height
        return px, py

    def text(
        self,
        left: float,
        top: float,
        text: str,
        *,
        size: float = 7.0,
        colour: str = theme.MUTED,
        bold: bool = False,
        align: Align = "left",
    ) -> None:
        """Text whose capitals are vertically centred ``top`` points below the sheet's top edge."""
        self.labels.append(Label(left, self.height - top - _CAP_CENTRE * size, text, size, colour, bold, align))

    def text_at(
        self,
        ax: Axes,
        x: float,
        y: float,
        text: str,
        *,
        dx: float = 0,
        dy: float = 0,
        size: float = 7.0,
        colour: str = theme.MUTED,
        bold: bool = False,
        align: Align = "left",
        rotation: float = 0.0,
    ) -> None:
        """Text centred on data ``(x, y)`` of ``ax`` across its baseline, moved by ``dx``/``dy`` points (``dy`` up)."""
        px, py = self.to_points(ax, x, y)
        if rotation == 90:
            label = Label(px + dx + _CAP_CENTRE * size, py + dy, text, size, colour, bold, align, rotation)
        else:
            label = Label(px + dx, py + dy - _CAP_CENTRE * size, text, size, colour, bold, align, rotation)
        self.labels.append(label)

    def swatch(self, left: float, top: float, width: float, height: float, colour: str) -> None:
        self.swatches.append(Swatch(left, self.height - top - height, width, height, colour))

    def title(self, box: Box, text: str, subtitle: str | None = None, *, indent: float = 0) -> None:
        """A bold title (and a muted line under it) above ``box``, starting ``indent`` points left of it."""
        left = box.left - indent
        if subtitle:
            self.text(left, box.top - 22, text, size=9, colour=theme.INK, bold=True)
            self.text(left, box.top - 11, subtitle, size=7)
        else:
            self.text(left, box.top - 12, text, size=9, colour=theme.INK, bold=True)

    def render(self) -> ChartImage:
        """Draws the figure once; the pixels go to the PDF without the alpha channel (the page is opaque)."""
        self._canvas.draw()  # type: ignore[no-untyped-call]
        width, height = (int(v) for v in self._canvas.get_width_height())
        rgba = self._canvas.buffer_rgba()  # type: ignore[no-untyped-call]
        from PIL import Image

        rgb = Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1).convert("RGB").tobytes()
        return ChartImage(Raster(width, height, rgb), self.width, self.height, tuple(self.labels), tuple(self.swatches))


def nice_ticks(top: float, *, count: int = 4) -> list[float]:
    """Round tick values from zero to at least ``top`` (``$0, $250, $500, ...``)."""
    ticks = [float(t) for t in MaxNLocator(nbins=count, steps=[1, 2, 2.5, 5, 10]).tick_values(0, top or 1)]
    return [t for t in ticks if t >= 0]


def bars(
    ax: Axes,
    positions: Sequence[float],
    values: Sequence[float],
    colours: Sequence[str] | str,
    *,
    width: float = 0.7,
    horizontal: bool = False,
) -> None:
    """Bars as one ``PolyCollection``: a patch per bar would cost more than drawing the whole page."""
    half = width / 2
    shapes: list[tuple[tuple[float, float], ...]] = []
    for p, v in zip(positions, values, strict=True):
        upright = ((p - half, 0.0), (p - half, v), (p + half, v), (p + half, 0.0))
        shapes.append(tuple((y, x) for x, y in upright) if horizontal else upright)
    face = [colours] * len(shapes) if isinstance(colours, str) else list(colours)
    ax.add_collection(PolyCollection(shapes, facecolors=face, linewidths=0, zorder=2))


def value_grid(sheet: ChartSheet, ax: Axes, ticks: Sequence[float], xlim: tuple[float, float]) -> None:
    """Horizontal gridlines at ``ticks`` with money labels left of the plot; the zero line darker."""
    ax.hlines([t for t in ticks if t > 0], *xlim, colors=theme.GRID, linewidths=0.7, zorder=1)
    ax.hlines([0], *xlim, colors=theme.RULE, linewidths=0.9, zorder=3)
    for tick in ticks:
        sheet.text_at(ax, xlim[0], tick, theme.money_short(tick), dx=-5, size=6.5, align="right")


def hourly_revenue(
    sheet: ChartSheet,
    box: Box,
    *,
    hours: Sequence[int],
    revenue: Sequence[int],
    previous: Sequence[int] | None,
    labels: tuple[str, str],
) -> None:
    """Revenue per opening hour as bars, and the same hours a week earlier as a grey step line."""
    ticks = nice_ticks(max([*revenue, *(previous or [])], default=0))
    xlim = (-0.6, len(hours) - 0.4)
    ax = sheet.plot(box, xlim, (0, ticks[-1]))
    value_grid(sheet, ax, ticks, xlim)
    positions = list(range(len(hours)))
    bars(ax, positions, revenue, theme.ESPRESSO, width=0.72)
    if previous is not None:
        steps_x = [x for p in positions for x in (p - 0.5, p + 0.5)]
        steps_y = [v for value in previous for v in (value, value)]
        ax.plot(steps_x, steps_y, color=theme.PREVIOUS, linewidth=1.6, zorder=4, solid_joinstyle="miter")
    for position, hour in zip(positions, hours, strict=True):
        sheet.text_at(ax, position, 0, f"{hour:02d}:00", dy=-9, size=6.5, align="centre")
    legend = [(labels[0], theme.ESPRESSO, 7.0)]
    if previous is not None:
        legend.append((labels[1], theme.PREVIOUS, 2.0))
    _legend(sheet, box, legend)


def _legend(sheet: ChartSheet, box: Box, entries: Sequence[tuple[str, str, float]]) -> None:
    """Swatch-and-label entries right-aligned along the top of ``box``; ``height`` 7 is a bar, ~2 a line."""
    right = box.right
    for text, colour, height in reversed(entries):
        right -= _text_width(text, 7)
        sheet.text(right, box.top - 12, text, size=7, colour=theme.INK)
        sheet.swatch(right - 12, box.top - 12 - height / 2, 9, height, colour)
        right -= 24


def ranking(
    sheet: ChartSheet,
    box: Box,
    *,
    labels: Sequence[str],
    values: Sequence[float],
    colours: Sequence[str] | str,
    value_label: Callable[[float], str] = theme.money,
) -> None:
    """Horizontal bars, largest on top, names left and values at the bar ends: a ranking needs no axis."""
    count = len(labels)
    top = max(values, default=0) or 1
    ax = sheet.plot(box, (0, top * 1.18), (-0.5, count - 0.5))
    positions = list(range(count - 1, -1, -1))
    bars(ax, positions, values, colours, width=0.66, horizontal=True)
    ax.vlines([0], -0.5, count - 0.5, colors=theme.RULE, linewidths=0.9, zorder=3)
    for position, label, value in zip(positions, labels, values, strict=True):
        sheet.text_at(ax, 0, position, label, dx=-6, size=7, colour=theme.INK, align="right")
        sheet.text_at(ax, value, position, value_label(value), dx=4, size=6.5, colour=theme.INK)


def mix(
    sheet: ChartSheet,
    box: Box,
    *,
    labels: Sequence[str],
    values: Sequence[float],
    colours: Sequence[str],
    centre: str,
    caption: str,
) -> None:
    """A donut of shares (square ``box`` on the left) with the total in the hole and a legend on its right."""
    side = min(box.width, box.height)
    donut = Box(box.left, box.top + (box.height - side) / 2, side, side)
    ax = sheet.plot(donut, (-1.0, 1.0), (-1.0, 1.0))
    ax.pie(
        values,
        colors=colours,
        startangle=90,
        counterclock=False,
        radius=1.0,
        wedgeprops={"width": 0.36, "edgecolor": theme.PAPER, "linewidth": 1.2},
    )
    ax.set_xlim(-1.0, 1.0)
    ax.set_ylim(-1.0, 1.0)
    middle = donut.left + side / 2
    sheet.text(middle, donut.top + side / 2 - 4, centre, size=10, colour=theme.INK, bold=True, align="centre")
    sheet.text(middle, donut.top + side / 2 + 8, caption, size=6.5, align="centre")
    total = sum(values) or 1
    row = 15
    first = box.top + box.height / 2 - row * (len(labels) - 1) / 2
    for index, (label, value, colour) in enumerate(zip(labels, values, colours, strict=True)):
        y = first + index * row
        sheet.swatch(donut.right + 14, y - 4, 8, 8, colour)
        sheet.text(donut.right + 27, y, label.capitalize(), size=7.5, colour=theme.INK)
        sheet.text(box.right, y, f"{value / total * 100:.0f}%", size=7.5, colour=theme.INK, bold=True, align="right")


def daily_revenue(
    sheet: ChartSheet,
    box: Box,
    *,
    day_labels: Sequence[str],
    revenue: Sequence[float | None],
    average: Sequence[float | None],
    weekend: Sequence[bool],
) -> None:
    """Daily bars (weekends in the accent colour) with the trailing 7-day average; closed days are marked."""
    heights = [value or 0 for value in revenue]
    ticks = nice_ticks(max([*heights, *(a or 0 for a in average)], default=0) * 1.08)
    xlim = (-0.7, len(day_labels) - 0.3)
    ax = sheet.plot(box, xlim, (0, ticks[-1]))
    value_grid(sheet, ax, ticks, xlim)
    positions = list(range(len(day_labels)))
    bars(ax, positions, heights, [theme.CREMA if w else theme.ESPRESSO for w in weekend], width=0.72)
    points = [(p, a) for p, a in zip(positions, average, strict=True) if a is not None]
    if points:
        ax.plot([p for p, _ in points], [a for _, a in points], color=theme.INK, linewidth=1.4, zorder=4)
    for position, label, value in zip(positions, day_labels, revenue, strict=True):
        sheet.text_at(ax, position, 0, label, dy=-9, size=6, align="centre")
        if value is None:
            sheet.text_at(ax, position, 0, "closed", dy=4, size=6.5, rotation=90)
    legend = [("Weekday", theme.ESPRESSO, 7.0), ("Weekend", theme.CREMA, 7.0), ("7-day average", theme.INK, 1.6)]
    _legend(sheet, box, legend)


def weekday_pattern(
    sheet: ChartSheet,
    box: Box,
    *,
    labels: Sequence[str],
    values: Sequence[float],
    weekend: Sequence[bool],
) -> None:
    """Average revenue per weekday, each bar labelled with its value."""
    top = max(values, default=0) or 1
    ax = sheet.plot(box, (-0.6, len(labels) - 0.4), (0, top * 1.15))
    positions = list(range(len(labels)))
    bars(ax, positions, values, [theme.CREMA if w else theme.ESPRESSO for w in weekend], width=0.66)
    ax.hlines([0], -0.6, len(labels) - 0.4, colors=theme.RULE, linewidths=0.9, zorder=3)
    for position, label, value in zip(positions, labels, values, strict=True):
        sheet.text_at(ax, position, 0, label, dy=-9, size=6.5, align="centre")
        if value:
            sheet.text_at(
                ax, position, value, theme.money_short(value), dy=7, size=6.5, colour=theme.INK, align="centre"
            )


def _text_width(text: str, size: float, *, bold: bool = False) -> float:
    """Helvetica's advance width (reportlab's metrics are tables in memory; the PDF module imports it anyway)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(stringWidth(text, "Helvetica-Bold" if bold else "Helvetica", size))
