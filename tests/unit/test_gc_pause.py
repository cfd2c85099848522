"""The cyclic GC pause around job flows nests across threads and restores the collector's state."""

from __future__ import annotations

import gc
import threading

from magsit.runner import _CyclicGcPause


def test_collector_resumes_only_after_the_last_concurrent_job() -> None:
    pause = _CyclicGcPause()
    assert gc.isenabled()
    first_in, release = threading.Event(), threading.Event()

    def long_job() -> None:
        with pause:
            first_in.set()
            release.wait(5)

    worker = threading.Thread(target=long_job)
    worker.start()
    first_in.wait(5)
    with pause:  # a second job starts while the first runs
        assert not gc.isenabled()
    assert not gc.isenabled()  # the first job still runs
    release.set()
    worker.join(5)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    pause = _CyclicGcPause()
    gc.disable()
    try:
        with pause:
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_exception_in_the_flow_still_resumes_the_collector() -> None:
    pause = _CyclicGcPause()
    try:
        with pause:
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
