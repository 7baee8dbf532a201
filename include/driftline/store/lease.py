"""Who is evaluating an interval: a lease in the store, ``runs/<model>/<interval>/lease.json``
(store layer: the record and its rules, no stage logic).

Two runs of one interval at once -- a scheduled run and a manual re-run, a backfill over a
running interval, the CLI beside the DAG -- would clear and write each other's artifacts: a
re-run first removes the interval's verdict, and the other run's alert stage then read an
interval with its violations gone and announced a false RESOLVED. So a run holds the
interval's lease while it writes there:

- the run's first stage takes it (``acquire``) before it clears anything, or refuses with
  ``LeaseHeld``, naming the run that holds it and until when;
- a lease of the same run (a retry, a cleared task) is taken back; one whose holder let it
  expire or released it is taken over, and the record says from whom;
- every later stage checks it still holds it and renews it (``renew``) before it writes --
  ``LeaseHeld`` if another run holds it now, ``LeaseLost`` if another run took it over
  meanwhile (that run cleared this one's artifacts: re-run the interval from its start);
- the run's last task releases it (``release``).

**Expiry.** A lease is good until ``expires_at`` = its last renewal + the run's ``ttl``.
While a stage runs, ``holding`` renews it every ``ttl / 3`` from a background thread, so a
stage may take as long as it needs; between stages the run renews it at each stage's start,
and a run that waits days for its labels renews it at each look of its sensor -- the caller
makes ``ttl`` longer than the sensor's poke interval (``driftline.pipeline.stage.lease_ttl``). A run
whose worker died renews nothing: its lease frees at most ``ttl`` after its last renewal.
Expiry is read on the clocks of the workers: keep them in time (NTP); ``ttl`` is minutes.

Every change is a compare-and-swap (``Store.write_if``: S3's conditional PUT, a lock and a
rename locally): two runs that find the same expired lease cannot both take it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from driftline.store import Store, StoreError, as_utc, interval_key

log = logging.getLogger("driftline.store.lease")

LEASE_FILE = "lease.json"
#: Compare-and-swap attempts before giving up: each failed attempt means another writer changed
#: the lease in between (parallel stages of one run renew it at once), so a few always suffice.
MAX_ATTEMPTS = 8


class LeaseError(StoreError):
    """This run may not write the interval's artifacts (a StoreError: the CLI prints it as one)."""


class LeaseHeld(LeaseError):
    """Another run holds the interval's lease and has renewed it within its ttl."""


class LeaseLost(LeaseError):
    """This run held the lease, and another run took it over since (after it expired or was
    released): that run cleared what this one wrote."""


def lease_rel(model: str, start: datetime) -> str:
    return posixpath.join(Store.run_prefix(model, start), LEASE_FILE)


def read_lease(store: Store, model: str, start: datetime) -> dict | None:
    got = store.read_versioned(lease_rel(model, start))
    return _parse(store, model, start, got[0]) if got else None


def _parse(store: Store, model: str, start: datetime, data: bytes) -> dict:
    try:
        rec = json.loads(data)
        datetime.fromisoformat(rec["expires_at"])
        str(rec["holder"])
    except (ValueError, KeyError, TypeError) as exc:
        # a lease is written in one PUT or one rename: unreadable means someone wrote it by hand
        raise LeaseError(f"{store.uri(lease_rel(model, start))}: unreadable lease ({exc}); remove it only once no "
                         f"run of {model} {interval_key(start)} is going on") from None
    return rec


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def is_live(rec: dict, now: datetime) -> bool:
    """The holder renewed it within its ttl and has not released it."""
    return not rec.get("released_at") and datetime.fromisoformat(rec["expires_at"]) > now


def _held_message(model: str, start: datetime, rec: dict) -> str:
    until = rec["expires_at"]
    return (f"interval {interval_key(start)} of {model} is being evaluated by run {rec['holder']} until {until} "
            f"(stage {rec.get('stage')}, lease renewed {rec.get('renewed_at')}): retry after {until}, or end run "
            f"{rec['holder']} first (its last task releases the lease; if it stopped without doing so, the lease "
            f"frees at {until} at the latest, as it is renewed only while that run works)")


def _lost_message(model: str, start: datetime, holder: str, rec: dict) -> str:
    return (f"run {holder} no longer holds interval {interval_key(start)} of {model}: run {rec['holder']} took the "
            f"lease at {rec.get('acquired_at')} ({(rec.get('took_over') or {}).get('why', 'after this run')}) and "
            f"cleared this run's artifacts; re-run the interval from its first task (ingest)")


def _update(store: Store, model: str, start: datetime, decide) -> dict:
    """Read the lease, let ``decide(current or None)`` return the record to write (or raise),
    write it if nobody changed the lease meanwhile; else read again (bounded)."""
    rel = lease_rel(model, start)
    for attempt in range(MAX_ATTEMPTS):
        got = store.read_versioned(rel)
        current, version = (_parse(store, model, start, got[0]), got[1]) if got else (None, None)
        rec = decide(current)
        if store.write_if(rel, json.dumps(rec, indent=2).encode(), version):
            return rec
        time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # parallel stages of one run renew at once
    raise LeaseError(f"{store.uri(rel)}: the lease changed under every one of {MAX_ATTEMPTS} attempts to update it; "
                     f"retry the task")


def acquire(store: Store, model: str, start: datetime, holder: str, stage: str, ttl: timedelta,
            now: datetime | None = None) -> dict:
    """Take the interval's lease for run ``holder`` (its first stage, before it clears
    anything): free, expired, released or already ``holder``'s -- taken; held live by another
    run -- ``LeaseHeld``. Returns the record written."""
    def decide(cur: dict | None) -> dict:
        t = as_utc(now or datetime.now(timezone.utc))
        if cur and cur["holder"] != holder and is_live(cur, t):
            raise LeaseHeld(_held_message(model, start, cur))
        took = None
        if cur and cur["holder"] != holder:
            took = {"holder": cur["holder"], "expires_at": cur["expires_at"], "released_at": cur.get("released_at"),
                    "why": (f"released by run {cur['holder']} at {cur['released_at']}" if cur.get("released_at") else
                            f"run {cur['holder']}'s lease expired at {cur['expires_at']}")}
        same = cur is not None and cur["holder"] == holder and not cur.get("released_at")
        return {"model": model, "interval": interval_key(start), "holder": holder, "stage": stage,
                "acquired_at": cur["acquired_at"] if same else _iso(t), "renewed_at": _iso(t),
                "expires_at": _iso(t + ttl), "ttl_seconds": ttl.total_seconds(), "released_at": None,
                "took_over": took or (cur.get("took_over") if same else None)}
    return _update(store, model, start, decide)


def renew(store: Store, model: str, start: datetime, holder: str, stage: str, ttl: timedelta,
          now: datetime | None = None) -> dict:
    """A later stage of run ``holder``: check it still holds the lease and extend it. Its own
    lease is renewed even when expired or released (nobody took it: its artifacts are
    intact); ``LeaseHeld`` when another run holds it, ``LeaseLost`` when another run took it
    over and has finished or stopped since. No lease at all (a run started before leases
    existed) is taken."""
    def decide(cur: dict | None) -> dict:
        t = as_utc(now or datetime.now(timezone.utc))
        if cur is not None and cur["holder"] != holder:
            if is_live(cur, t):
                raise LeaseHeld(_held_message(model, start, cur))
            raise LeaseLost(_lost_message(model, start, holder, cur))
        base = cur or {"model": model, "interval": interval_key(start), "holder": holder,
                       "acquired_at": _iso(t), "took_over": None}
        return {**base, "stage": stage, "renewed_at": _iso(t), "expires_at": _iso(t + ttl),
                "ttl_seconds": ttl.total_seconds(), "released_at": None}
    return _update(store, model, start, decide)


def release(store: Store, model: str, start: datetime, holder: str, now: datetime | None = None) -> dict | None:
    """The run's end: mark ``holder``'s lease released (kept as a record of the last run that
    held it; the next run takes it over at once). Returns the record, or None when
    ``holder`` does not hold it (it never took it, or another run has it: left alone)."""
    class NotHeld(Exception):
        pass

    def decide(cur: dict | None) -> dict:
        if cur is None or cur["holder"] != holder:
            raise NotHeld
        t = _iso(as_utc(now or datetime.now(timezone.utc)))
        return {**cur, "released_at": t, "expires_at": t}
    try:
        return _update(store, model, start, decide)
    except NotHeld:
        return None


class _Heartbeat(threading.Thread):
    """Renews the lease every ``ttl / 3`` while a stage runs, so no stage outlives its lease."""

    def __init__(self, store: Store, model: str, start: datetime, holder: str, stage: str, ttl: timedelta):
        super().__init__(name=f"driftline-lease-{model}-{interval_key(start)}", daemon=True)
        self.args_ = (store, model, start, holder, stage, ttl)
        self.every = max(ttl.total_seconds() / 3, 0.05)
        self.stopped = threading.Event()
        self.lost: LeaseError | None = None

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                renew(*self.args_)
            except LeaseError as exc:
                self.lost = exc
                return
            except Exception as exc:  # noqa: BLE001 - a store hiccup: the next beat tries again, within the ttl
                log.warning("could not renew the lease of %s %s: %s", self.args_[1], interval_key(self.args_[2]), exc)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)  # a renewal in flight is bounded by the store's own timeouts


@contextlib.contextmanager
def holding(store: Store, model: str, start: datetime, holder: str, stage: str, ttl: timedelta,
            first: bool = False) -> Iterator[dict]:
    """Run a stage under the lease: take it (``first``: the run's first stage) or check that
    this run still holds it, keep it renewed while the block runs, and fail with
    ``LeaseLost`` after the block if another run took it meanwhile (possible only when the
    renewals failed for longer than ``ttl``)."""
    rec = (acquire if first else renew)(store, model, start, holder, stage, ttl)
    beat = _Heartbeat(store, model, start, holder, stage, ttl)
    beat.start()
    try:
        yield rec
    finally:
        beat.stop()
    if beat.lost is not None:
        raise beat.lost
