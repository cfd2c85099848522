from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magsit.config import StockSettings
from magsit.errors import ConfigError
from magsit.sync.stockplan import (
    MAX_QUANTITY,
    Levels,
    StockSnapshot,
    load_overrides,
    parse_quantity,
    plan,
    target,
    warehouse_terms,
)

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150)


def levels(buffer=0, floor=0, **kw):
    return Levels(StockSettings(buffer=Decimal(buffer), floor=Decimal(floor), **kw))


def test_formula_examples():
    assert target(Decimal(5), Decimal(0), Decimal(0), Decimal(0)) == (Decimal(5), 1)
    assert target(Decimal(1), Decimal(0), Decimal(0), Decimal(1)) == (Decimal(0), 0)  # last unit, floor 1
    assert target(Decimal(0), Decimal(0), Decimal(0), Decimal(0)) == (Decimal(0), 0)
    assert target(Decimal(4), Decimal(1), Decimal(2), Decimal(0)) == (Decimal(3), 1)  # 1 + (4 - 2)
    assert target(Decimal(4), Decimal(0), Decimal(1), Decimal(3)) == (Decimal(0), 0)  # 3 <= floor 3
    assert target(Decimal(2), Decimal(0), Decimal(5), Decimal(0)) == (Decimal(0), 0)
    # The buffer and floor never take back a unit already sold (issue 16 §1): Sitoo had 2, buffer 1,
    # a pushed web order holds 1 and a POS sale took the other: the sold unit stays on the source.
    assert target(Decimal(0), Decimal(1), Decimal(1), Decimal(0)) == (Decimal(1), 1)
    assert target(Decimal(1), Decimal(2), Decimal(0), Decimal(3)) == (Decimal(2), 1)  # 1 <= floor: sellable 0
    assert target(Decimal(5), Decimal(2), Decimal(1), Decimal(3)) == (Decimal(6), 1)  # 2 + (5 - 1)


def test_units_sitoo_does_not_hold_are_not_added_twice():
    # Sitoo shows 0 reserved for the 2 units magsit pushed (no reservation, or it lapsed): they are
    # still in its available 5, so Magento gets 5 (2 of them sold), not 7.
    snap = StockSnapshot(items={("A", "default"): {"1": "5.000"}}, in_flight={("A", "default"): {"1": Decimal(2)}},
                         reserved={("A", "default"): {"1": "0.000"}})
    (row,) = plan(snap, {}, levels(buffer=1)).rows
    assert (row.sitoo_available, row.in_flight, row.qty) == (Decimal(3), Decimal(2), Decimal(4))  # 2 + (3 - 1)
    snap.reserved = {("A", "default"): {"1": "1.000"}}  # one of the two held
    (row,) = plan(snap, {}, levels()).rows
    assert row.qty == 6
    snap.reserved = {("A", "default"): {"1": "2.000"}}
    (row,) = plan(snap, {}, levels()).rows
    assert row.qty == 7


def test_sums_warehouses_of_one_source_and_adds_in_flight():
    snap = StockSnapshot(items={("A", "default"): {"1": "2.000", "3": "1.000"}}, in_flight={("A", "default"): {"1": Decimal(1)}})
    result = plan(snap, {}, levels())
    (row,) = result.rows
    assert (row.sitoo_available, row.in_flight, row.qty, row.status, row.write) == (Decimal(3), Decimal(1), Decimal(4), 1, True)


def test_no_write_when_equal_to_baseline_and_full_run_uses_magento_values():
    snap = StockSnapshot(items={("A", "default"): {"1": "5.000"}})
    assert plan(snap, {("A", "default"): (Decimal("5.0000"), 1)}, levels()).writes == []
    snap.magento = {("A", "default"): (Decimal(7), 1)}  # changed by hand in Magento
    (row,) = plan(snap, {("A", "default"): (Decimal(5), 1)}, levels()).writes
    assert row.qty == 5


def test_negative_counts_as_zero_reported_and_still_written():
    snap = StockSnapshot(items={("A", "default"): {"1": "-2.000", "3": "1.000"}})
    result = plan(snap, {("A", "default"): (Decimal(9), 1)}, levels())
    assert [p.kind for p in result.problems] == ["negative_stock"]
    (row,) = result.writes
    assert row.qty == 1


def test_in_flight_units_stay_on_the_source_whatever_sitoo_shows():
    # Store 2 has 0 on hand and reserved 1 for a pushed click & collect order: Sitoo shows -1.
    # Magento gets the 1 sold unit (its own reservation keeps it off sale; the shipment needs it on
    # the source) and nothing sellable; a reservation alone is no negative_stock.
    snap = StockSnapshot(items={("A", "store"): {"2": "-1.000"}}, in_flight={("A", "store"): {"2": Decimal(1)}})
    result = plan(snap, {("A", "store"): (Decimal(0), 0)}, levels(buffer=1))
    (row,) = result.rows
    assert (row.qty, row.status, row.write) == (Decimal(1), 1, True)
    assert (row.sitoo_available, row.in_flight) == (Decimal(0), Decimal(1))
    assert result.problems == [] and result.clean_keys == ["A@warehouse 2"]
    # A negative warehouse does not eat the sellable units of another warehouse of the same source.
    snap = StockSnapshot(items={("A", "default"): {"1": "-1.000", "3": "2.000"}}, in_flight={("A", "default"): {"3": Decimal(1)}})
    result = plan(snap, {}, levels())
    assert result.rows[0].qty == 3  # 1 in flight + max(0, -1) + max(0, 2)
    assert [p.key for p in result.problems] == ["A@warehouse 1"]
    # More sold than on hand beyond the reservation: a real miscount, reported; the sold unit stays
    snap = StockSnapshot(items={("A", "store"): {"2": "-3.000"}}, in_flight={("A", "store"): {"2": Decimal(1)}})
    result = plan(snap, {}, levels())
    assert [(p.kind, p.key) for p in result.problems] == [("negative_stock", "A@warehouse 2")]
    assert result.rows[0].qty == 1 and result.problems[0].payload["in_flight"] == "1"


def test_warehouse_terms_single_warehouse_is_designs_formula():
    for avail in ("-2", "0", "3.5"):
        a = Decimal(avail)
        total, flight, short = warehouse_terms({"1": a}, {})
        assert (total, flight) == (max(Decimal(0), a), Decimal(0)) and bool(short) == (a < 0)
        total, flight, short = warehouse_terms({"1": a}, {"1": Decimal(2)})
        assert (total, flight) == (max(Decimal(0), a), Decimal(2)) and bool(short) == (a + 2 < 0)
    # in flight where Sitoo has no item (yet): counted as 0 on hand + the units
    assert warehouse_terms({}, {"4": Decimal(2)}) == (Decimal(0), Decimal(2), {})


def test_per_source_and_per_sku_levels(tmp_path: Path):
    csv = tmp_path / "o.csv"
    csv.write_text("sku,source_code,buffer,floor\nA,,2,\nA,store,,5\nB,default,0,0\n")
    lv = Levels(StockSettings(buffer=Decimal(1), source_buffer={"store": Decimal(3)}, source_floor={"store": Decimal(1)}), load_overrides(csv))
    assert lv("A", "default") == (Decimal(2), Decimal(0))
    assert lv("A", "store") == (Decimal(2), Decimal(5))
    assert lv("B", "default") == (Decimal(0), Decimal(0))
    assert lv("C", "store") == (Decimal(3), Decimal(1))
    assert lv("C", "default") == (Decimal(1), Decimal(0))


@pytest.mark.parametrize(
    "text, line",
    [
        ("sku,source,buffer,floor\n", "line 1"),
        ("sku,source_code,buffer,floor\nA,,x,\n", "line 2"),
        ("sku,source_code,buffer,floor\nA,,1,\nB,,-1,\n", "line 3"),
        ("sku,source_code,buffer,floor\nA,,1\n", "line 2"),
        ("sku,source_code,buffer,floor\nA,,1,1\nA,,2,2\n", "line 3"),
        ("sku,source_code,buffer,floor\n,,1,1\n", "line 2"),
    ],
)
def test_bad_override_csv_names_the_line(tmp_path: Path, text, line):
    path = tmp_path / "o.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=line):
        load_overrides(path)


def test_garbage_examples_become_problems():
    snap = StockSnapshot(
        items={
            ("A", "default"): {"1": None},
            ("B", "default"): {"1": "NaN"},
            ("C", "default"): {"1": "1e30"},
            (" D", "default"): {"1": "1"},
            ("", "default"): {"1": "1"},
            ("ÅÄÖ ✓/+ x", "default"): {"1": "2"},
        }
    )
    result = plan(snap, {}, levels())
    assert sorted(p.kind for p in result.problems) == ["bad_stock_value"] * 3 + ["invalid_sku"] * 2
    assert [r.sku for r in result.rows] == ["ÅÄÖ ✓/+ x"]


sane_qty = st.decimals(min_value=-1000, max_value=100000, places=3, allow_nan=False, allow_infinity=False)
raw_qty = st.one_of(
    sane_qty.map(lambda d: f"{d:.3f}"),
    sane_qty,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(), max_size=1),
)
skus = st.one_of(st.text(max_size=70), st.sampled_from(["A/B", "A B", "A+B", "ÅÄÖ"]), st.none(), st.integers())
levels_st = st.decimals(min_value=0, max_value=50, places=2, allow_nan=False, allow_infinity=False)
baselines = st.tuples(sane_qty.map(lambda d: abs(d)), st.sampled_from([0, 1]))


@FAST
@given(
    items=st.dictionaries(
        st.tuples(skus, st.sampled_from(["default", "store-2"])),
        st.dictionaries(st.sampled_from(["1", "2", "3"]), raw_qty, min_size=1, max_size=3),
        max_size=8,
    ),
    in_flight=st.dictionaries(
        st.tuples(st.sampled_from(["A/B", "A B"]), st.just("default")),
        st.dictionaries(st.sampled_from(["1", "2", "3"]), st.decimals(min_value=0, max_value=100, places=0), max_size=3),
        max_size=2,
    ),
    base=st.dictionaries(st.tuples(st.sampled_from(["A/B", "A B", "A+B", "ÅÄÖ"]), st.sampled_from(["default", "store-2"])), baselines, max_size=4),
    magento=st.one_of(st.none(), st.dictionaries(st.tuples(st.sampled_from(["A/B", "A B"]), st.just("default")), baselines, max_size=2)),
    buffer=levels_st,
    floor=levels_st,
    reserved=st.one_of(
        st.none(),
        st.dictionaries(
            st.tuples(st.sampled_from(["A/B", "A B"]), st.just("default")),
            st.dictionaries(st.sampled_from(["1", "2", "3"]), st.sampled_from(["0.000", "1.000", "3.000", "-1.000", "x"]), max_size=3),
            max_size=2,
        ),
    ),
)
def test_plan_properties(items, in_flight, base, magento, buffer, floor, reserved):
    snap = StockSnapshot(items=items, in_flight=in_flight, magento=magento, reserved=reserved)
    result = plan(snap, base, levels(buffer, floor))
    reference = magento if magento is not None else base
    for row in result.rows:
        assert row.qty >= 0  # never negative
        assert row.qty <= MAX_QUANTITY
        assert row.status == (1 if row.qty > 0 else 0)  # status consistent with quantity
        assert row.qty >= row.in_flight  # a unit already sold is never taken back (issue 16 §1)
        sellable = row.qty - row.in_flight
        assert sellable == 0 or sellable > row.floor  # floor respected on what is for sale
        if row.write:  # never a write equal to the baseline
            b = reference.get((row.sku, row.source))
            assert b is None or (b[0], b[1]) != (row.qty, row.status)
        else:
            b = reference[(row.sku, row.source)]
            assert b[0] == row.qty and b[1] == row.status
    # every input key ends up as a row or as (at least) one problem: nothing vanishes silently
    planned = {(r.sku, r.source) for r in result.rows}
    assert len(planned) == len(result.rows)
    unplanned = [k for k in items if k not in planned]
    assert len(unplanned) == len([p for p in result.problems if p.kind != "negative_stock"])
    for p in result.problems:
        assert p.kind in {"bad_stock_value", "invalid_sku", "negative_stock"}
        assert p.owner in {"ops", "ecommerce"}
    # Reference model (DESIGN): sellable = max(0, Σ max(0, available_w) − buffer), 0 at or below the
    # floor; qty = Σ in_flight_w + sellable. negative_stock exactly where available_w + in_flight_w < 0
    # (a reservation alone is no problem).
    negatives = {(p.payload["sku"], p.payload["source"], p.payload["warehouse"]) for p in result.problems if p.kind == "negative_stock"}
    for row in result.rows:
        raw = items[(row.sku, row.source)]
        flights = {w: u for w, u in in_flight.get((row.sku, row.source), {}).items() if u > 0}
        parsed = {w: parse_quantity(v) for w, v in raw.items()}
        if reserved is not None:  # in-flight units Sitoo does not show reserved are still in its available
            for w, units in flights.items():
                held = parse_quantity((reserved.get((row.sku, row.source)) or {}).get(w))
                if held is not None:
                    parsed[w] = parsed.get(w, Decimal(0)) - min(units, max(Decimal(0), units - max(Decimal(0), held)))
        terms = {w: parsed.get(w, Decimal(0)) + flights.get(w, Decimal(0)) for w in parsed.keys() | flights.keys()}
        parsed = {w: parsed.get(w, Decimal(0)) for w in terms}
        available = sum((max(Decimal(0), a) for a in parsed.values()), Decimal(0))
        sellable = max(Decimal(0), available - buffer)
        sellable = Decimal(0) if sellable <= floor else sellable
        assert row.qty == (sum(flights.values(), Decimal(0)) + sellable).quantize(Decimal("0.0001"))
        assert row.sitoo_available == available
        for w, t in terms.items():
            assert ((row.sku, row.source, w) in negatives) == (t < 0)
