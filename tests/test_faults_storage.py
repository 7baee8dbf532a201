"""Faults of the store on S3: the library's stages reach moto's S3 server through a proxy on
loopback (tests/s3_fault_proxy.py) that drops connections, stalls past the client's timeout,
answers 500/503, refuses for good or truncates a body, by rule.

- transient faults are retried and the stages write the same bytes as without them;
- a request refused for good fails the stage with an error naming the object, and leaves
  nothing half-written (no batch without its quarantine: records in = kept + quarantined);
- a truncated read of a stored JSON is an error naming the file;
- two runs of one interval at once: one takes the interval's lease, the other is refused
  naming it; no false RESOLVED; the first run's verdict is intact;
- the lease of a crashed run is taken over once it has expired, and that run, if it comes
  back, is told.

The store's client is an s3fs filesystem with 1 s connect/read timeouts and 3 attempts (a
deployment sets its own in the connection's ``config_kwargs``): every wait here is bounded.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from driftline.store import CorruptObject, Store, StoreError
from s3_fault_proxy import FaultProxy, Rule

pytestmark = pytest.mark.s3

DAY = timedelta(days=1)
START = datetime(2026, 10, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Once per module: a 4-day demo drifting from day 1 (20 records an hour) and its baseline."""
    from driftline.config import default_monitors_dir, load_all
    from driftline.demo import generate_demo
    from driftline.stages.baseline import create_baseline

    root = tmp_path_factory.mktemp("faults-storage")
    url = f"file://{root}/demo"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRIFTLINE_DEMO_ROOT", url)
        cfg = load_all(default_monitors_dir()).models["churn"]
    generate_demo(url, days=4, drift_day=1, rows_per_hour=20, training_rows=2000)
    local = Store(f"file://{root}/store")
    create_baseline(cfg, local)
    return {"cfg": cfg, "local": local}


@pytest.fixture
def s3(demo, s3_server):
    """The baseline copied into moto's S3, and a store reaching it through the fault proxy.
    Yields (store, proxy)."""
    import s3fs

    endpoint, bucket = s3_server
    direct = s3fs.S3FileSystem(key="k", secret="s", endpoint_url=endpoint, skip_instance_cache=True)
    local = demo["local"]
    for sub in local.files_under("baselines"):
        direct.pipe_file(f"{bucket}/store/baselines/{sub}", local.read_bytes(f"baselines/{sub}"))
    with FaultProxy(endpoint) as proxy:
        def resolver(url):
            fs = s3fs.S3FileSystem(key="k", secret="s", endpoint_url=proxy.url, skip_instance_cache=True,
                                   config_kwargs={"connect_timeout": 1, "read_timeout": 1,
                                                  "retries": {"max_attempts": 3, "mode": "standard"}})
            return fs, url.removeprefix("s3://")

        yield Store(f"s3://{bucket}/store", resolver=resolver), proxy


def _start(i: int) -> datetime:
    return START + i * DAY


def _run_until_drift(cfg, store: Store, i: int, run_id: str) -> dict:
    from driftline.pipeline.interval import plan_partitions, profile_partition, run_drift, run_ingest

    t = _start(i)
    out = {"ingest": run_ingest(cfg, store, t, t + DAY, run_id=run_id)}
    parts = [profile_partition(cfg, store, t, p, run_id=run_id) for p in plan_partitions(cfg, store, t)]
    out["drift"] = run_drift(cfg, store, t, t + DAY, parts, run_id=run_id)
    return out


def _release(store: Store, i: int, run_id: str) -> None:
    """The end of a run that stopped after drift (its check_run, in the DAG)."""
    from driftline.store.lease import release

    assert release(store, "churn", _start(i), run_id)["released_at"]


def _finish(cfg, store: Store, i: int, run_id: str) -> dict:
    from driftline.pipeline.check import check_run
    from driftline.pipeline.interval import run_alerts
    from driftline.pipeline.summary import STAGES

    t = _start(i)
    alerts = run_alerts(cfg, store, t, "data", run_id=run_id)
    check_run(cfg, store, t, dict.fromkeys(STAGES, True), run_id=run_id)
    return alerts


def _run_day(cfg, store: Store, i: int, run_id: str) -> dict:
    out = _run_until_drift(cfg, store, i, run_id)
    out["alerts"] = _finish(cfg, store, i, run_id)
    return out


def _prefix(i: int) -> str:
    return Store.run_prefix("churn", _start(i))


VERDICT = ("batch.parquet", "quarantine.jsonl", "current_profile.json", "drift.json", "violations/drift.json")


def _counts_add_up(store: Store, i: int) -> dict:
    ingest = store.read_json(f"{_prefix(i)}/ingest.json")
    quarantined = store.read_bytes(f"{_prefix(i)}/quarantine.jsonl").decode().splitlines()
    assert ingest["records_seen"] == ingest["rows"] + len(quarantined)  # records of other intervals are not seen
    assert store.read_parquet(f"{_prefix(i)}/batch.parquet").num_rows == ingest["rows"] > 0
    return ingest


def test_transient_faults_are_retried_and_the_stages_write_the_same_bytes(demo, s3):
    store, proxy = s3
    cfg = demo["cfg"]
    _run_until_drift(cfg, store, 1, "run-clean")
    _release(store, 1, "run-clean")
    clean = {n: store.read_bytes(f"{_prefix(1)}/{n}") for n in VERDICT}
    rules = [proxy.add(Rule("status", method="PUT", path=r"/batch\.parquet$", times=1, status=503)),
             proxy.add(Rule("status", method="PUT", path=r"/violations/drift\.json$", times=1, status=500)),
             proxy.add(Rule("drop", method="GET", path=r"/baselines/churn/v1/profile\.json$", times=1)),
             proxy.add(Rule("truncate", method="GET", path=r"/baselines/churn/v1/profile\.json$", times=1)),
             proxy.add(Rule("stall", method="PUT", path=r"/drift\.json$", times=1, stall=1.5)),
             proxy.add(Rule("status", method="GET", path=r"/lease\.json$", times=1, status=503))]
    t0 = time.perf_counter()
    out = _run_until_drift(cfg, store, 1, "run-faulty")
    assert [r.hits for r in rules] == [1, 1, 1, 1, 1, 1], proxy.log
    assert time.perf_counter() - t0 < 30
    proxy.clear()
    assert {n: store.read_bytes(f"{_prefix(1)}/{n}") for n in VERDICT} == clean
    assert out["drift"]["status"] == "drift"
    _counts_add_up(store, 1)


def test_a_request_refused_for_good_fails_the_stage_naming_the_object_and_leaves_nothing_half_written(demo, s3):
    from driftline.pipeline.interval import run_ingest

    store, proxy = s3
    cfg, t = demo["cfg"], _start(1)
    _run_until_drift(cfg, store, 1, "run-1")
    _release(store, 1, "run-1")
    proxy.add(Rule("status", method="PUT", path=r"/quarantine\.jsonl$", times=None, status=403))
    with pytest.raises(StoreError) as err:
        run_ingest(cfg, store, t, t + DAY, run_id="run-2")
    assert str(err.value).startswith(f"store {store.url}: writing {_prefix(1)}/quarantine.jsonl failed "
                                     f"(PermissionError: ")
    assert any(x == ("PUT", f"/driftline-test/store/{_prefix(1)}/batch.parquet", "forward") for x in proxy.log)
    # the new batch was written before the refusal: it went with it, and so did the previous
    # run's quarantine and report; no half of a run is left for a later stage to read
    for name in ("batch.parquet", "quarantine.jsonl", "ingest.json", "drift.json", "violations"):
        assert not store.exists(f"{_prefix(1)}/{name}"), name
    proxy.clear()
    run_ingest(cfg, store, t, t + DAY, run_id="run-2")  # the task's retry: its own lease, taken back
    _counts_add_up(store, 1)


def _put_without_checksum(s3_server, key: str, data: bytes) -> None:
    import boto3
    from botocore.config import Config

    endpoint, bucket = s3_server
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1",
                 config=Config(request_checksum_calculation="when_required")).put_object(Bucket=bucket, Key=key,
                                                                                        Body=data)


def test_a_truncated_read_of_a_stored_json_is_an_error_naming_the_file(demo, s3, s3_server):
    from driftline.pipeline.interval import plan_partitions, profile_partition, run_ingest

    store, proxy = s3
    cfg, t = demo["cfg"], _start(1)
    run_ingest(cfg, store, t, t + DAY, run_id="run-1")
    (part,) = plan_partitions(cfg, store, t)
    # a body shorter than the object, with a Content-Length that agrees: the checksum S3 keeps
    # with the object (botocore validates it) tells ...
    proxy.add(Rule("short", method="GET", path=r"/baselines/churn/v1/profile\.json$", times=None, keep=0.6))
    with pytest.raises(StoreError, match=r"reading baselines/churn/v1/profile\.json failed \(FlexibleChecksumError"):
        profile_partition(cfg, store, t, part, run_id="run-1")
    # ... and for an object stored without one (an older client wrote it), the parser does
    _put_without_checksum(s3_server, "store/baselines/churn/v1/profile.json",
                          demo["local"].read_bytes("baselines/churn/v1/profile.json"))
    with pytest.raises(CorruptObject, match=r"reading baselines/churn/v1/profile\.json failed: not valid JSON"):
        profile_partition(cfg, store, t, part, run_id="run-1")
    # the connection cut mid-body every time: retried, then an error naming the file
    proxy.clear()
    rule = proxy.add(Rule("truncate", method="GET", path=r"/baselines/churn/v1/profile\.json$", times=None))
    with pytest.raises(StoreError, match=r"reading baselines/churn/v1/profile\.json failed"):
        profile_partition(cfg, store, t, part, run_id="run-1")
    assert rule.hits >= 2  # retried before giving up
    proxy.clear()
    assert profile_partition(cfg, store, t, part, run_id="run-1").endswith("part-00000.json")


def test_two_runs_of_one_interval_at_once_the_second_is_refused_and_nothing_resolves_falsely(demo, s3):
    from driftline.pipeline.check import check_run
    from driftline.pipeline.interval import run_ingest
    from driftline.pipeline.summary import STAGES
    from driftline.stages.alerts import read_events
    from driftline.store.lease import LeaseHeld, read_lease

    store, _ = s3
    cfg = demo["cfg"]
    _run_day(cfg, store, 1, "scheduled__day1")  # drifting: pending (drift alerts at 2 of 3 intervals)
    day2 = _run_day(cfg, store, 2, "scheduled__day2")  # opens the drift incidents
    opened = {a["subject"] for a in day2["alerts"]["firing"] if a["check"] == "baseline_drift_check"}
    assert opened
    # day 3: the scheduled run and a manual re-run start together
    barrier, drift_done, second_done = threading.Barrier(2), threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def run(run_id: str) -> None:
        barrier.wait(timeout=10)
        try:
            results[run_id] = _run_until_drift(cfg, store, 3, run_id)
        except LeaseHeld as exc:
            results[run_id] = exc
            drift_done.wait(timeout=30)
            # ... and tries again while the first is between its drift and its alerts
            try:
                run_ingest(cfg, store, _start(3), _start(4), run_id=run_id)
            except LeaseHeld as again:
                results[run_id + " again"] = again
            second_done.set()
            return
        drift_done.set()
        second_done.wait(timeout=30)
        results[run_id + " alerts"] = _finish(cfg, store, 3, run_id)

    threads = [threading.Thread(target=run, args=(r,)) for r in ("scheduled__day3", "manual__day3")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    refused = [r for r in ("scheduled__day3", "manual__day3") if isinstance(results[r], LeaseHeld)]
    assert len(refused) == 1, results
    loser = refused[0]
    winner = ({"scheduled__day3", "manual__day3"} - {loser}).pop()
    for exc in (results[loser], results[loser + " again"]):
        assert str(exc).startswith(f"interval 2026-10-04T0000Z of churn is being evaluated by run {winner} until ")
        assert "retry after" in str(exc)
    # the winner's verdict is whole, its drift incidents carry on, nothing resolved
    record = results[winner + " alerts"]["records"][0]
    assert record["evaluated"]["drift"] is True
    firing = {a["subject"] for a in record["alerts"] if a["status"] == "firing" and a["check"] == "baseline_drift_check"}
    assert opened <= firing
    assert [e for e in read_events(store, "churn") if e["event"] == "resolved"] == []
    assert store.read_json(f"{_prefix(3)}/violations/drift.json")["violations"]
    # the loser's last task: not its interval, it says so, sends nothing and leaves the lease
    lease = read_lease(store, "churn", _start(3))
    assert lease["holder"] == winner and lease["released_at"]
    out = check_run(cfg, store, _start(3), dict.fromkeys(STAGES, False), run_id=loser)
    assert out["refused"] and out["messages"] == 0 and f"run {winner} has the interval's lease" in out["summary"]
    assert read_lease(store, "churn", _start(3)) == lease


def test_the_stale_lease_of_a_crashed_run_is_taken_over_after_it_expires(demo, s3, monkeypatch):
    from driftline.pipeline import stage
    from driftline.pipeline.check import check_run
    from driftline.pipeline.interval import plan_partitions, profile_partition, run_ingest
    from driftline.pipeline.summary import STAGES
    from driftline.store.lease import LeaseHeld, LeaseLost, read_lease

    store, _ = s3
    cfg, t = demo["cfg"], _start(1)
    monkeypatch.setattr(stage, "lease_ttl", lambda cfg: timedelta(seconds=1))
    run_ingest(cfg, store, t, t + DAY, run_id="crashed")  # ... and its worker dies: no more stages
    with pytest.raises(LeaseHeld, match="being evaluated by run crashed until"):
        run_ingest(cfg, store, t, t + DAY, run_id="rerun")
    until = datetime.fromisoformat(read_lease(store, "churn", t)["expires_at"])
    time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.1)
    run_ingest(cfg, store, t, t + DAY, run_id="rerun")
    lease = read_lease(store, "churn", t)
    assert lease["holder"] == "rerun" and lease["took_over"]["holder"] == "crashed"
    assert lease["took_over"]["why"].startswith("run crashed's lease expired at")
    # the crashed run's worker comes back: its next stage is refused, later told it lost the interval
    (part,) = plan_partitions(cfg, store, t)
    with pytest.raises(LeaseHeld, match="being evaluated by run rerun"):
        profile_partition(cfg, store, t, part, run_id="crashed")
    check_run(cfg, store, t, dict.fromkeys(STAGES, True), run_id="rerun")
    assert read_lease(store, "churn", t)["released_at"]
    with pytest.raises(LeaseLost, match="run crashed no longer holds interval 2026-10-02T0000Z of churn: run rerun"):
        profile_partition(cfg, store, t, part, run_id="crashed")
    _counts_add_up(store, 1)
