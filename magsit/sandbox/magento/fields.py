"""``fields=`` partial responses (§3)."""

from __future__ import annotations

from typing import Any


def parse_fields(spec: str) -> dict[str, Any]:
    """``items[a,b[c]],total_count`` -> {"items": {"a": {}, "b": {"c": {}}}, "total_count": {}}."""
    pos = 0

    def parse_level() -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        name = ""
        while pos < len(spec):
            ch = spec[pos]
            pos += 1
            if ch == "[":
                out[name.strip()] = parse_level()
                name = ""
            elif ch == "]":
                break
            elif ch == ",":
                if name.strip():
                    out[name.strip()] = {}
                name = ""
            else:
                name += ch
        if name.strip():
            out[name.strip()] = {}
        return out

    return parse_level()


def project(value: Any, spec: dict[str, Any]) -> Any:
    if not spec:
        return value
    if isinstance(value, list):
        return [project(v, spec) for v in value]
    if isinstance(value, dict):
        return {k: project(value[k], sub) for k, sub in spec.items() if k in value}
    return value
