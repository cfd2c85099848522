"""The emulator's prepared filters answer exactly like the reference ``match_filter``."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from magsit.sandbox.magento.search import compile_filter, match_filter, text_number

token = st.one_of(
    st.sampled_from(["SKU-1", "sku-1", "1", "01", "1.0", " 2", "nan", "inf", "-0", "0", "", "a b", "ÅÄ", "åä", "1e3"]),
    st.text(max_size=6),
)
row_value = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 1500), st.floats(allow_nan=True), token,
    st.lists(st.integers(0, 3), max_size=2),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(value=row_value, cond=st.sampled_from(["in", "nin", "eq", "neq", "IN", "gt", "like"]), values=st.lists(token, min_size=1, max_size=4))
def test_prepared_filter_matches_the_reference(value: Any, cond: str, values: list[str]) -> None:
    spec = ",".join(values) if cond.lower() in ("in", "nin") else values[0]
    try:
        expected: Any = match_filter(value, cond, spec)
    except Exception as exc:  # the reference raising (e.g. unknown condition) must raise alike
        expected = type(exc)
    try:
        got: Any = compile_filter(cond, spec)(value)
    except Exception as exc:
        got = type(exc)
    assert got == expected, (value, cond, spec)


def test_sku_in_filter_is_case_insensitive_and_trims_the_list() -> None:
    test = compile_filter("in", "SKU-1, sku-2 ,3")
    assert [test(v) for v in ("sku-1", "SKU-2", 3, "3.0", "SKU-3", None)] == [True, True, True, True, False, False]


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=8), st.from_regex(r"\s*[+-]?(inf|nan|\d+)?\.?\d*(e\d+)?\s*", fullmatch=True)))
def test_text_number_agrees_with_float(text: str) -> None:
    try:
        expected: float | None = float(text)
    except ValueError:
        expected = None
    got = text_number(text)
    if expected is None or got is None:
        assert got is expected
    else:
        assert got == expected or (got != got and expected != expected)
