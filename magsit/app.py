"""The shared app object every command receives: global options and lazily loaded config/consoles.

It lives apart from ``cli`` so that a command module imports on its own: ``cli`` imports every
command, and a command importing ``cli`` back would be a cycle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import click
from rich.console import Console
from rich.text import Text

from magsit.config import Config, load_config

PIPED_WIDTH = 200


@dataclass
class App:
    """Global options and lazily loaded shared objects, passed to every command as ctx.obj."""

    config_path: str | None = None
    dry_run: bool = False
    json: bool = False
    verbose: int = 0
    quiet: bool = False
    log_format: str = "rich"
    wait_lock: float = 0.0
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            for warning in self._config.warnings:
                self.err.print(Text.assemble(("warning:", "yellow"), " ", str(warning)))
        return self._config

    @property
    def out(self) -> Console:
        console = Console(highlight=False, soft_wrap=False, emoji=False)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            # Piped to a file, a pager or cron mail: do not fold every table at 80 columns.
            console = Console(highlight=False, soft_wrap=False, emoji=False, width=PIPED_WIDTH)
        return console

    @property
    def err(self) -> Console:
        return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

    def echo(self, message: str) -> None:
        """A plain-text progress line on stderr (never read as markup)."""
        if not self.quiet:
            self.err.print(message, markup=False)


pass_app = click.make_pass_decorator(App)
