"""Sales records of the sample coffee chain: the data every report is made from.

Pure code (no AWS): the record type, a deterministic generator that makes a realistic day of sales
for any date, and the gzip CSV encoding one object per day is stored in. The generator is seeded
from the date alone, so the same day always has the same sales in any Python version (it only
draws ``random()``, whose sequence for a string seed has been stable since 3.2, and rounds what
it derives with ``math`` to whole orders and minutes), which lets tests and demos name exact
figures and lets a re-seeded bucket stay byte-for-byte identical.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import random
from bisect import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import accumulate
from operator import attrgetter, itemgetter

SAMPLE_DATA_START = date(2020, 1, 1)
SAMPLE_DATA_END = date(2022, 12, 31)

CSV_COLUMNS = (
    "order_id",
    "sold_at",
    "store_id",
    "store_name",
    "city",
    "product",
    "category",
    "quantity",
    "unit_price_cents",
)


@dataclass(frozen=True, slots=True)
class SaleRecord:
    """One line of an order: a product, how many, and at what price. An order has one to three lines."""

    order_id: str
    sold_at: datetime
    """Store-local wall-clock time, naive: every store reports in its own time zone."""
    store_id: str
    store_name: str
    city: str
    product: str
    category: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Store:
    """A shop of the sample chain and how busy it is."""

    store_id: str
    name: str
    city: str
    traffic: float
    """Orders on an average weekday before trend and season."""
    weekend: float
    """Weekend traffic relative to weekdays: office districts drop, neighbourhoods rise."""


@dataclass(frozen=True, slots=True)
class Product:
    """An item on the menu; ``popularity`` weighs it against the others before hour and season."""

    name: str
    category: str
    price_cents: int
    popularity: float


STORES: tuple[Store, ...] = (
    Store("SEA-01", "Pike Place", "Seattle", 205, 1.15),
    Store("PDX-01", "Pearl District", "Portland", 140, 1.05),
    Store("SFO-01", "Financial District", "San Francisco", 185, 0.55),
    Store("DEN-01", "Union Station", "Denver", 120, 0.85),
    Store("CHI-01", "Wicker Park", "Chicago", 130, 1.20),
    Store("BOS-01", "Back Bay", "Boston", 150, 0.80),
)

COFFEE, TEA, COLD, FOOD = "coffee", "tea", "cold drinks", "food"
CATEGORIES = (COFFEE, TEA, COLD, FOOD)

PRODUCTS: tuple[Product, ...] = (
    Product("Espresso", COFFEE, 300, 0.55),
    Product("Americano", COFFEE, 375, 1.00),
    Product("Cappuccino", COFFEE, 475, 1.05),
    Product("Latte", COFFEE, 495, 1.30),
    Product("Flat White", COFFEE, 485, 0.70),
    Product("Mocha", COFFEE, 545, 0.50),
    Product("Chai Latte", TEA, 495, 0.45),
    Product("Green Tea", TEA, 350, 0.35),
    Product("Cold Brew", COLD, 495, 0.50),
    Product("Iced Latte", COLD, 545, 0.55),
    Product("Lemonade", COLD, 395, 0.25),
    Product("Croissant", FOOD, 395, 0.60),
    Product("Blueberry Muffin", FOOD, 375, 0.45),
    Product("Turkey Sandwich", FOOD, 895, 0.40),
)

OPENS_MINUTE = 6 * 60 + 30
CLOSES_MINUTE = 20 * 60
CLOSED = frozenset({(12, 25)})
"""Month and day on which every store is closed, so those dates have no records at all."""
PUBLIC_HOLIDAYS = frozenset({(1, 1)})
"""Open, but trading like a Sunday: office districts are quiet, neighbourhoods busy."""
HOLIDAY_HOURS = {(1, 1): (10 * 60, 16 * 60), (12, 24): (OPENS_MINUTE, 15 * 60), (12, 31): (OPENS_MINUTE, 17 * 60)}
"""Short opening hours (first minute, closing minute) on public holidays and their eves."""

_WEEKDAY_TRAFFIC = (0.96, 1.0, 1.02, 1.03, 1.08, 1.0, 0.88)
"""Monday..Sunday before each store's own weekend factor: Friday is the busiest weekday."""

# Share of the day's orders in each opening hour (06:00 holds only 06:30-07:00).
_WEEKDAY_HOURS = (1.6, 7.5, 10.5, 8.0, 5.2, 4.6, 6.4, 6.0, 4.2, 4.0, 3.8, 2.9, 1.9, 1.2)
_WEEKEND_HOURS = (0.5, 2.4, 5.0, 8.2, 9.4, 8.6, 7.2, 6.0, 5.2, 4.8, 4.2, 3.2, 2.0, 1.2)
_FIRST_HOUR = 6

_LINES_PER_ORDER = (0.68, 0.26, 0.06)
_QUANTITY = (0.86, 0.10, 0.03, 0.01)


def sales_key(day: date) -> str:
    """The S3 key of one day's sales: Hive-style ``date=`` partitions, so Athena can query the bucket as is."""
    return f"sales/date={day.isoformat()}/orders.csv.gz"


def is_closed(day: date) -> bool:
    return (day.month, day.day) in CLOSED


def generate_day(day: date) -> list[SaleRecord]:
    """Every order line of ``day`` across the chain, the same on every call; empty when the stores are closed."""
    if is_closed(day):
        return []
    rng = random.Random(f"coffee-sales:{day.isoformat()}")
    draw = rng.random
    opens, closes = HOLIDAY_HOURS.get((day.month, day.day), (OPENS_MINUTE, CLOSES_MINUTE))
    weekday = 6 if (day.month, day.day) in PUBLIC_HOLIDAYS else day.weekday()
    weekend = weekday >= 5
    summer = _summer(day)
    hour_weights = _hour_weights(weekend, opens, closes)
    open_share = sum(hour_weights) / sum(_WEEKEND_HOURS if weekend else _WEEKDAY_HOURS)
    demand = _trend(day) * _covid(day) * _season(summer) * _WEEKDAY_TRAFFIC[weekday] * open_share
    weather = math.exp(0.07 * _normal(draw))
    hour_cum = _cumulative(hour_weights)
    product_cum = [_cumulative(_product_weights(hour, summer)) for hour in range(_FIRST_HOUR, 20)]
    lines_cum = _cumulative(_LINES_PER_ORDER)
    quantity_cum = _cumulative(_QUANTITY)
    stamp = day.strftime("%Y%m%d")
    year, month, dom = day.year, day.month, day.day
    records: list[SaleRecord] = []
    append = records.append
    for store in STORES:
        mean = store.traffic * demand * weather * (store.weekend if weekend else 1.0)
        orders = max(0, round(mean * math.exp(0.06 * _normal(draw))))
        minutes = sorted([_minute_of_day(draw, hour_cum, opens, closes) for _ in range(orders)])
        for seq, minute in enumerate(minutes, start=1):
            order_id = f"{store.store_id}-{stamp}-{seq:04d}"
            sold_at = datetime(year, month, dom, minute // 60, minute % 60, int(draw() * 60))
            products = product_cum[minute // 60 - _FIRST_HOUR]
            chosen: set[int] = set()
            for _ in range(bisect(lines_cum, draw()) + 1):
                index = bisect(products, draw())
                if index in chosen:
                    continue
                chosen.add(index)
                product = PRODUCTS[index]
                append(
                    SaleRecord(
                        order_id,
                        sold_at,
                        store.store_id,
                        store.name,
                        store.city,
                        product.name,
                        product.category,
                        bisect(quantity_cum, draw()) + 1,
                        product.price_cents,
                    )
                )
    return records


def encode_day(records: Iterable[SaleRecord]) -> bytes:
    """Gzip CSV with a header row; times as ``2021-01-01 10:03:07``, the form Athena reads as a timestamp.

    Level 6 keeps a day near 12 kB; rows are pulled out with ``attrgetter`` so the loop runs in C
    (a three-year seed encodes 1,100 days).
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(map(_ROW, records))
    return gzip.compress(text.getvalue().encode(), compresslevel=6, mtime=0)


def decode_day(data: bytes) -> list[SaleRecord]:
    """Inverse of ``encode_day``; columns are found by header name so added columns do not break readers."""
    rows = csv.reader(gzip.decompress(data).decode().splitlines())
    header = next(rows, None)
    if header is None:
        return []
    index = {name: position for position, name in enumerate(header)}
    missing = [name for name in CSV_COLUMNS if name not in index]
    if missing:
        raise ValueError(f"sales CSV lacks column(s) {', '.join(missing)}")
    pick = itemgetter(*(index[name] for name in CSV_COLUMNS))
    times: dict[str, datetime] = {}
    records: list[SaleRecord] = []
    append = records.append
    for row in rows:
        order_id, sold_at, store_id, store_name, city, product, category, quantity, price = pick(row)
        when = times.get(sold_at)
        if when is None:
            when = times[sold_at] = datetime.fromisoformat(sold_at)
        append(SaleRecord(order_id, when, store_id, store_name, city, product, category, int(quantity), int(price)))
    return records


_ROW = attrgetter(*CSV_COLUMNS)
"""A record's CSV fields in column order (``csv`` writes the datetime with ``str``: ISO 8601 with a space)."""


def _normal(draw: Callable[[], float]) -> float:
    """A standard normal from two uniforms (Box-Muller), so only ``random()`` is ever drawn."""
    u1 = 1.0 - draw()
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * draw())


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative shares for ``bisect(cum, random())``; a zero weight (a closed hour) can never be drawn.

    From the last non-zero weight on, the bound is pushed past 1.0 so rounding cannot leave a draw
    just below 1.0 to fall through to a trailing zero-weight entry.
    """
    total = sum(weights)
    cum = [value / total for value in accumulate(weights)]
    last = max(index for index, weight in enumerate(weights) if weight > 0)
    cum[last:] = [1.0 + 1e-9] * (len(cum) - last)
    return cum


def _summer(day: date) -> float:
    """+1 at the warmest point of the year (late July), -1 at the coldest (late January)."""
    return math.cos(2.0 * math.pi * (day.timetuple().tm_yday - 205) / 365.25)


def _trend(day: date) -> float:
    """About 7 % a year of growth from the start of 2020, levelling off outside the sample years."""
    years = (min(max(day, date(2019, 1, 1)), date(2023, 12, 31)) - SAMPLE_DATA_START).days / 365.25
    return 1.0 + 0.07 * years


def _covid(day: date) -> float:
    """The spring 2020 dip: a fall to a third mid-March, then a slow recovery until summer 2021."""
    start, bottom, recovered = date(2020, 3, 12), date(2020, 4, 10), date(2021, 7, 1)
    if day < start or day >= recovered:
        return 1.0
    if day < bottom:
        return 1.0 - 0.65 * (day - start).days / (bottom - start).days
    return 0.35 + 0.65 * math.sqrt((day - bottom).days / (recovered - bottom).days)


def _season(summer: float) -> float:
    """Slightly busier in summer, when people are out and about."""
    return 1.0 + 0.05 * summer


def _hour_weights(weekend: bool, opens: int, closes: int) -> list[float]:
    """Each hour's share scaled by how much of it the store is open today compared with a normal day."""
    weights = []
    for offset, weight in enumerate(_WEEKEND_HOURS if weekend else _WEEKDAY_HOURS):
        start = (_FIRST_HOUR + offset) * 60
        normal = _open_minutes(start, OPENS_MINUTE, CLOSES_MINUTE)
        weights.append(weight * _open_minutes(start, opens, closes) / normal)
    return weights


def _open_minutes(hour_start: int, opens: int, closes: int) -> int:
    return max(0, min(closes, hour_start + 60) - max(opens, hour_start))


def _minute_of_day(draw: Callable[[], float], hour_cum: list[float], opens: int, closes: int) -> int:
    hour_start = (_FIRST_HOUR + bisect(hour_cum, draw())) * 60
    first = max(hour_start, opens)
    last = min(hour_start + 60, closes)
    return first + int(draw() * (last - first))


def _product_weights(hour: int, summer: float) -> list[float]:
    """Coffee leads in the morning, food at breakfast and lunch, cold drinks on summer afternoons."""
    weights = []
    for product in PRODUCTS:
        weight = product.popularity
        if product.category == COLD:
            weight *= max(0.15, 1.0 + 0.85 * summer) * (1.5 if hour >= 12 else 0.7)
        elif product.category in (COFFEE, TEA):
            weight *= 1.0 - 0.18 * summer
            if product.category == TEA or product.name == "Mocha":
                weight *= 1.25 if hour >= 14 else 0.9
        elif product.name == "Turkey Sandwich":
            weight *= 3.2 if 11 <= hour <= 13 else 0.35
        elif product.category == FOOD:
            weight *= 1.5 if hour < 11 else 0.7
        weights.append(weight)
    return weights
