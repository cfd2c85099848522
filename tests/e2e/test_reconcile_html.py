"""The HTML report renders in a real browser (headless Chromium), through scripts/screenshot-report.sh.

Skipped with a reason when no Chromium is installed: CI does not depend on a browser.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from tests.e2e.conftest import REPO
from tests.e2e.test_reconcile import html_report

pytestmark = pytest.mark.e2e

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(BROWSER is None, reason="no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)")
def test_report_renders_in_headless_chromium(sandbox, tmp_path):
    page = html_report(sandbox, tmp_path)
    png = tmp_path / "report.png"
    result = subprocess.run(
        [str(REPO / "scripts" / "screenshot-report.sh"), str(page), str(png), "1200", "1600"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = png.read_bytes()
    assert png_size(data) == (1200, 1600)
    # A blank page compresses to almost nothing; tables and the chart do not.
    assert len(data) > 20_000


def test_screenshot_script_without_browser_says_so(tmp_path):
    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path)}
    result = subprocess.run(["/bin/bash", str(REPO / "scripts" / "screenshot-report.sh"), str(page)], capture_output=True, text=True, env=env)
    assert result.returncode == 3 and "no chromium" in result.stderr
