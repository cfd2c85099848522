"""The in-memory Sitoo account, in layers (each module adds one concern to the one below):
``account`` (data, ids, stores/warehouses/registers) < ``events`` (the Events SPI sender) <
``catalog`` (products, users) < ``stock`` (items, transactions, reservations) < ``orders`` (orders,
deliveries, log items, the externalid index) < ``scenarios`` (till sales, store returns, staff
deliveries). ``SitooState`` is the top layer plus a JSON snapshot of everything."""

from __future__ import annotations

from typing import Any

from magsit.sandbox.sitoo.state.scenarios import Scenarios


class SitooState(Scenarios):
    """One Sitoo account (id 90001) with one site/eshop (1), in memory, thread-safe (one RLock)."""

    # ---- introspection --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready (for ``GET /_sandbox/state`` and debugging)."""
        with self.lock:
            return {
                "account_id": self.account_id,
                "eshop_id": self.eshop_id,
                "stores": list(self.stores.values()),
                "warehouses": list(self.warehouses.values()),
                "registers": [
                    {k: v for k, v in r.items() if not k.startswith("_")} for r in self.registers.values()
                ],
                "products": list(self.products.values()),
                "users": list(self.users.values()),
                "warehouseitems": [
                    self.render_item(it)
                    for it in sorted(self._items.values(), key=lambda i: i["warehouseitemid"])
                ],
                "orders": [self.render_order(oid) for oid in sorted(self.orders)],
                "deliveries": list(self.deliveries.values()),
                "transactions": self.transactions,
                "events_sent": len(self.events_sent),
                "events_dropped": len(self.events_dropped),
                "events_queued": len(self._event_queue),
            }
