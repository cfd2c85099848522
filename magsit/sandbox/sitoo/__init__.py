"""A runnable HTTP emulator of the Sitoo REST API v2 (plus an Events SPI sender).

Written from ``reference/sitoo-api.md`` alone; it imports nothing from magsit's clients or flows so a
misreading in a client is not silently repeated here. Where the reference marks a behaviour as
inferred ([I]) the emulator picks the documented guess and says so in a comment.

Layout (a module per concern; the state knows nothing of HTTP, the routes hold no state):

- ``state/`` -- ``SitooState``, the in-memory account (thread-safe, one RLock) in layers:
  ``account`` (data, ids, stores/warehouses/registers), ``events`` (the Events SPI sender),
  ``catalog`` (products, users), ``stock`` (warehouse items, transactions, reservations),
  ``orders`` (orders, deliveries, log items, the externalid index), ``scenarios`` (what the tests
  and the demo drive directly: till sales, store returns, staff deliveries).
- ``constants`` (ids, codes, default field sets, limits), ``formats`` (money/decimal strings, the
  warehouse-item read model), ``errors`` (``ApiError`` and Sitoo's error body), ``validation``
  (write-body checks).
- HTTP: ``http`` (JSON in/out, batch envelope, ``Routes``), ``query`` (filters, ``fields``,
  ``sort``, ``start``/``num`` paging), ``auth`` (Basic auth, account/site), ``routes/`` (one module
  per resource, plus ``control`` for ``/_sandbox/``), ``app`` (``create_app``), ``server``
  (``SitooSandbox``, the app on a loopback port).
"""

from magsit.sandbox.sitoo.app import create_app
from magsit.sandbox.sitoo.errors import ApiError
from magsit.sandbox.sitoo.server import SitooSandbox
from magsit.sandbox.sitoo.state import SitooState

__all__ = ["ApiError", "SitooSandbox", "SitooState", "create_app"]
