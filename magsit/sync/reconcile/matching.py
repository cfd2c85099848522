"""Which Sitoo transaction is which Magento order: the indexes, the pairs, and the Sitoo books.

A web order is matched through the state file's order mapping first (exact, also for shortened
externalids), then by the externalid push-orders gives it (prefix + increment id). Sitoo orders
that are not web orders are split into refunds of web orders and the stores' own POS sales and
refunds.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from magsit.sync.orderpayload import sanitise_externalid
from magsit.sync.reconcile.figures import SITOO_GONE, additional, is_web_order
from magsit.sync.reconcile.money import dec
from magsit.sync.reconcile.snapshot import Snapshot

Order = dict[str, Any]
Pair = tuple[str, Order | None, Order | None]  # (increment id, Magento order, Sitoo order)


@dataclass
class Index:
    """Both sides' orders by their keys (in-period and outside-the-period ones alike)."""

    snapshot: Snapshot
    mag_by_inc: dict[str, Order] = field(default_factory=dict)
    mag_by_id: dict[int, Order] = field(default_factory=dict)
    sitoo_by_id: dict[int, Order] = field(default_factory=dict)
    sitoo_by_ext: dict[str, Order] = field(default_factory=dict)
    inc_by_sitoo: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: Snapshot) -> Index:
        index = cls(snapshot)
        for order in [*snapshot.magento_other_orders, *snapshot.magento_orders]:
            index.mag_by_inc[str(order.get("increment_id"))] = order
            if order.get("entity_id") is not None:
                index.mag_by_id[int(order["entity_id"])] = order
        for order in [*snapshot.sitoo_other_orders, *snapshot.sitoo_orders]:
            if order.get("orderid") is not None:
                index.sitoo_by_id[int(order["orderid"])] = order
        index.sitoo_by_ext = {
            str(o["externalid"]): o for o in index.sitoo_by_id.values() if o.get("externalid") and is_web_order(o)
        }
        for inc, mapping in snapshot.mappings.items():
            if mapping.get("other_id"):
                with contextlib.suppress(ValueError):
                    index.inc_by_sitoo[int(mapping["other_id"])] = inc
        return index

    def increment_of(self, order: Order) -> str:
        """The Magento increment id a Sitoo web order stands for."""
        oid = int(order["orderid"])
        if oid in self.inc_by_sitoo:
            return self.inc_by_sitoo[oid]
        tagged = additional(order).get("magento-increment-id")
        if tagged:
            return str(tagged)
        ext = str(order.get("externalid") or "")
        prefix = self.snapshot.externalid_prefix
        return ext[len(prefix):] if prefix and ext.startswith(prefix) else ext

    def counterpart(self, inc: str) -> Order | None:
        """The Sitoo order of a Magento order: the mapped one, else the one with its externalid."""
        mapping = self.snapshot.mappings.get(inc)
        if mapping and mapping.get("other_id"):
            try:
                found = self.sitoo_by_id.get(int(mapping["other_id"]))
            except ValueError:
                found = None
            if found is not None:
                return found
        ext = (mapping or {}).get("data", {}).get("externalid") or sanitise_externalid(self.snapshot.externalid_prefix, inc)
        return self.sitoo_by_ext.get(str(ext))


def web_order_keys(index: Index) -> list[str]:
    """Which web orders belong to this period: created in Magento in it, or dated in Sitoo in it."""
    snapshot = index.snapshot
    keys: list[str] = list(dict.fromkeys(str(o.get("increment_id")) for o in snapshot.magento_orders))
    for order in snapshot.sitoo_orders:
        if is_web_order(order):
            inc = index.increment_of(order)
            if inc not in keys:
                keys.append(inc)
    return keys


def pair_web_orders(index: Index) -> list[Pair]:
    """Every web order of the period with its two sides (either may be None)."""
    pairs: list[Pair] = []
    for inc in web_order_keys(index):
        m = index.mag_by_inc.get(inc)
        if m is not None:
            s = index.counterpart(inc)
        else:
            s = next((o for o in index.snapshot.sitoo_orders if is_web_order(o) and index.increment_of(o) == inc), None)
        pairs.append((inc, m, s))
    return pairs


@dataclass
class SitooBooks:
    """The period's Sitoo orders by what they are (cancelled and abandoned ones are in none but ``web``)."""

    web: list[Order] = field(default_factory=list)  # web orders dated in the period, whatever their state
    web_refunds: dict[str, list[Order]] = field(default_factory=dict)  # increment id of the original -> refunds
    pos_sales: list[Order] = field(default_factory=list)
    pos_refunds: list[Order] = field(default_factory=list)


def sitoo_books(index: Index) -> SitooBooks:
    books = SitooBooks(web=[o for o in index.snapshot.sitoo_orders if is_web_order(o)])
    web_refunds: dict[str, list[Order]] = defaultdict(list)
    for order in index.snapshot.sitoo_orders:
        if order.get("orderstateid") in SITOO_GONE:
            continue
        original = index.sitoo_by_id.get(int(order.get("creditorderid") or 0)) if order.get("creditorderid") else None
        if original is not None and is_web_order(original):
            web_refunds[index.increment_of(original)].append(order)
        elif order.get("registerid") and (order.get("creditorderid") or dec(order.get("moneytotal_gross_all")) < 0):
            books.pos_refunds.append(order)
        elif order.get("registerid"):
            books.pos_sales.append(order)
        elif order.get("creditorderid"):
            books.pos_refunds.append(order)  # a refund of a non-web order without a till: count it with the store
    books.web_refunds = dict(web_refunds)
    return books
