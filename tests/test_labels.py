"""Ground truth on hand-made cases: labels before their predictions, days late, twice, for
ids nobody predicted, unreadable; every format; coverage, latest-wins and idempotent sync."""
from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline.stages import labels as L
from driftline.store import Store

UTC = timezone.utc
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)


def _cfg(make_config, tmp_path, fmt="sagemaker_ground_truth", problem="binary_classification", **labels):
    extra = {"prediction": {"label": "pred", "probability": "proba"}} if problem != "regression" else \
        {"prediction": {"label": "pred"}}
    return make_config(problem_type=problem, labels={"uri": str(tmp_path / "gt"), "format": fmt,
                                                     "column": "truth", "delay": "2d", **labels}, **extra)


def _batch(store: Store, start: datetime, ids: list[str], preds: list, problem="binary_classification"):
    typ = pa.float64() if problem == "regression" else (pa.string() if problem.startswith("multi") else pa.int64())
    cols = {"inference_id": pa.array(ids, pa.string()),
            "inference_time": pa.array([start + timedelta(minutes=i) for i in range(len(ids))],
                                       pa.timestamp("us", tz="UTC")),
            "x": pa.array([1.0] * len(ids)), "pred": pa.array(preds, typ)}
    if problem != "regression":
        cols["proba"] = pa.array([0.9 if p in (1, "1") else 0.1 for p in preds], pa.float64())
    store.write_parquet(f"{Store.run_prefix('m', start)}/batch.parquet", pa.table(cols))


def _gt_line(rid: str, label: str, encoding="CSV") -> str:
    data = base64.b64encode(label.encode()).decode() if encoding == "BASE64" else label
    return json.dumps({"groundTruthData": {"data": data, "encoding": encoding},
                       "eventMetadata": {"eventId": rid}, "eventVersion": "0"})


def _put(tmp_path, hour: datetime, name: str, text: str | bytes):
    d = tmp_path / "gt" / hour.strftime("%Y/%m/%d/%H")
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(text.encode() if isinstance(text, str) else text)


@pytest.fixture
def store(tmp_path):
    return Store(f"file://{tmp_path}/store")


def test_merge_late_early_duplicate_unknown_and_bad(make_config, tmp_path, store):
    cfg = _cfg(make_config, tmp_path)
    _batch(store, DAY0, ["a", "b", "c", "d", "e"], [1, 0, 1, 0, 1])
    # a: arrives before its prediction (the previous day); b: two days late; c: twice, the
    # later one wins; d: five days late; e: never. zz: nobody predicted it. bad: unreadable.
    _put(tmp_path, DAY0 - timedelta(hours=5), "l.jsonl", _gt_line("a", "1") + "\n")
    _put(tmp_path, DAY0 + timedelta(days=3, hours=1), "l.jsonl",
         "\n".join([_gt_line("b", "0"), _gt_line("c", "0"), _gt_line("zz", "1"), _gt_line("x1", "maybe"),
                    "{not json", json.dumps({"groundTruthData": {"data": "1"}})]) + "\n")
    _put(tmp_path, DAY0 + timedelta(days=3, hours=7), "l.jsonl", _gt_line("c", "true", "BASE64") + "\n")
    _put(tmp_path, DAY0 + timedelta(days=6), "late.jsonl", _gt_line("d", "yes") + "\n")
    now = DAY0 + timedelta(days=10)
    out = L.sync_labels(cfg, store, now=now)
    assert out["labels"] == 6 and out["quarantined"] == 3
    q = [json.loads(x) for day in ("2026-10-04",) for x in
         store.read_bytes(f"labels/m/quarantine/{day}.jsonl").decode().splitlines()]
    assert sorted(e["kind"] for e in q) == ["bad_label", "invalid_json", "missing_field"]
    assert any("'maybe' is not a binary label" in e["reason"] for e in q)
    assert all(e["source"].endswith("/2026/10/04/01/l.jsonl") and e["line"] for e in q)

    # as of day 4, d has not arrived yet
    m4 = L.merge_interval(cfg, store, DAY0, DAY0 + timedelta(days=1), as_of=DAY0 + timedelta(days=4))
    got = dict(zip(m4.table.column("inference_id").to_pylist(), m4.table.column("truth").to_pylist()))
    assert got == {"a": 1, "b": 0, "c": 1, "d": None, "e": None}
    assert (m4.predicted, m4.labelled, m4.overrides) == (5, 3, 1)
    assert m4.coverage == pytest.approx(0.6)
    m10 = L.merge_interval(cfg, store, DAY0, DAY0 + timedelta(days=1), as_of=now)
    assert m10.labelled == 4 and m10.digest != m4.digest
    # the batch's row order is kept, predictions alongside
    assert m10.table.column("inference_id").to_pylist() == ["a", "b", "c", "d", "e"]
    assert m10.table.column("pred").to_pylist() == [1, 0, 1, 0, 1]
    # the same labels give the same digest
    assert L.merge_interval(cfg, store, DAY0, DAY0 + timedelta(days=1), as_of=now).digest == m10.digest

    # zz matches no prediction: quarantined as unknown_id once decidable
    cfg_end = cfg.interval_end
    for d in range(1, 12):  # the intervals around it have been ingested (empty)
        _batch(store, DAY0 + timedelta(days=d), [], [])
    rec = L.reconcile_unknown(cfg, store, now=now + timedelta(days=3))
    assert rec["unknown"] == 1
    unknown = store.read_bytes("labels/m/quarantine/2026-10-04.unknown.jsonl").decode().splitlines()
    assert len(unknown) == 1 and json.loads(unknown[0])["id"] == "zz"
    assert "no captured prediction" in json.loads(unknown[0])["reason"]
    assert cfg_end(DAY0) == DAY0 + timedelta(days=1)


def test_labels_outside_the_window_are_not_merged(make_config, tmp_path, store):
    cfg = _cfg(make_config, tmp_path, lookback="6h", horizon="3d")
    _batch(store, DAY0, ["a", "b"], [1, 1])
    _put(tmp_path, DAY0 - timedelta(hours=12), "l.jsonl", _gt_line("a", "1") + "\n")   # earlier than lookback
    _put(tmp_path, DAY0 + timedelta(days=5), "l.jsonl", _gt_line("b", "1") + "\n")     # after end + horizon
    L.sync_labels(cfg, store, now=DAY0 + timedelta(days=9))
    m = L.merge_interval(cfg, store, DAY0, DAY0 + timedelta(days=1), as_of=DAY0 + timedelta(days=9))
    assert m.labelled == 0


def test_sync_is_incremental_and_idempotent(make_config, tmp_path, store):
    cfg = _cfg(make_config, tmp_path)
    _put(tmp_path, DAY0 + timedelta(hours=3), "l.jsonl", _gt_line("a", "1") + "\n")
    first = L.sync_labels(cfg, store, now=DAY0 + timedelta(hours=5))
    assert first["days_ingested"] == ["2026-10-01"]
    again = L.sync_labels(cfg, store, now=DAY0 + timedelta(hours=6))
    assert again["days_ingested"] == []  # same objects: nothing re-read
    _put(tmp_path, DAY0 + timedelta(hours=9), "m.jsonl", _gt_line("b", "0") + "\n")
    more = L.sync_labels(cfg, store, now=DAY0 + timedelta(hours=10))
    assert more["days_ingested"] == ["2026-10-01"] and more["labels"] == 2
    # days after the day ended, an object lands late in it: the next sync reads the day again
    assert L.sync_labels(cfg, store, now=DAY0 + timedelta(days=3))["days_ingested"] == []
    _put(tmp_path, DAY0 + timedelta(hours=11), "n.jsonl", _gt_line("c", "0") + "\n")
    late = L.sync_labels(cfg, store, now=DAY0 + timedelta(days=3, hours=1))
    assert late["days_ingested"] == ["2026-10-01"] and late["labels"] == 3
    assert store.read_parquet("labels/m/arrivals/2026-10-01.parquet").num_rows == 3
    # an object replaced in place (another size) is read again too
    _put(tmp_path, DAY0 + timedelta(hours=11), "n.jsonl", _gt_line("c", "1") + "\n" + _gt_line("d", "1") + "\n")
    assert L.sync_labels(cfg, store, now=DAY0 + timedelta(days=3, hours=2))["labels"] == 4
    # force reads unchanged days again, and writes the same labels
    before = store.read_bytes("labels/m/arrivals/2026-10-01.parquet")
    full = L.sync_labels(cfg, store, now=DAY0 + timedelta(days=3, hours=3), since=DAY0, force=True)
    assert full["days_ingested"] == ["2026-10-01"]
    assert store.read_bytes("labels/m/arrivals/2026-10-01.parquet") == before


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_plain_formats_and_label_kinds(make_config, tmp_path, store, fmt):
    cfg = _cfg(make_config, tmp_path, fmt=fmt, problem="regression", id_field="rid")
    rows = [("r1", "1.5"), ("r2", "-3"), ("r3", "abc"), ("", "2"), ("r4", "inf")]
    hour = DAY0 + timedelta(hours=2)
    if fmt == "jsonl":
        body = "\n".join(json.dumps({"rid": a, "truth": b}) for a, b in rows)
    elif fmt == "csv":
        body = "rid,truth\n" + "\n".join(f"{a},{b}" for a, b in rows) + "\nr5,1,extra\n"
    else:
        buf = io.BytesIO()
        pq.write_table(pa.table({"rid": [a for a, _ in rows], "truth": [b for _, b in rows]}), buf)
        body = buf.getvalue()
    _put(tmp_path, hour, f"labels.{fmt}", body)
    out = L.sync_labels(cfg, store, now=DAY0 + timedelta(hours=3))
    table = store.read_parquet("labels/m/arrivals/2026-10-01.parquet")
    assert dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist())) == {"r1": 1.5, "r2": -3.0}
    q = [json.loads(x) for x in store.read_bytes("labels/m/quarantine/2026-10-01.jsonl").decode().splitlines()]
    kinds = sorted(e["kind"] for e in q)
    assert kinds == sorted(["bad_label", "missing_id", "bad_label"] + (["csv_field_count"] if fmt == "csv" else []))
    assert out["quarantined"] == len(kinds)


def test_label_values_by_problem_type():
    assert [L.parse_label("binary_classification", v)[0] for v in ("1", "0", "TRUE", "no", 1.0, True, " 0.0 ")] == \
        [1, 0, 1, 0, 1, 1, 0]
    assert L.parse_label("binary_classification", "2")[1]
    assert L.parse_label("multiclass_classification", "2.0") == ("2", None)
    assert L.parse_label("multiclass_classification", " cat ") == ("cat", None)
    assert L.parse_label("regression", "1e3") == (1000.0, None)
    assert L.parse_label("regression", "")[1] == "the label is empty"
    assert L.parse_label("regression", {"a": 1})[1].startswith("the label is a JSON dict")


def test_unreachable_labels_location_names_it(make_config, tmp_path, store):
    (tmp_path / "gt").write_text("a file, not a folder")
    cfg = _cfg(make_config, tmp_path)
    from driftline.store import StoreError

    with pytest.raises(StoreError, match="labels location .*gt: cannot be reached"):
        L.sync_labels(cfg, store, now=DAY0)


def test_digest_is_of_the_pairs_not_their_order_or_chunks():
    t = pa.table({"id": ["b", "a", "c"], "label": pa.array([1, 0, 1], pa.int64()),
                  "arrived": pa.array([None] * 3, L.TIMESTAMP)})
    same = {L._digest(t), L._digest(t.take([2, 1, 0])), L._digest(pa.concat_tables([t.slice(0, 1), t.slice(1)]))}
    assert len(same) == 1
    changed = t.set_column(1, "label", pa.array([1, 1, 1], pa.int64()))
    assert L._digest(changed) not in same and L._digest(t.slice(1)) not in same
