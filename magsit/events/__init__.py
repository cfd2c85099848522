"""Sitoo Events SPI: receive pushed events (``POST /events``) and drain them into targeted runs.

  receiver.py  validate a batch, the WSGI app, ``serve`` (waitress + the worker thread)
  queue.py     the ``events`` table: store (de-duplicated), due, finish, defer, purge; status figures
  plan.py      pure: queued events + facts -> one run per job (``plan_drain``)
  drain.py     gather the facts, plan, run the jobs, mark the events; ``drain_all``; the ``Worker``

Receiving (``magsit events serve``, a waitress WSGI service)
  Sitoo sends batches of up to 10 events, in order, waits at most 15 s for the answer, retries
  only 429/503/504 (for ~24 h) and drops the batch on any other code; it may send an event more
  than once (sitoo-api.md §10, pitfalls P36). So the handler does the least that makes the events
  safe — validate, store each one in the state file keyed by ``event_id`` (a re-sent event is a
  no-op that still answers 200), commit with ``synchronous=FULL`` — and answers. Anything that
  may be transient (state file locked or busy, queue full, an internal error) answers 503 so that
  Sitoo retries; only a payload that can never become valid answers 400 (logged). The receiving
  connection waits at most ``RECEIVE_BUSY_TIMEOUT`` seconds for a write lock, far inside the 15 s.

Applying (a worker thread of ``serve``, and ``magsit events process`` for cron)
  The queued events are read, turned into facts (which pushed web order an order id is, whether a
  new order is a refund of one, which SKUs a warehouse transaction touched) and *planned* by the
  pure ``plan_drain``: a burst becomes one run per job — ``sync-returns`` (full), then
  ``sync-fulfilment`` for the affected pushed orders, then ``sync-stock`` for the union of the
  affected SKUs — through the same ``runner.run_job`` and per-job locks as cron and the daemon.
  An event is marked processed only once every run it needs finished (ok or partial: record
  failures are exception rows with owners from then on). A run that is locked elsewhere leaves
  its events queued for a retry in a few seconds; a failed run leaves them queued with backoff;
  after ``MAX_ATTEMPTS`` they are given up (``failed``) — the scheduled jobs stay the safety net
  that heals anything an event did not.
"""
