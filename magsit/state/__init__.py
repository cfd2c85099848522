from magsit.state.lock import JobLock
from magsit.state.store import StateStore

__all__ = ["JobLock", "StateStore"]
