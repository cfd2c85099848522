#!/usr/bin/env bash
# Render a magsit reconciliation HTML report to a PNG with headless Chromium.
#
#   scripts/screenshot-report.sh report.html [report.png] [width] [height]
#
# Produce the report first, e.g.  magsit reconcile --month 2026-10 --html report.html
# Uses the first of chromium, chromium-browser, google-chrome found on PATH (or $CHROMIUM).
# The page is self-contained (inline CSS and SVG, no scripts, no network), so this works offline.
# Exit 0 with the PNG written; 2 on bad usage; 3 when no Chromium is installed.
set -euo pipefail

if [[ $# -lt 1 || ! -f "$1" ]]; then
    echo "usage: $0 REPORT.html [OUT.png] [WIDTH] [HEIGHT]" >&2
    exit 2
fi
if [[ "$1" = /* ]]; then html=$1; else html=$PWD/$1; fi
out=${2:-${1%.html}.png}
width=${3:-1280}
height=${4:-2400}

browser=${CHROMIUM:-}
if [[ -z "$browser" ]]; then
    for candidate in chromium chromium-browser google-chrome; do
        if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
    done
fi
if [[ -z "$browser" ]]; then
    echo "no chromium, chromium-browser or google-chrome on PATH (set CHROMIUM=/path/to/browser)" >&2
    exit 3
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: containers and CI runners usually run as root, where Chromium refuses its sandbox.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$profile" --window-size="${width},${height}" \
    --screenshot="$out" "file://$html" >/dev/null 2>&1
test -s "$out"
echo "$out"
