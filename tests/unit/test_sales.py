"""The sample sales: a deterministic, realistic generator and the gzip CSV each day is stored as."""

from __future__ import annotations

import gzip
import statistics
from datetime import date, datetime, timedelta

import pytest

from reports.sales import (
    CATEGORIES,
    PRODUCTS,
    SAMPLE_DATA_END,
    SAMPLE_DATA_START,
    STORES,
    SaleRecord,
    decode_day,
    encode_day,
    generate_day,
    sales_key,
)


def orders(records: list[SaleRecord]) -> int:
    return len({record.order_id for record in records})


def revenue(records: list[SaleRecord]) -> int:
    return sum(record.total_cents for record in records)


def test_the_same_day_always_has_the_same_records() -> None:
    # GIVEN a day
    day = date(2021, 3, 17)
    # WHEN it is generated twice
    first, second = generate_day(day), generate_day(day)
    # THEN the records are equal, and another day's differ
    assert first == second
    assert first != generate_day(day + timedelta(days=1))


def test_the_generator_is_pinned_to_known_figures() -> None:
    # GIVEN the day the demo reports on
    records = generate_day(date(2021, 1, 1))
    # THEN its figures are these (a change here changes every stored bucket and sample report)
    assert (len(records), orders(records), revenue(records)) == (534, 401, 302_905)
    assert records[0] == SaleRecord(
        "SEA-01-20210101-0001",
        datetime(2021, 1, 1, 10, 0, 10),
        "SEA-01",
        "Pike Place",
        "Seattle",
        "Latte",
        "coffee",
        3,
        495,
    )


@pytest.mark.parametrize("day", [date(2020, 12, 25), date(2021, 12, 25), date(2022, 12, 25)])
def test_every_store_is_closed_on_christmas_day(day: date) -> None:
    # WHEN Christmas Day is generated
    records = generate_day(day)
    # THEN there is nothing: a real day without data
    assert records == []


def test_new_years_day_trades_on_short_holiday_hours() -> None:
    # WHEN New Year's Day is generated
    records = generate_day(date(2021, 1, 1))
    # THEN the stores open late and close early
    hours = {record.sold_at.hour for record in records}
    assert min(hours) >= 10
    assert max(hours) < 16


def test_records_are_complete_and_in_range() -> None:
    # GIVEN a normal weekday
    day = date(2022, 6, 15)
    # WHEN it is generated
    records = generate_day(day)
    # THEN every field is plausible
    prices = {product.name: product.price_cents for product in PRODUCTS}
    assert 300 <= orders(records) <= 1800
    for record in records:
        assert record.sold_at.date() == day
        assert (6, 30) <= (record.sold_at.hour, record.sold_at.minute) < (20, 0)
        assert record.category in CATEGORIES
        assert record.unit_price_cents == prices[record.product]
        assert 1 <= record.quantity <= 4
        assert record.total_cents == record.quantity * record.unit_price_cents
    assert {record.store_id for record in records} == {store.store_id for store in STORES}
    assert len({record.order_id for record in records}) == orders(records)


def test_order_lines_of_one_order_share_store_and_time() -> None:
    # GIVEN a day's records
    records = generate_day(date(2021, 5, 4))
    # WHEN lines are grouped by order
    by_order: dict[str, set[tuple[str, object]]] = {}
    for record in records:
        by_order.setdefault(record.order_id, set()).add((record.store_id, record.sold_at))
    # THEN each order happened once, in one store, and some orders have several lines
    assert all(len(places) == 1 for places in by_order.values())
    assert len(records) > len(by_order)


def test_weekends_trade_differently_from_weekdays() -> None:
    # GIVEN four weeks of October 2022
    days = [date(2022, 10, 3) + timedelta(days=offset) for offset in range(28)]
    by_day = {day: generate_day(day) for day in days}

    # WHEN the morning rush and the office-district store are compared
    def share_before_nine(records: list[SaleRecord]) -> float:
        return sum(1 for record in records if record.sold_at.hour < 9) / len(records)

    def office_share(records: list[SaleRecord]) -> float:
        return sum(record.total_cents for record in records if record.store_id == "SFO-01") / revenue(records)

    weekday = [records for day, records in by_day.items() if day.weekday() < 5]
    weekend = [records for day, records in by_day.items() if day.weekday() >= 5]
    # THEN weekdays start earlier and the Financial District store is quieter at weekends
    assert statistics.mean(map(share_before_nine, weekday)) > 1.5 * statistics.mean(map(share_before_nine, weekend))
    assert statistics.mean(map(office_share, weekday)) > 1.5 * statistics.mean(map(office_share, weekend))


def test_cold_drinks_sell_in_summer_and_hot_drinks_in_winter() -> None:
    # GIVEN a week in July and a week in January
    def category_share(start: date, category: str) -> float:
        records = [record for offset in range(7) for record in generate_day(start + timedelta(days=offset))]
        return sum(record.total_cents for record in records if record.category == category) / revenue(records)

    # THEN the mix follows the season
    assert category_share(date(2022, 7, 11), "cold drinks") > 3 * category_share(date(2022, 1, 10), "cold drinks")
    assert category_share(date(2022, 1, 10), "coffee") > category_share(date(2022, 7, 11), "coffee")


def test_spring_2020_dips_and_the_chain_grows_after() -> None:
    # GIVEN the same fortnight in three years
    def fortnight(year: int, month: int) -> int:
        start = date(year, month, 1)
        return sum(revenue(generate_day(start + timedelta(days=offset))) for offset in range(14))

    # THEN April 2020 is far below February 2020, and each spring is above the year before's
    assert fortnight(2020, 4) < 0.5 * fortnight(2020, 2)
    assert fortnight(2020, 9) < fortnight(2021, 9) < fortnight(2022, 9)


def test_the_sample_range_is_the_three_years_2020_to_2022() -> None:
    sample_range = (SAMPLE_DATA_START, SAMPLE_DATA_END)
    assert sample_range == (date(2020, 1, 1), date(2022, 12, 31))


def test_the_key_is_a_hive_style_date_partition() -> None:
    assert sales_key(date(2021, 1, 5)) == "sales/date=2021-01-05/orders.csv.gz"


def test_a_day_survives_encoding_and_decoding() -> None:
    # GIVEN a day's records
    records = generate_day(date(2021, 8, 20))
    # WHEN encoded and decoded
    data = encode_day(records)
    # THEN the records come back equal, from a gzip CSV with a header a person can read
    assert decode_day(data) == records
    header = gzip.decompress(data).decode().splitlines()[0]
    assert header.startswith("order_id,sold_at,store_id,")


def test_encoding_is_byte_for_byte_stable() -> None:
    # GIVEN the same records encoded twice
    records = generate_day(date(2021, 8, 20))
    # THEN the bytes are identical (no timestamp in the gzip header), so re-seeding rewrites nothing new
    assert encode_day(records) == encode_day(list(records))


def test_decoding_finds_columns_by_name() -> None:
    # GIVEN a file whose columns are reordered and extended
    csv_text = (
        "quantity,unit_price_cents,order_id,sold_at,store_id,store_name,city,product,category,extra\n"
        "2,495,SEA-01-20210101-0001,2021-01-01T10:03:07,SEA-01,Pike Place,Seattle,Latte,coffee,x\n"
    )
    # WHEN decoded
    records = decode_day(gzip.compress(csv_text.encode()))
    # THEN fields land by name
    assert records[0].product == "Latte"
    assert records[0].total_cents == 990


def test_decoding_a_file_without_a_needed_column_says_which() -> None:
    data = gzip.compress(b"order_id,sold_at\nA,2021-01-01T10:00:00\n")
    with pytest.raises(ValueError, match="quantity"):
        decode_day(data)
