"""The lease of an interval's run (driftline.store.lease): one run of an interval at a time, a
retry takes its own lease back, an expired or released one is taken over, a later stage of a
run that lost it fails, and a stage that runs longer than the ttl keeps it."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from driftline.store import Store
from driftline.store.lease import LeaseHeld, LeaseLost, acquire, holding, read_lease, release, renew

T = datetime(2026, 10, 6, tzinfo=timezone.utc)
NOW = datetime(2026, 10, 7, 3, tzinfo=timezone.utc)
TTL = timedelta(minutes=15)


@pytest.fixture
def store(tmp_path):
    return Store(f"file://{tmp_path}/store")


def test_a_second_run_is_refused_with_the_holder_and_until_when(store):
    rec = acquire(store, "churn", T, "scheduled__A", "ingest", TTL, now=NOW)
    assert rec["expires_at"] == "2026-10-07T03:15:00.000+00:00" and rec["took_over"] is None
    with pytest.raises(LeaseHeld) as err:
        acquire(store, "churn", T, "manual__B", "ingest", TTL, now=NOW + timedelta(minutes=5))
    assert str(err.value).startswith(
        "interval 2026-10-06T0000Z of churn is being evaluated by run scheduled__A until "
        "2026-10-07T03:15:00.000+00:00 (stage ingest, lease renewed 2026-10-07T03:00:00.000+00:00): retry after "
        "2026-10-07T03:15:00.000+00:00, or end run scheduled__A first")
    # a later stage of B is refused too; the lease is still A's
    with pytest.raises(LeaseHeld):
        renew(store, "churn", T, "manual__B", "drift", TTL, now=NOW + timedelta(minutes=5))
    assert read_lease(store, "churn", T)["holder"] == "scheduled__A"


def test_a_retry_takes_its_own_lease_back_and_stages_renew_it(store):
    acquire(store, "churn", T, "A", "ingest", TTL, now=NOW)
    again = acquire(store, "churn", T, "A", "ingest", TTL, now=NOW + timedelta(minutes=1))
    assert again["acquired_at"] == "2026-10-07T03:00:00.000+00:00"  # the same tenure
    # a later stage long after expiry: nobody took it, the run's artifacts are intact
    late = renew(store, "churn", T, "A", "wait_for_labels", TTL, now=NOW + timedelta(days=2))
    assert late["expires_at"] == "2026-10-09T03:15:00.000+00:00" and late["stage"] == "wait_for_labels"


def test_an_expired_or_released_lease_is_taken_over_and_its_run_told(store):
    acquire(store, "churn", T, "A", "ingest", TTL, now=NOW)
    rec = acquire(store, "churn", T, "B", "ingest", TTL, now=NOW + timedelta(minutes=16))
    assert rec["holder"] == "B" and rec["took_over"]["holder"] == "A"
    assert rec["took_over"]["why"] == "run A's lease expired at 2026-10-07T03:15:00.000+00:00"
    # A's next stage: B holds it live -> held; once B is done -> lost (B cleared A's artifacts)
    with pytest.raises(LeaseHeld):
        renew(store, "churn", T, "A", "drift", TTL, now=NOW + timedelta(minutes=17))
    assert release(store, "churn", T, "A") is None  # not A's: left alone
    assert read_lease(store, "churn", T)["released_at"] is None
    assert release(store, "churn", T, "B", now=NOW + timedelta(minutes=20))["released_at"]
    with pytest.raises(LeaseLost, match="run A no longer holds interval 2026-10-06T0000Z of churn: run B took the "
                                        "lease .* re-run the interval from its first task"):
        renew(store, "churn", T, "A", "drift", TTL, now=NOW + timedelta(minutes=21))
    # released: the next run takes it at once, well before B's ttl would have ended
    rec = acquire(store, "churn", T, "C", "ingest", TTL, now=NOW + timedelta(minutes=21))
    assert rec["took_over"]["why"].startswith("released by run B at")


def test_a_stage_longer_than_the_ttl_keeps_the_lease_and_a_crashed_one_frees_it(store):
    ttl = timedelta(seconds=0.3)
    with holding(store, "churn", T, "A", "ingest", ttl, first=True):
        time.sleep(1.0)  # three ttls: the heartbeat renews it meanwhile
        with pytest.raises(LeaseHeld):
            acquire(store, "churn", T, "B", "ingest", ttl)
    # A "crashes" here: no release, no more renewals; within one ttl the interval is free
    with pytest.raises(LeaseHeld):
        acquire(store, "churn", T, "B", "ingest", ttl)
    time.sleep(0.4)
    assert acquire(store, "churn", T, "B", "ingest", ttl)["took_over"]["holder"] == "A"


def test_a_stage_whose_lease_was_taken_meanwhile_fails_after_its_block(store, monkeypatch):
    from driftline.store import lease

    ttl = timedelta(seconds=0.2)
    # the store refuses A's renewals (an outage) for longer than its ttl, and B takes over
    real = lease.renew

    def renew_down(store_, model, start, holder, *a, **kw):
        if holder == "A":
            raise lease.StoreError("store down")
        return real(store_, model, start, holder, *a, **kw)

    with pytest.raises(LeaseHeld, match="being evaluated by run B"):
        with holding(store, "churn", T, "A", "drift", ttl):
            monkeypatch.setattr(lease, "renew", renew_down)
            time.sleep(0.35)
            acquire(store, "churn", T, "B", "ingest", timedelta(minutes=5))
            monkeypatch.setattr(lease, "renew", real)
            time.sleep(0.2)  # A's heartbeat now finds B's lease


def test_parallel_stages_of_one_run_renew_without_losing_it(store):
    from concurrent.futures import ThreadPoolExecutor

    acquire(store, "churn", T, "A", "ingest", TTL)
    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda i: renew(store, "churn", T, "A", f"profile_partition#{i}", TTL), range(24)))
    assert {d["holder"] for d in done} == {"A"} and read_lease(store, "churn", T)["holder"] == "A"


def test_the_cli_run_is_refused_and_leaves_the_other_runs_lease_alone(make_config, tmp_path, capsys):
    from driftline.cli import main
    from driftline.pipeline.interval import monitor_interval
    from driftline.pipeline.stage import cli_run_id

    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    held = acquire(store, "m", T, "scheduled__2026-10-06", "wait_for_labels", TTL)
    rid = cli_run_id()
    assert rid.startswith("cli:") and rid.count(":") == 3
    with pytest.raises(LeaseHeld, match="being evaluated by run scheduled__2026-10-06 until"):
        monitor_interval(cfg, store, T, T + timedelta(days=1), run_id=rid)
    assert read_lease(store, "m", T) == held  # its end released nothing that was not its own
    assert not store.exists(f"{Store.run_prefix('m', T)}/batch.parquet")
    # from the shell: one line naming the holder, not a traceback (a lease error is a store error)
    monitors = tmp_path / "monitors"
    monitors.mkdir()
    (monitors / "m.yaml").write_text(
        "name: m\nproblem_type: binary_classification\nstart_date: '2026-10-01'\n"
        "features: [{name: x, type: numeric}]\nprediction: {label: pred, probability: proba}\n"
        f"capture: {{uri: {tmp_path}/capture}}\nbaseline: {{training_data: {tmp_path}/train.parquet}}\n")
    rc = main(["--monitors", str(monitors), "--store", store.url, "monitor", "--model", "m", "--start", "2026-10-06",
               "--end", "2026-10-07"])
    err = capsys.readouterr().err
    assert rc == 3 and err.startswith("driftline: interval 2026-10-06T0000Z of m is being evaluated by run "
                                      "scheduled__2026-10-06 until")
