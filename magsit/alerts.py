"""Routes new exceptions and failed runs to their owner. Delivery failures never fail a run."""

from __future__ import annotations
