from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magsit.sync.inflight import in_flight_by_source, in_flight_by_warehouse, in_flight_units

W2S = {"1": "default", "2": "store-2", "3": "default"}


def order(lines, warehouse=1, status="pushed", other_id="77", open_=True):
    return {
        "entity": "order",
        "external_id": "000000001",
        "other_id": other_id,
        "status": status,
        "data": {"warehouse_id": warehouse, "lines": lines, "open": open_},
    }


def line(sku, qty, shipped=0, canceled=0):
    return {"sku": sku, "qty": qty, "shipped": shipped, "canceled": canceled}


def test_pushed_minus_shipped_minus_canceled_per_source():
    mappings = [
        order([line("A", 3, shipped=1), line("B", 2, canceled=2)], warehouse=1),
        order([line("A", 1)], warehouse=3),  # warehouse 3 also feeds "default": adds up
        order([line("A", 5)], warehouse=2),
    ]
    assert in_flight_units(mappings, W2S) == {("A", "default"): Decimal(3), ("A", "store-2"): Decimal(5)}


def test_per_warehouse_units_for_the_stock_formula():
    mappings = [order([line("A", 3, shipped=1)], warehouse=1), order([line("A", 1)], warehouse="3"), order([line("A", 5)], warehouse=9)]
    assert in_flight_by_warehouse(mappings) == {("A", "1"): Decimal(2), ("A", "3"): Decimal(1), ("A", "9"): Decimal(5)}
    assert in_flight_by_warehouse(mappings, {"1", "2"}) == {("A", "1"): Decimal(2)}
    assert in_flight_by_source(mappings, W2S) == {("A", "default"): {"1": Decimal(2), "3": Decimal(1)}}


def test_finished_closed_unmapped_and_unconfirmed_orders_do_not_count():
    mappings = [
        order([line("A", 1)], status="shipped"),
        order([line("A", 1)], status="canceled"),
        order([line("A", 1)], open_=False),
        order([line("A", 1)], other_id=None, status="pending"),  # create not confirmed yet
        order([line("A", 1)], warehouse=9),  # warehouse feeding no source
    ]
    assert in_flight_units(mappings, W2S) == {}


def test_over_shipped_line_never_goes_negative_and_decimals_from_json_strings():
    mappings = [order([line("A", "2", shipped="3"), line("B", "1.5")])]
    assert in_flight_units(mappings, W2S) == {("B", "default"): Decimal("1.5")}


garbage = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "status": st.one_of(st.none(), st.sampled_from(["pushed", "shipped", "x"])),
                "other_id": st.one_of(st.none(), st.just("1")),
                "data": st.one_of(
                    garbage,
                    st.fixed_dictionaries(
                        {
                            "warehouse_id": st.one_of(garbage, st.sampled_from([1, 2, "3"])),
                            "lines": st.one_of(
                                garbage,
                                st.lists(
                                    st.one_of(
                                        garbage,
                                        st.fixed_dictionaries(
                                            {"sku": st.one_of(garbage, st.text(min_size=1, max_size=5)), "qty": garbage, "shipped": garbage}
                                        ),
                                    ),
                                    max_size=4,
                                ),
                            ),
                        }
                    ),
                ),
            }
        ),
        max_size=5,
    )
)
def test_garbage_mappings_never_crash_and_never_yield_negative_units(mappings):
    result = in_flight_units(mappings, W2S)
    assert all(isinstance(v, Decimal) and v > 0 for v in result.values())
