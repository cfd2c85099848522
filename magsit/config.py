"""The TOML configuration as pydantic models, with `MAGSIT_<SECTION>_<KEY>` environment overrides.

Every section forbids unknown keys: a typo'd key is a config error that names the file and the key,
not a setting silently ignored at 3 a.m.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from magsit.errors import ConfigError

DEFAULT_CONFIG = "magsit.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HttpSettings(Section):
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_retries: int = Field(5, ge=0, le=20)
    backoff_base: float = Field(0.5, ge=0)  # first retry waits about this long, then doubles
    max_wait: float = Field(60.0, ge=0)  # cap on any single wait, Retry-After included
    ca_bundle: Path | None = None  # a private CA instead of turning TLS verification off


class MagentoSettings(Section):
    base_url: str
    store_code: str = "default"
    token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    website_id: int = 1
    stock_id: int = 1
    # 300 = the input-limit default maximum (magento-api.md §5.1); a shop set lower answers "Maximum
    # SearchCriteria pageSize is N" and the client uses N from then on.
    page_size: int = Field(300, ge=1, le=300)
    input_list_limit: int = Field(20, ge=1)  # objects per body array; adapted down when the shop says so
    concurrency: int = Field(4, ge=1, le=16)

    @field_validator("base_url")
    @classmethod
    def _strip_url(cls, value: str) -> str:
        value = value.rstrip("/")
        if value.endswith("/rest"):
            value = value[: -len("/rest")]
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (the shop's address, without /rest)")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> MagentoSettings:
        oauth = [self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret]
        if self.token is None and not all(oauth):
            if any(oauth):
                missing = [
                    name
                    for name, value in zip(
                        ("consumer_key", "consumer_secret", "access_token", "access_token_secret"), oauth, strict=True
                    )
                    if not value
                ]
                raise ValueError(f"OAuth 1.0a needs all four integration keys; missing: {', '.join(missing)}")
            raise ValueError(
                "no credentials: set token (integration token used as Bearer) or the four OAuth keys "
                "consumer_key, consumer_secret, access_token, access_token_secret"
            )
        return self

    @property
    def uses_oauth(self) -> bool:
        return self.token is None


class SitooSettings(Section):
    base_url: str
    api_id: str
    password: SecretStr
    site_id: int = 1
    # Sitoo documents no maximum num (sitoo-api.md §2.2; its examples use 1000 and 100000); a server
    # that caps it answers short pages while totalcount says more, and the client adapts.
    page_size: int = Field(1000, ge=1, le=5000)
    concurrency: int = Field(2, ge=1, le=8)

    @field_validator("base_url")
    @classmethod
    def _strip_url(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (copy it from Sitoo Backoffice, e.g. https://api.mysitoo.com/v2/accounts/90001)")
        return value


class StockSettings(Section):
    buffer: Decimal = Decimal(0)
    floor: Decimal = Decimal(0)
    sources: dict[str, str] = Field(default_factory=lambda: {"1": "default"})  # Sitoo warehouse id -> Magento source code
    source_buffer: dict[str, Decimal] = Field(default_factory=dict)  # Magento source code -> buffer
    source_floor: dict[str, Decimal] = Field(default_factory=dict)
    overrides_csv: Path | None = None  # sku[,source_code],buffer,floor per row
    batch_size: int = Field(20, ge=1, le=5000)
    lookback_seconds: int = Field(120, ge=0)


class ProductSettings(Section):
    create_missing: bool = False
    status_from: Literal["activepos", "active", "both"] = "activepos"
    barcode_attribute: str | None = "ean"
    tax_classes: dict[str, int] = Field(default_factory=dict)  # Sitoo vatid -> Magento tax_class_id
    attribute_set_id: int = 4
    lookback_seconds: int = Field(120, ge=0)
    # Sitoo's moneyprice is gross (VAT included). false (Magento's default "catalog prices exclude
    # tax"): Magento gets gross / (1 + the product's Sitoo vatvalue %); true: the gross price as is.
    # audit compares prices in the same terms.
    magento_prices_include_tax: bool = False


class OrderSettings(Section):
    warehouse_id: int = 1
    statuses: list[str] = Field(default_factory=lambda: ["processing"])
    initial_lookback_hours: float = Field(24, ge=0)
    externalid_prefix: str = ""
    delay_minutes: float = Field(0, ge=0)
    lookback_seconds: int = Field(120, ge=0)
    shipping_method_warehouses: dict[str, int] = Field(default_factory=dict)  # Magento shipping method -> Sitoo warehouse
    pickup_location_warehouses: dict[str, int] = Field(default_factory=dict)  # in-store pickup location code -> warehouse
    shipping_as: Literal["line", "fields"] = "line"
    shipping_sku: str = "SHIPPING"
    price_tolerance: Decimal = Decimal("0.01")
    price_policy: Literal["warn", "block"] = "warn"
    merge_configurable: bool = True
    # Creates of different orders in flight at once (each keeps its intent-before-POST sequence).
    concurrency: int = Field(4, ge=1, le=16)
    retry_backoff_minutes: float = Field(5, ge=0)  # a failing order waits this long, doubling per attempt
    reservation_days: int = Field(14, ge=0)  # Sitoo datereserved = push time + this many days
    carrier_code: str = "custom"  # Magento track carrier_code for Sitoo delivery references
    carrier_title: str = "Store delivery"  # Magento track title shown to the customer
    watch_shipped_hours: float = Field(24, ge=0)  # shipped orders re-read this long for deliveries Sitoo cancels


class CustomerSettings(Section):
    create_in_magento: bool = False
    master: Literal["magento", "sitoo"] = "magento"
    send_welcome_email: bool = False
    group_id: int = 1


class ReturnSettings(Section):
    refund_shipping: bool = False
    # Magento reads a credit memo's shipping_amount as gross when the store displays shipping
    # including tax (Creditmemo/Total/Shipping::isSuppliedShippingAmountInclTax): match the shop.
    shipping_amount_includes_tax: bool = False
    magento_to_sitoo: bool = True
    return_to_stock: bool = False


class ReconcileSettings(Section):
    timezone: str = "UTC"
    tolerance: Decimal = Decimal("0.01")
    grace_days: int = Field(3, ge=0)
    top_drift: int = Field(20, ge=0)


class AuditSettings(Section):
    price_tolerance: Decimal = Field(Decimal("0.01"), ge=0)  # gross price difference tolerated
    stock_drift_threshold: Decimal = Field(Decimal(0), ge=0)  # |Magento qty - expected| above this is drift
    order_age_minutes: float = Field(30, ge=0)  # pushable Magento orders older than this must be in Sitoo
    order_window_days: float = Field(30, gt=0)  # how far back orders are checked on both sides
    ignore_sources: list[str] = Field(default_factory=list)  # Magento sources that are not fed by Sitoo on purpose
    ignore_warehouses: list[str] = Field(default_factory=list)  # Sitoo warehouses that never feed Magento

    @field_validator("ignore_warehouses", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # warehouse ids are written as numbers or strings ([stock].sources keys are strings)
        return [str(v) for v in value] if isinstance(value, list) else value


class AlertSettings(Section):
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    recipients: dict[str, list[str]] = Field(default_factory=dict)  # owner -> e-mail addresses
    repeat_hours: float = Field(24, ge=0)
    stale_minutes: float = Field(60, ge=0)


class EventSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8080
    user: str | None = None
    password: SecretStr | None = None
    max_queue: int = Field(10000, ge=1)


class StateSettings(Section):
    path: Path = Path("magsit.db")


class Config(Section):
    magento: MagentoSettings
    sitoo: SitooSettings
    stock: StockSettings = Field(default_factory=StockSettings)
    products: ProductSettings = Field(default_factory=ProductSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    customers: CustomerSettings = Field(default_factory=CustomerSettings)
    returns: ReturnSettings = Field(default_factory=ReturnSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    schedule: dict[str, str] = Field(default_factory=dict)  # job -> "every 5m" | "*/5 * * * *"
    http: HttpSettings = Field(default_factory=HttpSettings)
    state: StateSettings = Field(default_factory=StateSettings)

    # Where the config came from; relative paths in it are resolved against its folder.
    source: Path | None = Field(default=None, exclude=True)
    warnings: list[str] = Field(default_factory=list, exclude=True)


def _sections() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = annotation
    return out


def _env_value(raw: str) -> Any:
    # Lists and tables come as JSON (MAGSIT_ORDERS_STATUSES='["processing","complete"]'); scalars as text.
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return raw
    return raw


def apply_env(
    data: dict[str, Any], environ: dict[str, str] | None = None, used: dict[str, str] | None = None
) -> dict[str, Any]:
    """Merge MAGSIT_<SECTION>_<KEY> variables into ``data``; ``used`` gets "section.key" -> variable."""
    environ = dict(os.environ if environ is None else environ)
    for section, model in _sections().items():
        for key in model.model_fields:
            name = f"MAGSIT_{section.upper()}_{key.upper()}"
            if name in environ:
                data.setdefault(section, {})
                if not isinstance(data[section], dict):
                    data[section] = {}
                data[section][key] = _env_value(environ[name])
                if used is not None:
                    used[f"{section}.{key}"] = name
    return data


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown key '{loc}' (a typo? see config.example.toml for the keys)"
    if kind == "missing":
        return f"missing key '{loc}'"
    message = error.get("msg", "invalid value")
    message = message.removeprefix("Value error, ")
    got = error.get("input")
    secretish = any(word in loc for word in ("password", "secret", "token", "key"))
    shown = "" if secretish or isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"'{loc}': {message}{shown}" if loc else message


SHOWN_CONFIG_PROBLEMS = 4


def _where(error: dict[str, Any], source: str | Path, env_names: dict[str, str] | None) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    variable = next((name for key, name in (env_names or {}).items() if loc == key or loc.startswith(key + ".")), None)
    return f"environment variable {variable}" if variable else f"config {source}"


def parse_config(data: dict[str, Any], source: str | Path = "<config>", env_names: dict[str, str] | None = None) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # A typo'd key first: it is often the cause of the "missing" ones (`tokn` for `token`).
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        # Several problems on the one line, so one edit fixes the file instead of one edit per run;
        # grouped by where they come from (the file, each environment variable).
        by_where: dict[str, list[str]] = {}
        for error in errors[:SHOWN_CONFIG_PROBLEMS]:
            by_where.setdefault(_where(error, source, env_names), []).append(_describe(error))
        parts = [f"{where}: {'; '.join(problems)}" for where, problems in by_where.items()]
        hidden = len(errors) - SHOWN_CONFIG_PROBLEMS
        extra = f" (and {hidden} more problem{'s' if hidden > 1 else ''})" if hidden > 0 else ""
        raise ConfigError("; ".join(parts) + extra) from None
    return config


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read, merge env overrides, validate. Raises ConfigError with one clear line."""
    env = dict(os.environ if environ is None else environ)
    config_path = Path(path or env.get("MAGSIT_CONFIG") or DEFAULT_CONFIG)
    if not config_path.exists():
        raise ConfigError(
            f"config file {config_path} not found: pass --config PATH or set MAGSIT_CONFIG "
            "(config.example.toml documents every key)"
        )
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {config_path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config {config_path}: cannot be read: {exc.strerror}") from None
    env_names: dict[str, str] = {}
    config = parse_config(apply_env(data, env, env_names), config_path, env_names)
    config.source = config_path
    base = config_path.resolve().parent
    if not config.state.path.is_absolute():
        config.state.path = base / config.state.path
    if config.stock.overrides_csv and not config.stock.overrides_csv.is_absolute():
        config.stock.overrides_csv = base / config.stock.overrides_csv
    config.warnings.extend(_permission_warnings(config_path, data))
    return config


_SECRET_KEYS = ("token", "password", "consumer_secret", "access_token_secret", "access_token", "smtp_password")


def _permission_warnings(path: Path, data: dict[str, Any]) -> list[str]:
    has_secret = any(
        isinstance(section, dict) and any(section.get(key) for key in _SECRET_KEYS) for section in data.values()
    )
    if not has_secret or os.name != "posix":
        return []
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [
            f"{path} holds credentials and is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        ]
    return []
