"""The typed cursors a flow keeps in the state file: where its next run starts reading.

One class per kind of bookmark, all frozen, all with ``to_json()`` / ``from_json()``:

- ``KeysetPosition`` — a point in Magento's ``(updated_at, entity_id)`` order (push-orders,
  sync-customers, sync-returns credit memos; see ``magsit.sync.keyset``);
- ``SitooEpoch`` — a Sitoo ``datelastmodified`` / ``datemodified`` in epoch seconds
  (sync-products, sync-stock per warehouse);
- ``SitooId`` — the highest Sitoo ``orderid`` swept (sync-returns);
- ``UtcMoment`` — a moment in UTC (sync-stock ``orders_seen``).

``to_json()`` writes exactly the JSON earlier magsit versions wrote for that stream (a
``[updated_at, entity_id]`` list, an int, an int, ``YYYY-MM-DDTHH:MM:SSZ``), so state files need no
migration and ``from_json()`` reads both old and new files. JSON does not say which kind a value
is — an epoch and an id are both ints — so the reader names the kind it expects
(``StateStore.get_cursor(job, stream, SitooId)``) and a value of another shape is refused with a
``CursorError`` naming the job, stream and stored value instead of being misread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from magsit.errors import MagsitError

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class CursorError(MagsitError):
    """A stored cursor that is not of the kind its stream holds (a hand-edited or foreign state file)."""


def _int(value: Any, what: str) -> int:
    # bool is an int to Python, never a cursor; a numeric string is tolerated (old hand-edited files)
    if isinstance(value, bool):
        raise CursorError(f"{value!r} is not {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise CursorError(f"{value!r} is not {what}")


@dataclass(frozen=True, order=True)
class KeysetPosition:
    """A point in the ``(updated_at, entity_id)`` order; ``entity_id`` 0 = before any row of ``updated_at``."""

    updated_at: str  # Magento's UTC text ``YYYY-MM-DD HH:MM:SS`` (fixed width: compares as time)
    entity_id: int = 0

    KIND: ClassVar[str] = "a Magento keyset position (updated_at, entity_id)"

    def to_json(self) -> list[Any]:
        return [self.updated_at, self.entity_id]

    @classmethod
    def from_json(cls, value: Any) -> KeysetPosition:
        # [updated_at, entity_id] is what every version wrote; {"updated_at", "entity_id"} was read too
        if isinstance(value, dict) and isinstance(value.get("updated_at"), str):
            return cls(value["updated_at"], _int(value.get("entity_id", 0), cls.KIND))
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            return cls(value[0], _int(value[1], cls.KIND))
        raise CursorError(f"{value!r} is not {cls.KIND}")


@dataclass(frozen=True, order=True)
class SitooEpoch:
    """A Sitoo modification time in epoch seconds (Sitoo's ``datelastmodified`` / ``datemodified``)."""

    seconds: int

    KIND: ClassVar[str] = "a Sitoo modification time (epoch seconds)"

    def to_json(self) -> int:
        return self.seconds

    @classmethod
    def from_json(cls, value: Any) -> SitooEpoch:
        return cls(_int(value, cls.KIND))


@dataclass(frozen=True, order=True)
class SitooId:
    """The highest Sitoo id read so far (ids are monotonic: the next sweep starts near it)."""

    value: int

    KIND: ClassVar[str] = "a Sitoo id"

    def to_json(self) -> int:
        return self.value

    @classmethod
    def from_json(cls, value: Any) -> SitooId:
        return cls(_int(value, cls.KIND))


@dataclass(frozen=True, order=True)
class UtcMoment:
    """A moment in UTC, stored as ``YYYY-MM-DDTHH:MM:SSZ`` (whole seconds)."""

    at: datetime

    KIND: ClassVar[str] = "a UTC time (YYYY-MM-DDTHH:MM:SSZ)"

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise CursorError(f"{self.at!r} has no time zone; a cursor time is UTC")

    def to_json(self) -> str:
        return self.at.astimezone(UTC).strftime(UTC_FORMAT)

    @classmethod
    def from_json(cls, value: Any) -> UtcMoment:
        if isinstance(value, str):
            try:
                return cls(datetime.strptime(value, UTC_FORMAT).replace(tzinfo=UTC))
            except ValueError:
                pass
        raise CursorError(f"{value!r} is not {cls.KIND}")


Cursor = KeysetPosition | SitooEpoch | SitooId | UtcMoment
CURSOR_KINDS: tuple[type[Cursor], ...] = (KeysetPosition, SitooEpoch, SitooId, UtcMoment)
C = TypeVar("C", KeysetPosition, SitooEpoch, SitooId, UtcMoment)


def cursor_from_json(kind: type[C], value: Any, *, where: str) -> C | None:
    """The stored JSON ``value`` as a ``kind`` cursor; ``None`` for no cursor (null, or the empty
    list/dict an old version could leave). ``where`` (``job/stream``) goes into the error."""
    if value is None or value == [] or value == {}:
        return None
    try:
        return kind.from_json(value)
    except CursorError:
        raise CursorError(
            f"state file: the {where} cursor holds {json.dumps(value)}, which is not {kind.KIND}; restore the state "
            "file, or delete that row of its cursors table (the next run then starts from its initial lookback)"
        ) from None


def cursor_to_json(value: Cursor, *, where: str) -> Any:
    if not isinstance(value, CURSOR_KINDS):
        raise TypeError(f"cursor {where}: {value!r} is not a typed cursor ({', '.join(k.__name__ for k in CURSOR_KINDS)})")
    return value.to_json()
