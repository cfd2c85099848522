"""``SitooSandbox``: the emulator served on a loopback port in a background thread."""

from __future__ import annotations

import threading

from magsit.sandbox.common import Control, LoopbackServer
from magsit.sandbox.sitoo.app import create_app
from magsit.sandbox.sitoo.state import SitooState


class SitooSandbox:
    """The emulator on a loopback port: ``with SitooSandbox() as sb: requests.get(sb.base_url + …)``."""

    def __init__(
        self, state: SitooState | None = None, control: Control | None = None, port: int = 0
    ) -> None:
        self.state = state or SitooState()
        self.control = control or Control()
        self._port = port
        self.server: LoopbackServer | None = None

    def start(self) -> SitooSandbox:
        server = LoopbackServer(create_app(self.state, self.control), port=self._port)
        # serve_forever polls for shutdown every 0.5 s by default, which makes every stop() cost
        # half a second; a short poll keeps per-test sandboxes cheap.
        server.thread = threading.Thread(
            target=lambda: server.server.serve_forever(poll_interval=0.02),
            name=server.thread.name,
            daemon=True,
        )
        self.server = server.start()
        return self

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("sandbox not started")
        return self.server.url

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/accounts/{self.state.account_id}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.state.api_id, self.state.password)

    def stop(self) -> None:
        self.state.stop_events()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> SitooSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
