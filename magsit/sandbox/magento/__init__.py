"""Magento 2.4 admin REST API emulator (Open Source + MSI), written from the API reference alone.

It deliberately imports nothing from magsit's clients or flows (see DESIGN.md "The sandbox"): a
misreading of the API in the client must not be silently repeated here. Section numbers (§n) refer
to ``magento-api.md``. Behaviours the reference marks as inferred are emulated as described there.

Routing is done on the *raw* request URI rather than Flask's URL map: Magento splits the path on
``/`` first and then ``urldecode()``s each segment, so ``%2F`` stays inside a SKU and a raw ``+``
becomes a space (§13). Werkzeug decodes ``PATH_INFO`` before routing, which would lose both.

The map (docs/ENGINEERING.md has it too): ``state`` + ``sales`` + ``documents`` are the shop in
memory; ``search``, ``fields``, ``validation``, ``schemas`` what every request goes through;
``auth`` and ``oauth`` who may call; ``routing`` + ``routes/`` one module per resource;
``dispatch`` one request end to end; ``control`` the ``/_sandbox`` API; ``app`` the Flask app and
``MagentoSandbox``.
"""

from magsit.sandbox.magento.app import MagentoSandbox, create_app
from magsit.sandbox.magento.errors import ApiError
from magsit.sandbox.magento.state import MagentoState

__all__ = ["ApiError", "MagentoSandbox", "MagentoState", "create_app"]
