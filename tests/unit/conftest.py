"""Unit-test isolation: a test that runs the CLI in-process (click's CliRunner) reconfigures the
"magsit" logger (handlers on the runner's captured stream, propagate off); put it back afterwards so
later tests' ``caplog`` still sees magsit's records."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_magsit_logger() -> Iterator[None]:
    logger = logging.getLogger("magsit")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate, logger.level = saved[1], saved[2]
