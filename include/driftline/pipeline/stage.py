"""A stage of a run under the interval's lease (``driftline.store.lease``): one run at a time per
interval, a crashed one freeing it at the lease's expiry."""
from __future__ import annotations

import contextlib
import getpass
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from driftline.config import ModelConfig
from driftline.store import Store, as_utc

#: How long a run's lease outlives its last renewal when nothing renews it: a stage renews it
#: while it runs, so this is the longest expected pause between two tasks of a run (queued
#: for a worker, the scheduler restarting), and the longest a crashed run blocks its interval
#: (plus the label sensor's poke interval: ``lease_ttl``).
LEASE_TTL = timedelta(minutes=15)


def lease_ttl(cfg: ModelConfig) -> timedelta:
    """How long the model's run leases last without a renewal: ``LEASE_TTL``, plus the label
    sensor's poke interval for a model that waits for labels (each look renews the lease, so
    a run waiting days keeps it; a crashed one frees it within this time)."""
    return LEASE_TTL + (cfg.labels.poke_interval if cfg.labels is not None else timedelta(0))


def cli_run_id() -> str:
    """A run id for a run outside Airflow: who, where, which process (named when it holds a lease)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def run_stage(cfg: ModelConfig, store: Store, start: datetime, run_id: str | None, stage: str,
              first: bool = False) -> Iterator[None]:
    """A stage of run ``run_id`` under the interval's lease (``first``: the stage that takes
    it); without a run id, nothing to hold."""
    if run_id is None:
        yield
        return
    from driftline.store.lease import holding

    with holding(store, cfg.name, as_utc(start), run_id, stage, lease_ttl(cfg), first=first):
        yield
