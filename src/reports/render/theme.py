"""One palette and one way of writing money, shared by charts and PDF layout so every report matches.

Colours are hex strings, understood by matplotlib and (through ``reportlab.lib.colors.HexColor``)
by reportlab alike. Light module: no rendering library is imported here.
"""

from __future__ import annotations

from datetime import date

BRAND = "Harbor & Bean Coffee Co."

INK = "#1F2328"
"""Body text."""
MUTED = "#656D76"
"""Labels, captions, axis text."""
RULE = "#D0D7DE"
GRID = "#EAEEF2"
PAPER = "#FFFFFF"
CARD = "#F6F3EF"
"""Warm off-white behind KPI cards and alternate table rows."""
ESPRESSO = "#3B2A20"
"""Brand colour: header band, table headers, primary series."""
CREMA = "#C8894B"
"""Accent: highlights and the secondary series."""
PREVIOUS = "#A8B1BB"
"""Comparison series (last week, moving averages' context)."""
UP = "#1A7F37"
DOWN = "#CF222E"

CATEGORY_COLOURS = {
    "coffee": "#6F4E37",
    "tea": "#6A994E",
    "cold drinks": "#3A86C8",
    "food": "#E0A23B",
}
OTHER_COLOUR = "#8C959F"


def category_colour(category: str) -> str:
    return CATEGORY_COLOURS.get(category, OTHER_COLOUR)


def money(cents: float) -> str:
    """$12,345 for totals: a manager reads whole dollars; cents would be noise."""
    return f"${cents / 100:,.0f}"


def money_exact(cents: float) -> str:
    """$7.48 for per-order and per-item figures, where cents matter."""
    return f"${cents / 100:,.2f}"


def money_short(cents: float) -> str:
    """$1.2k style, for axis ticks and bar labels where space is short."""
    dollars = cents / 100
    if abs(dollars) >= 1_000_000:
        return f"${dollars / 1_000_000:.1f}M"
    if abs(dollars) >= 10_000:
        return f"${dollars / 1000:.0f}k"
    if abs(dollars) >= 1000:
        return f"${dollars / 1000:.1f}k"
    return f"${dollars:.0f}"


def count(value: float) -> str:
    return f"{value:,.0f}"


def percent(fraction: float, *, signed: bool = False) -> str:
    return f"{fraction * 100:+.1f}%" if signed else f"{fraction * 100:.1f}%"


def long_date(day: date) -> str:
    """Friday, 1 January 2021 — unambiguous for readers on both sides of the Atlantic."""
    return f"{day:%A}, {day.day} {day:%B %Y}"


def short_date(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"
