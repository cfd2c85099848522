"""config.example.toml documents every key of magsit/config.py, and only those.

Several engineers add keys to their own section; this keeps the example (what ops copy) and the
runbook (how secrets come from the environment) from drifting away from the models.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel

from magsit.config import Config, load_config

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "config.example.toml"
RUNBOOK = ROOT / "docs" / "runbook.md"

_SECTION = re.compile(r"^\[([A-Za-z_][\w-]*)\]")
# `key = …` or a commented-out `# key = …` (optional keys are shown commented, with a sample value)
_KEY = re.compile(r'^(#\s*)?"?([A-Za-z_][\w -]*?)"?\s*=')


def _section_models() -> dict[str, type[BaseModel]]:
    out = {}
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = annotation
    return out


def _example_keys() -> dict[str, dict[str, bool]]:
    """section -> {key: commented_out} as written in the example file."""
    keys: dict[str, dict[str, bool]] = {}
    section = None
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if match := _SECTION.match(line):
            section = match.group(1)
            keys.setdefault(section, {})
            continue
        if section and (match := _KEY.match(line)):
            keys[section].setdefault(match.group(2), bool(match.group(1)))
    return keys


def test_every_section_and_field_is_in_the_example():
    written = _example_keys()
    missing = [
        f"[{section}] {key}"
        for section, model in _section_models().items()
        for key in model.model_fields
        if key not in written.get(section, {})
    ]
    assert not missing, f"add these keys to config.example.toml (with a comment saying what they do): {missing}"


def test_the_example_names_no_unknown_key():
    models = _section_models()
    written = _example_keys()
    unknown_sections = set(written) - set(models) - {"schedule"}
    assert not unknown_sections, f"config.example.toml has sections config.py does not know: {unknown_sections}"
    unknown = [
        f"[{section}] {key}"
        for section, keys in written.items()
        if section in models
        for key in keys
        if key not in models[section].model_fields
    ]
    # Set keys would already fail to load (extra="forbid"); this also covers the commented-out ones.
    assert not unknown, f"config.example.toml shows keys config.py does not know: {unknown}"


def test_the_example_loads_with_every_commented_key_enabled(tmp_path):
    # Uncomment the optional keys: their sample values must be valid too (ops uncomment them).
    models = _section_models()
    lines, section = [], None
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if match := _SECTION.match(stripped):
            section = match.group(1)
        match = _KEY.match(stripped)
        if match and match.group(1) and section in models:
            line = stripped[len(match.group(1)) :]
        lines.append(line)
    path = tmp_path / "magsit.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert "consumer_key" in data["magento"] and "ca_bundle" in data["http"]
    # token and the OAuth keys are alternatives: keep the token, drop the (empty) OAuth sample keys
    text = re.sub(r"(?m)^(consumer_key|consumer_secret|access_token|access_token_secret) = .*$", "", path.read_text())
    path.write_text(text, encoding="utf-8")
    load_config(path, environ={})


def test_runbook_documents_the_env_override_scheme():
    text = RUNBOOK.read_text(encoding="utf-8")
    assert "MAGSIT_<SECTION>_<KEY>" in text
    assert "MAGSIT_CONFIG" in text
    # the JSON form for lists and tables, which a plain string would not give
    assert "MAGSIT_ORDERS_STATUSES" in text


def test_the_example_values_are_the_defaults():
    """What ops copy is what magsit does without a config line: every value the example sets for a
    key with a default equals that default (a tuned-by-hand example would hide slow defaults)."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    # Keys the example sets to a sample on purpose (required, or a placeholder to replace).
    samples = {("stock", "sources"), ("state", "path"), ("products", "tax_classes"), ("reconcile", "timezone")}
    differ = []
    for section, model in _section_models().items():
        for key, value in (data.get(section) or {}).items():
            field = model.model_fields.get(key)
            if field is None or field.is_required() or (section, key) in samples:
                continue
            default = field.get_default(call_default_factory=True)
            if default is None:
                continue
            plain = default.get_secret_value() if hasattr(default, "get_secret_value") else default
            if isinstance(plain, Path):
                plain = str(plain)
            if isinstance(plain, Decimal):
                value = Decimal(str(value))
            if plain != value:
                differ.append(f"[{section}] {key}: example {value!r}, default {plain!r}")
    assert not differ, "config.example.toml and config.py disagree: " + "; ".join(differ)
