"""Fault injection, bad input (issue 14, points 2 and 3): every probe that stopped a stage,
lost records silently or bloated the artifacts, replayed. Each case asserts the specific
quarantine entry (or type error) it must give, that no record is lost -- records in = kept +
quarantined --, that the stages after ingest run, and what the run's verdict says.

Bounds and their documented values are in ``driftline.common.limits``; the reader's rules in the
docstrings of ``driftline.stages.ingest`` and ``driftline.stages.labels``."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline.common.limits import MAX_JSON_DEPTH, MAX_LINE_CHARS, MAX_VALUE_CHARS, SHOWN_CHARS, nesting_past, shown
from driftline.stages import labels as L
from driftline.stages.data_quality import quarantine_violation
from driftline.stages.ingest import UNPARSED_PREFIX, ingest_interval, read_interval
from driftline.store import Store

UTC = timezone.utc
D0 = datetime(2026, 10, 1, tzinfo=UTC)
D1 = D0 + timedelta(days=1)
HOUR = D0 + timedelta(hours=5)


# -- helpers -------------------------------------------------------------------------------------
def _cfg(make_config, tmp_path: Path, fmt: str = "jsonl", **over):
    doc = {"capture": {"uri": str(tmp_path / "capture"), "format": fmt},
           "labels": {"uri": str(tmp_path / "gt"), "format": "jsonl", "column": "truth", "delay": "0h"}}
    doc.update(over)
    return make_config(**doc)


def _put(root: Path, hour: datetime, name: str, data: str | bytes) -> Path:
    d = root / hour.strftime("%Y/%m/%d/%H")
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _record(i: int, rng: np.random.Generator, prefix: str = "r", **over) -> dict:
    p = float(rng.random())
    rec = {"inference_id": f"{prefix}{i}", "inference_time": f"2026-10-01T05:{i % 60:02d}:{i % 59:02d}Z",
           "x": float(rng.normal()), "k": int(rng.integers(0, 5)), "c": str(rng.choice(["a", "b"], p=[0.7, 0.3])),
           "b": bool(rng.random() < 0.5), "proba": p, "pred": int(p >= 0.5)}
    rec.update(over)
    return rec


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _conserved(res, records_in: int) -> None:
    """Nothing lost: every record read is kept or quarantined, and as many as were written."""
    assert res.records_seen == res.rows + res.quarantined == records_in
    assert res.rows == res.batch.num_rows
    assert res.quarantined == sum(e.get("records", 1) for e in res.quarantine)


def _kinds(res) -> list[str]:
    return sorted(res.quarantine_kinds)


def _readable_prefix(blob: bytes) -> bytes:
    """What Python's own gzip reader decodes of a broken object before it raises."""
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
            while chunk := f.read(4096):
                out += chunk
    except (EOFError, OSError, zlib.error):
        pass
    return bytes(out)


def _common_prefix(a: bytes, b: bytes) -> bytes:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


# -- 1. non-finite numbers -----------------------------------------------------------------------
NON_FINITE = ["Infinity", "1e999", "-Infinity"]  # as JSON numbers; 1e999 overflows a float


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "sagemaker_capture"])
def test_non_finite_numbers_are_type_errors_and_never_reach_json(make_config, tmp_path, fmt):
    """An inf in a numeric feature is not a value of it: the record is kept, the field null,
    its text in the sidecar, counted as a type error of that column -- so data quality's
    data_type_check names column and value, and no statistic or JSON artifact meets it."""
    cfg = _cfg(make_config, tmp_path, fmt)
    rng = np.random.default_rng(1)
    recs = [_record(i, rng) for i in range(6)]
    cap = tmp_path / "capture"
    texts = ["1.5", "inf", "1e999", "-Infinity", "nan", "2"]  # nan is a missing value, not an error
    if fmt == "jsonl":
        body = ""
        for r, t in zip(recs, texts):
            line = json.dumps({**r, "x": "__X__"}).replace('"__X__"', t if t not in ("inf", "nan") else f'"{t}"')
            body += line + "\n"
        _put(cap, HOUR, "a.jsonl", body)
    elif fmt == "csv":
        head = "inference_id,inference_time,x,k,c,b,proba,pred\n"
        _put(cap, HOUR, "a.csv", head + "".join(
            f"{r['inference_id']},{r['inference_time']},{t},{r['k']},{r['c']},{r['b']},{r['proba']},{r['pred']}\n"
            for r, t in zip(recs, texts)))
    elif fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(pa.table({**{k: [r[k] for r in recs] for k in recs[0]},
                                 "x": [float(t) for t in texts]}), buf)
        _put(cap, HOUR, "a.parquet", buf.getvalue())
    else:
        body = ""
        for r, t in zip(recs, texts):
            payload = f"{t},{r['k']},{r['c']},{str(r['b']).lower()}"
            body += json.dumps({
                "captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                                  "data": payload, "encoding": "CSV"},
                                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                                   "data": str(r["proba"]), "encoding": "CSV"}},
                "eventMetadata": {"eventId": r["inference_id"], "inferenceTime": r["inference_time"]},
                "eventVersion": "0"}) + "\n"
        _put(cap, HOUR, "a.jsonl", body)
    res = read_interval(cfg, D0, D1)
    _conserved(res, 6)
    assert res.quarantine == [] and res.type_errors == {"x": 3}
    rows = {r["inference_id"]: r for r in res.batch.to_pylist()}
    x = [rows[f"r{i}"]["x"] for i in range(6)]
    assert x == [1.5, None, None, None, None, 2.0]
    assert all(v is None or math.isfinite(v) for v in res.batch.column("x").to_pylist())
    sidecar = [rows[f"r{i}"][UNPARSED_PREFIX + "x"] for i in range(6)]
    assert [s is not None for s in sidecar] == [False, True, True, True, False, False]
    assert float(sidecar[1]) == math.inf and float(sidecar[3]) == -math.inf  # the value itself, as text
    # the stage's artifacts are written (strict JSON: a non-finite number would raise)
    out = ingest_interval(cfg, Store(f"file://{tmp_path}/store"), D0, D1)
    assert out["type_errors"] == {"x": 3} and "3 type errors (x 3)" in out["summary"]


def test_non_finite_model_outputs_are_quarantined(make_config, tmp_path):
    """A model output that is no number a prediction can be: an inf probability is out of
    [0, 1]; an inf (or 1e999) regression prediction is no prediction."""
    rng = np.random.default_rng(2)
    cfg = _cfg(make_config, tmp_path)
    _put(tmp_path / "capture", HOUR, "a.jsonl", _lines([_record(0, rng), _record(1, rng)])
         + json.dumps(_record(2, rng, proba="__P__")).replace('"__P__"', "Infinity") + "\n")
    res = read_interval(cfg, D0, D1)
    _conserved(res, 3)
    assert _kinds(res) == ["probability_out_of_range"] and "proba = inf is outside [0, 1]" in res.quarantine[0]["reason"]
    reg = _cfg(make_config, tmp_path, problem_type="regression", prediction={"label": "pred"})
    _put(tmp_path / "capture", HOUR, "a.jsonl", "".join(
        json.dumps({**_record(i, rng), "pred": "__V__"}).replace('"__V__"', v) + "\n"
        for i, v in enumerate(["3.25", "1e999", "-Infinity", "NaN"])))
    res = read_interval(reg, D0, D1)
    _conserved(res, 4)
    assert res.batch.column("pred").to_pylist() == [3.25]
    assert _kinds(res) == ["bad_prediction"] * 3
    assert [q["line"] for q in res.quarantine] == [2, 3, 4]
    assert "pred: inf is not a finite number" in res.quarantine[0]["reason"]


# -- 2. wrong-typed model outputs ----------------------------------------------------------------
def _sm_json(rid: str, inp: dict, out: dict) -> str:
    return json.dumps({
        "captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                          "data": json.dumps(inp), "encoding": "JSON"},
                        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                           "data": json.dumps(out), "encoding": "JSON"}},
        "eventMetadata": {"eventId": rid, "inferenceTime": "2026-10-01T05:10:00Z"}, "eventVersion": "0"})


@pytest.mark.parametrize("problem, outputs, kept, bad", [
    # the probe: a word where a regression model's number belongs
    ("regression", [{"predicted_label": 12.5}, {"predicted_label": "yes"}, {"predicted_label": [1, 2]}],
     [12.5], ["'yes' is not a number (a regression label)", "the label is a JSON list"]),
    # a binary model reads labels by the rules ground truth has: yes is 1; 2 and maybe are none
    ("binary_classification", [{"predicted_label": "yes"}, {"predicted_label": 0}, {"predicted_label": 2},
                               {"predicted_label": "maybe"}],
     [1, 0], ["'2' is not a binary label", "'maybe' is not a binary label"]),
    ("multiclass_classification", [{"label": "gold"}, {"label": {"class": "gold"}}, {"label": math.inf}],
     ["gold"], ["the label is a JSON dict", "inf is not a finite number"]),
])
def test_wrong_typed_predictions_are_quarantined_at_ingest(make_config, tmp_path, problem, outputs, kept, bad):
    cfg = _cfg(make_config, tmp_path, "sagemaker_capture", problem_type=problem, prediction={"label": "pred"})
    lines = [_sm_json(f"e{i}", {"x": 1.0, "k": 1, "c": "a", "b": True}, out) for i, out in enumerate(outputs)]
    _put(tmp_path / "capture", HOUR, "a.jsonl", "\n".join(lines) + "\n")
    res = read_interval(cfg, D0, D1)
    _conserved(res, len(outputs))
    assert res.batch.column("pred").to_pylist() == kept
    want_type = {"regression": pa.float64(), "binary_classification": pa.int64(),
                 "multiclass_classification": pa.string()}[problem]
    assert res.batch.schema.field("pred").type == want_type
    assert _kinds(res) == ["bad_prediction"] * len(bad)
    for entry, why in zip(res.quarantine, bad):
        assert entry["reason"].startswith("pred: ") and why in entry["reason"], entry["reason"]
        assert entry["source"].endswith("/2026/10/01/05/a.jsonl") and entry["raw"]


# -- 3. deep nesting -----------------------------------------------------------------------------
def test_nesting_is_measured_without_decoding():
    assert nesting_past("[" * 100_000 + "]" * 100_000) == MAX_JSON_DEPTH + 1
    assert nesting_past("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) == 0
    # brackets inside strings are text, escaped quotes included
    assert nesting_past(json.dumps({"a": "[" * 1000 + '\\"' + "{" * 1000})) == 0
    assert nesting_past(json.dumps({"a": ["\"["] * 3}), limit=1) == 2


def test_deep_lines_are_quarantined_without_recursion(make_config, tmp_path):
    """A line nested 100,000 levels deep, in a plain record or a SageMaker payload: one
    too_deep entry each; the record at the limit itself is read."""
    rng = np.random.default_rng(3)
    cfg = _cfg(make_config, tmp_path)

    def nested(depth: int):  # a value `depth` levels deep (the record adds one)
        return json.loads("[" * depth + "]" * depth)
    ok = {**_record(1, rng), "extra": nested(MAX_JSON_DEPTH - 1)}     # 64 levels with the record
    over = {**_record(2, rng), "extra": nested(MAX_JSON_DEPTH)}       # 65
    _put(tmp_path / "capture", HOUR, "a.jsonl", "\n".join([
        json.dumps(_record(0, rng)), "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000,
        json.dumps(ok), json.dumps(over)]) + "\n")
    res = read_interval(cfg, D0, D1)
    _conserved(res, 5)
    assert sorted(res.batch.column("inference_id").to_pylist()) == ["r0", "r1"]
    assert _kinds(res) == ["too_deep"] * 3 and [q["line"] for q in res.quarantine] == [2, 3, 5]
    assert all(f"deeper than {MAX_JSON_DEPTH} levels" in q["reason"] for q in res.quarantine)
    assert all(len(q["raw"]) <= MAX_VALUE_CHARS for q in res.quarantine)  # 200,000 characters each, capped
    sm = _cfg(make_config, tmp_path, "sagemaker_capture")
    deep_payload = _sm_json("e1", {"x": 1.0}, {"proba": 0.5}).replace(
        json.dumps(json.dumps({"x": 1.0})), json.dumps("[" * 100_000 + "]" * 100_000))
    _put(tmp_path / "capture", HOUR, "a.jsonl", _sm_json("e0", {"x": 1.0, "k": 1, "c": "a", "b": True},
                                                         {"proba": 0.5}) + "\n" + deep_payload + "\n")
    res = read_interval(sm, D0, D1)
    _conserved(res, 2)
    assert _kinds(res) == ["too_deep"] and res.quarantine[0]["reason"].startswith("captureData.endpointInput.data: JSON")


def test_deep_label_lines_are_quarantined_and_later_syncs_run(make_config, tmp_path):
    cfg = _cfg(make_config, tmp_path, labels={"uri": str(tmp_path / "gt"), "format": "sagemaker_ground_truth",
                                              "column": "truth"})
    store = Store(f"file://{tmp_path}/store")
    good = json.dumps({"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "a"}})
    deep_data = json.dumps({"groundTruthData": {"data": "[" * 100_000 + "]" * 100_000, "encoding": "JSON"},
                            "eventMetadata": {"eventId": "b"}})
    _put(tmp_path / "gt", D0 + timedelta(hours=3), "l.jsonl", "\n".join([good, "[" * 100_000, deep_data]) + "\n")
    out = L.sync_labels(cfg, store, now=D0 + timedelta(days=2))
    assert (out["labels"], out["quarantined"]) == (1, 2)
    q = [json.loads(x) for x in store.read_bytes("labels/m/quarantine/2026-10-01.jsonl").decode().splitlines()]
    assert [(e["kind"], e["line"]) for e in q] == [("too_deep", 2), ("too_deep", 3)]
    assert q[1]["reason"].startswith("groundTruthData.data: JSON nested deeper")
    # every later run's sync goes on
    _put(tmp_path / "gt", D0 + timedelta(hours=4), "m.jsonl", good.replace('"a"', '"c"') + "\n")
    assert L.sync_labels(cfg, store, now=D0 + timedelta(days=2, hours=1))["labels"] == 2


# -- 4. objects that break off -------------------------------------------------------------------
def _gz_of(records: list[dict]) -> bytes:
    return gzip.compress(_lines(records).encode())


def test_truncated_gzip_keeps_its_readable_records_and_flags_the_interval(make_config, tmp_path):
    """The probe: 200 records in a .gz cut short. The records decoded before the cut are kept
    (as many as Python's zlib decodes of the cut bytes, counted independently), the rest is
    one truncated_object entry naming object, line and byte offset, and the interval's data
    quality fails quarantine_check although far under max_quarantine_share."""
    rng = np.random.default_rng(4)
    cfg = _cfg(make_config, tmp_path)
    healthy = [_record(i, rng, "h") for i in range(1000)]
    cut_recs = [_record(i, rng, "g") for i in range(200)]
    blob = _gz_of(cut_recs)
    cut = blob[: len(blob) * 45 // 100]
    _put(tmp_path / "capture", HOUR, "healthy.jsonl", _lines(healthy))
    _put(tmp_path / "capture", HOUR, "part-0001.jsonl.gz", cut)
    decoded = zlib.decompressobj(wbits=31).decompress(cut)   # the reference: one call, no chunking
    readable = decoded.count(b"\n")
    assert 0 < readable < 200
    res = read_interval(cfg, D0, D1)
    _conserved(res, 1000 + readable + 1)  # the rest counts once: how many records it held is unknown
    kept = set(res.batch.column("inference_id").to_pylist())
    assert kept == {r["inference_id"] for r in healthy + cut_recs[:readable]}
    [entry] = res.quarantine
    assert res.quarantine_kinds == ["truncated_object"]
    assert entry["source"].endswith("/2026/10/01/05/part-0001.jsonl.gz") and entry["line"] == readable + 1
    assert f"compressed byte {len(cut):,} of {len(cut):,}" in entry["reason"]
    assert f"{readable} record(s) before it were read" in entry["reason"] and "unknown" in entry["reason"]
    assert entry["raw"] == decoded[decoded.rfind(b"\n") + 1:].decode()  # the cut line
    # the verdict: 1 of 1000+ quarantined is under 1%, and still the interval is not ok
    store = Store(f"file://{tmp_path}/store")
    out = ingest_interval(cfg, store, D0, D1)
    assert "1 object(s) not readable to their end" in out["summary"] and out["unreadable_objects"] == 1
    ingest = store.read_json("runs/m/2026-10-01T0000Z/ingest.json")
    assert ingest["quarantined"] / ingest["records_seen"] < cfg.thresholds.max_quarantine_share
    [v] = quarantine_violation(cfg, ingest)
    assert v["constraint_check_type"] == "quarantine_check" and "part-0001.jsonl.gz" in v["description"]
    assert v["details"]["unreadable_objects"][0]["line"] == readable + 1


def test_corrupt_bytes_inside_a_gzip_keep_what_decodes_before_them(make_config, tmp_path):
    rng = np.random.default_rng(5)
    cfg = _cfg(make_config, tmp_path)
    recs = [_record(i, rng) for i in range(3000)]
    blob = bytearray(_gz_of(recs))
    mid = len(blob) // 2
    blob[mid:mid + 64] = b"\xff" * 64
    _put(tmp_path / "capture", HOUR, "a.jsonl.gz", bytes(blob))
    good = _common_prefix(_readable_prefix(bytes(blob)), _lines(recs).encode()).count(b"\n")
    assert 100 < good < 3000
    res = read_interval(cfg, D0, D1)
    assert res.records_seen == res.rows + res.quarantined
    kept = set(res.batch.column("inference_id").to_pylist())
    assert {r["inference_id"] for r in recs[:good]} <= kept
    assert "truncated_object" in res.quarantine_kinds
    entry = res.quarantine[res.quarantine_kinds.index("truncated_object")]
    assert "checksum does not match" in entry["reason"] or "corrupt gzip data" in entry["reason"]


def test_a_gzip_with_nothing_readable_is_one_unreadable_file(make_config, tmp_path):
    cfg = _cfg(make_config, tmp_path)
    _put(tmp_path / "capture", HOUR, "a.jsonl.gz", b"not gzip at all\n")
    res = read_interval(cfg, D0, D1)
    _conserved(res, 1)
    assert res.quarantine_kinds == ["unreadable_file"] and "not a readable gzip file" in res.quarantine[0]["reason"]
    assert res.unreadable_objects()[0]["kind"] == "unreadable_file"


def _parquet_groups(records: list[dict], group: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buf, row_group_size=group, compression="zstd")
    return buf.getvalue()


def test_cut_parquet_and_a_corrupt_row_group(make_config, tmp_path):
    """A Parquet file cut short has no footer: nothing says how many rows it held, one
    unreadable_file entry, flagged. A corrupt row group of an intact file: its rows, counted
    from the footer, are one unreadable_part entry; the other groups are kept."""
    rng = np.random.default_rng(6)
    cfg = _cfg(make_config, tmp_path, "parquet")
    recs = [_record(i, rng) for i in range(300)]
    data = _parquet_groups(recs, 100)
    _put(tmp_path / "capture", HOUR, "a.parquet", data[: len(data) // 2])
    res = read_interval(cfg, D0, D1)
    _conserved(res, 1)
    assert res.quarantine_kinds == ["unreadable_file"] and res.unreadable_objects()
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert [meta.row_group(g).num_rows for g in range(3)] == [100, 100, 100]
    chunk = meta.row_group(1).column(2)  # x of the second group: its pages, dictionary first
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    bad = bytearray(data)
    bad[start:start + chunk.total_compressed_size] = b"\x13" * chunk.total_compressed_size
    _put(tmp_path / "capture", HOUR, "a.parquet", bytes(bad))
    res = read_interval(cfg, D0, D1)
    _conserved(res, 300)
    assert res.rows == 200 and res.quarantine_kinds == ["unreadable_part"]
    [entry] = res.quarantine
    assert entry["records"] == 100 and entry["line"] == 101 and "row group 1 (rows 101-200)" in entry["reason"]
    assert set(res.batch.column("inference_id").to_pylist()) == {r["inference_id"] for r in recs[:100] + recs[200:]}
    assert res.unreadable_objects() == []  # its extent is known: counted, judged by the share


def test_truncated_label_gzip_keeps_its_labels(make_config, tmp_path):
    cfg = _cfg(make_config, tmp_path)
    store = Store(f"file://{tmp_path}/store")
    body = "".join(json.dumps({"inference_id": f"r{i}", "truth": i % 2}) + "\n" for i in range(5000))
    blob = gzip.compress(body.encode())
    cut = blob[: len(blob) // 3]
    _put(tmp_path / "gt", D0 + timedelta(hours=7), "labels.jsonl.gz", cut)
    readable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    out = L.sync_labels(cfg, store, now=D0 + timedelta(days=2))
    assert out["labels"] == readable and out["quarantined"] == 1 and out["unreadable_objects"] == 1
    assert "1 object(s) not readable to their end" in out["summary"]
    m = L.arrival_manifests(store, "m")["2026-10-01"]
    assert m["records"] == m["labels"] + m["quarantined"] == readable + 1
    assert m["unreadable_objects"][0]["kind"] == "truncated_object"
    table = store.read_parquet("labels/m/arrivals/2026-10-01.parquet")
    assert table.column("id").to_pylist() == [f"r{i}" for i in range(readable)]


# -- 5. oversized values and lines -----------------------------------------------------------------
def test_oversized_values_and_lines_are_quarantined_with_length_and_hash(make_config, tmp_path):
    rng = np.random.default_rng(7)
    cfg = _cfg(make_config, tmp_path)
    long_value = "v" * (MAX_VALUE_CHARS + 1)
    huge = "z" * 50_000_000  # the probe: one 50 MB category value, past the line limit too
    assert len(huge) > MAX_LINE_CHARS
    at_limit = "w" * MAX_VALUE_CHARS
    lines = [json.dumps(r) for r in (_record(0, rng), _record(1, rng, c=long_value), _record(2, rng, c=huge),
                                     _record(3, rng, c=at_limit), {**_record(4, rng), "k" * (MAX_VALUE_CHARS + 1): 1})]
    _put(tmp_path / "capture", HOUR, "a.jsonl", "\n".join(lines) + "\n")
    res = read_interval(cfg, D0, D1)
    _conserved(res, 5)
    assert sorted(res.batch.column("inference_id").to_pylist()) == ["r0", "r3"]
    assert [(q["line"], k) for q, k in zip(res.quarantine, res.quarantine_kinds)] == [
        (2, "value_too_long"), (3, "line_too_long"), (5, "value_too_long")]
    sha = hashlib.sha256(long_value.encode()).hexdigest()[:16]
    assert (f"column 'c': a value of {len(long_value):,} characters (sha256 {sha}) is longer than the "
            f"{MAX_VALUE_CHARS:,}-character limit") in res.quarantine[0]["reason"]
    assert "a column name: a value of" in res.quarantine[2]["reason"]
    line_sha = hashlib.sha256(lines[2].encode()).hexdigest()[:16]
    assert (f"the line: a value of {len(lines[2]):,} characters (sha256 {line_sha}) is longer than the "
            f"{MAX_LINE_CHARS:,}-character limit") in res.quarantine[1]["reason"]
    # what is kept of them is bounded: the raw text at MAX_VALUE_CHARS, with length and hash
    for q in res.quarantine:
        assert len(q["raw"]) <= MAX_VALUE_CHARS and len(q["reason"]) < 1000
    assert "chars, sha256" in res.quarantine[1]["raw"]
    out = ingest_interval(cfg, Store(f"file://{tmp_path}/store"), D0, D1)
    assert Path(out["quarantine_uri"][len("file://"):]).stat().st_size < 4 * MAX_VALUE_CHARS


def test_a_long_csv_field_is_a_long_value_not_an_unreadable_file(make_config, tmp_path):
    cfg = _cfg(make_config, tmp_path, "csv")
    long_value = "q" * 200_000  # past the csv module's default field limit (131,072)
    _put(tmp_path / "capture", HOUR, "a.csv", "inference_id,x,c\nr0,1.5,a\n" f'r1,2.5,"{long_value}"\nr2,3,b\n')
    res = read_interval(cfg, D0, D1)
    _conserved(res, 3)
    assert res.batch.column("inference_id").to_pylist() == ["r0", "r2"] and res.quarantine_kinds == ["value_too_long"]


def test_shown_form():
    value = "z" * 50_000_000
    s = shown(value)
    assert len(s) == SHOWN_CHARS and s.startswith("z" * 100)
    assert s.endswith(f"… [50,000,000 chars, sha256 {hashlib.sha256(value.encode()).hexdigest()[:16]}]")
    assert shown(s) == s and shown("short") == "short"
    assert shown("a" * 300) != shown("a" * 299 + "b")  # distinct values stay distinct


def test_composed_texts_are_held_to_the_text_cap(tmp_path):
    """Whatever a stage hands over, the report's text, an alert's sentence and a stored
    violation stay bounded, and say the length and hash of what they cut."""
    from driftline.common.html import esc
    from driftline.common.limits import TEXT_CHARS
    from driftline.stages.alerts import sentence
    from driftline.stages.data_quality import write_violations

    text = "d" * 100_000
    tail = f"[100,000 chars, sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}]"
    assert len(esc(text)) <= TEXT_CHARS and esc(text).endswith(tail)
    v = {"feature_name": "c", "constraint_check_type": "categorical_values_check", "description": text,
         "details": {"unknown_values": {text: 3}}}
    said = sentence(v, None, "v1")
    whole = "c: " + text  # the sentence of a categorical violation: its subject and description
    assert len(said) == TEXT_CHARS and said.startswith("c: ddd")
    assert said.endswith(f"[100,003 chars, sha256 {hashlib.sha256(whole.encode()).hexdigest()[:16]}]")
    store = Store(f"file://{tmp_path}/store")
    write_violations(store, "runs/m/k", "data_quality", [v])
    from driftline.store.violations import read_violations

    [stored] = read_violations(store, "runs/m/k")
    assert stored["description"].endswith(tail) and list(stored["details"]["unknown_values"]) == [stored["description"]]
    assert stored["details"]["unknown_values"][stored["description"]] == 3


# -- 6. the stages after ingest, at library level ----------------------------------------------------
@pytest.fixture
def pipeline(make_config, tmp_path):
    """A model with a baseline and labels, as monitor_interval runs it."""
    from driftline.stages.baseline import create_baseline

    rng = np.random.default_rng(10)
    n = 3000
    proba = rng.beta(0.6, 0.6, n)
    pq.write_table(pa.table({"x": rng.normal(size=n), "k": rng.integers(0, 5, n),
                             "c": rng.choice(["a", "b"], n, p=[0.7, 0.3]), "b": rng.random(n) < 0.5,
                             "proba": proba, "pred": (proba >= 0.5).astype("int64"),
                             "truth": (rng.random(n) < proba).astype("int64")}), tmp_path / "train.parquet")
    cfg = _cfg(make_config, tmp_path, performance={"segments": ["c"], "min_samples": 50},
               baseline={"training_data": str(tmp_path / "train.parquet"), "sample_rows": 0})
    store = Store(f"file://{tmp_path}/store")
    create_baseline(cfg, store)
    return cfg, store, rng


def _artifacts(root: Path) -> dict[str, bytes]:
    """Every file the run wrote that shows data (the batch and the merged table are data)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.suffix != ".parquet" and "baselines" not in p.parts}


def test_one_interval_with_every_bad_value_runs_every_stage(pipeline, tmp_path):
    """inf, a word for a label, a line 100,000 deep, a value past MAX_VALUE_CHARS, a truncated
    gzip and a 60,000-character category value in one interval, labels for all: every stage
    runs, the verdict names what happened, nothing is lost, and no artifact holds more than
    SHOWN_CHARS of a value."""
    from driftline.pipeline.interval import monitor_interval

    cfg, store, rng = pipeline
    recs = [_record(i, rng) for i in range(400)]
    long_category = "Q" * 60_000  # under MAX_VALUE_CHARS: kept, and must be shown capped everywhere
    recs[5]["c"] = long_category
    lines = [json.dumps(r) for r in recs]
    lines[7] = lines[7].replace(f'"x": {recs[7]["x"]}', '"x": Infinity')
    lines[8] = lines[8].replace('"pred": ', '"pred": "maybe", "was": ')
    lines.append("[" * 100_000 + "]" * 100_000)
    lines.append(json.dumps(_record(999, rng, c="V" * (MAX_VALUE_CHARS + 10))))
    _put(tmp_path / "capture", HOUR, "a.jsonl", "\n".join(lines) + "\n")
    gz_recs = [_record(i, rng, "g") for i in range(200)]
    blob = _gz_of(gz_recs)
    cut = blob[: len(blob) * 45 // 100]
    readable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    _put(tmp_path / "capture", HOUR, "b.jsonl.gz", cut)
    truth = {r["inference_id"]: int(rng.random() < r["proba"]) for r in recs + gz_recs}
    _put(tmp_path / "gt", D1 + timedelta(hours=2), "l.jsonl",
         "".join(json.dumps({"inference_id": i, "truth": t}) + "\n" for i, t in truth.items()))

    out = monitor_interval(cfg, store, D0, D1)
    st = out["stages"]
    ing = st["ingest"]
    records_in = 400 + 2 + readable + 1
    assert ing["records_seen"] == ing["rows"] + ing["quarantined"] == records_in
    assert ing["rows"] == 400 - 1 + readable  # all but the 'maybe' one; inf kept (x null)
    prefix = "runs/m/2026-10-01T0000Z"
    reasons = store.read_json(f"{prefix}/ingest.json")["quarantine_reasons"]
    assert {k: r["count"] for k, r in reasons.items()} == {
        "bad_prediction": 1, "too_deep": 1, "value_too_long": 1, "truncated_object": 1}
    assert out["status"] == "violations"
    run = store.read_json(f"{prefix}/run.json")
    assert {"quarantine_check", "data_type_check"} <= set(run["violation_checks"])
    violations = store.read_json(f"{prefix}/constraint_violations.json")["violations"]
    dtype = next(v for v in violations if v["constraint_check_type"] == "data_type_check" and v["feature_name"] == "x")
    assert "'inf'" in dtype["description"]
    # model quality and bias saw only labels of the model's kind: realized on every labelled row
    mq = store.read_json(f"{prefix}/model_quality.json")
    assert mq["overall"]["realized"]["status"] == "ok" and mq["overall"]["labelled"] == ing["rows"]
    # the 60,000-character value: in the batch, and nowhere else but as its shown form
    batch = store.read_parquet(f"{prefix}/batch.parquet")
    assert long_category in batch.column("c").to_pylist()
    sha = hashlib.sha256(long_category.encode()).hexdigest()[:16]
    tag = f"[60,000 chars, sha256 {sha}]".encode()  # the shown form's tail (JSON escapes its '…')
    arts = _artifacts(tmp_path / "store")
    assert not [n for n, b in arts.items() if b"Q" * (SHOWN_CHARS + 1) in b]
    assert not [n for n, b in arts.items() if b"V" * (MAX_VALUE_CHARS + 1) in b]
    for name in ("current_profile.json", "drift.json", "report.html", "constraint_violations.json",
                 "data_docs/index.html"):
        assert tag in arts[f"{prefix}/{name}"], name
    assert max(len(b) for n, b in arts.items() if not n.endswith("quarantine.jsonl")) < 2_000_000


# -- 7. late labels for a day long past ------------------------------------------------------------
def test_late_labels_for_a_settled_arrival_day_are_picked_up(pipeline, tmp_path):
    """The probe: 480 labels land in an arrival day that ended days ago. The next sync reads
    that day again (its objects changed), and re-evaluation takes them into the interval."""
    from driftline.pipeline.reevaluate import reevaluate
    from driftline.stages.model_quality import run_model_quality

    cfg, store, rng = pipeline
    recs = [_record(i, rng) for i in range(600)]
    _put(tmp_path / "capture", HOUR, "a.jsonl", _lines(recs))
    ingest_interval(cfg, store, D0, D1)
    truth = {r["inference_id"]: int(rng.random() < r["proba"]) for r in recs}
    ids = list(truth)
    _put(tmp_path / "gt", D1 + timedelta(hours=2), "early.jsonl",
         "".join(json.dumps({"inference_id": i, "truth": truth[i]}) + "\n" for i in ids[:120]))
    L.sync_labels(cfg, store, now=D0 + timedelta(days=4))
    first = run_model_quality(cfg, store, D0, D1, as_of=D0 + timedelta(days=4))
    assert first["labelled"] == 120
    # days later, 480 labels land in the arrival day 2026-10-02, long over
    _put(tmp_path / "gt", D1 + timedelta(hours=23), "late.jsonl",
         "".join(json.dumps({"inference_id": i, "truth": truth[i]}) + "\n" for i in ids[120:]))
    synced = L.sync_labels(cfg, store, now=D0 + timedelta(days=6))
    assert synced["days_ingested"] == ["2026-10-02"] and synced["labels"] == 600
    again = reevaluate(cfg, store, now=D0 + timedelta(days=6))
    assert [r["interval"] for r in again["reevaluated"]] == ["2026-10-01T0000Z"]
    mq = store.read_json("runs/m/2026-10-01T0000Z/model_quality.json")
    assert mq["overall"]["labelled"] == 600 and mq["overall"]["coverage"] == pytest.approx(600 / 600)
    # the realized accuracy is the one of all 600 pairs, as scikit-learn computes it
    from sklearn.metrics import accuracy_score

    pred = [int(r["proba"] >= 0.5) for r in recs]
    assert mq["overall"]["realized"]["metrics"]["accuracy"] == pytest.approx(
        accuracy_score([truth[i] for i in ids], pred))


# -- 8. a corrupt store file -----------------------------------------------------------------------
def test_a_truncated_label_manifest_is_set_aside_and_never_blocks(make_config, tmp_path, caplog):
    cfg = _cfg(make_config, tmp_path)
    store = Store(f"file://{tmp_path}/store")
    _put(tmp_path / "gt", D0 + timedelta(hours=3), "l.jsonl",
         "".join(json.dumps({"inference_id": f"r{i}", "truth": i % 2}) + "\n" for i in range(50)))
    L.sync_labels(cfg, store, now=D0 + timedelta(days=1))
    manifest = tmp_path / "store/labels/m/arrivals/2026-10-01.json"
    broken = manifest.read_bytes()[:40]  # '{"day": "2026-10-01", "objects": {"/...'  -- Unterminated string
    manifest.write_bytes(broken)
    with caplog.at_level(logging.WARNING, logger="driftline.stages.labels"):
        out = L.sync_labels(cfg, store, now=D0 + timedelta(days=1, hours=1))
    assert "labels/m/arrivals/2026-10-01.json" in caplog.text and "is corrupt" in caplog.text
    assert out["days_ingested"] == ["2026-10-01"] and out["labels"] == 50
    assert "corrupt store file(s) set aside: labels/m/arrivals/2026-10-01.json -> labels/m/corrupt/" in out["summary"]
    [aside] = list((tmp_path / "store/labels/m/corrupt/arrivals").iterdir())
    assert aside.name.startswith("2026-10-01.json.") and aside.read_bytes() == broken
    assert json.loads(manifest.read_text())["labels"] == 50
    assert L.sync_labels(cfg, store, now=D0 + timedelta(days=1, hours=2))["days_ingested"] == []


def test_a_cut_arrivals_file_is_set_aside_and_the_day_read_again(make_config, tmp_path):
    cfg = _cfg(make_config, tmp_path)
    store = Store(f"file://{tmp_path}/store")
    ids = [f"r{i}" for i in range(40)]
    store.write_parquet("runs/m/2026-10-01T0000Z/batch.parquet", pa.table({
        "inference_id": ids, "inference_time": pa.array([D0] * 40, pa.timestamp("us", tz="UTC")),
        "pred": pa.array([1] * 40, pa.int64()), "proba": [0.9] * 40}))
    _put(tmp_path / "gt", D0 + timedelta(hours=3), "l.jsonl",
         "".join(json.dumps({"inference_id": i, "truth": 1}) + "\n" for i in ids))
    L.sync_labels(cfg, store, now=D0 + timedelta(days=1))
    arrivals = tmp_path / "store/labels/m/arrivals/2026-10-01.parquet"
    arrivals.write_bytes(arrivals.read_bytes()[:100])
    merged = L.merge_interval(cfg, store, D0, D1, as_of=D0 + timedelta(days=1))  # no exception
    assert merged.labelled == 0 and not arrivals.exists()
    assert sorted(p.name.split(".")[0] + "." + p.name.split(".")[1]
                  for p in (tmp_path / "store/labels/m/corrupt/arrivals").iterdir()) == [
        "2026-10-01.json", "2026-10-01.parquet"]
    assert L.sync_labels(cfg, store, now=D0 + timedelta(days=1, hours=1))["days_ingested"] == ["2026-10-01"]
    assert L.merge_interval(cfg, store, D0, D1, as_of=D0 + timedelta(days=2)).labelled == 40


# -- 9. the worst case through the real monitoring DAG ---------------------------------------------
@pytest.mark.e2e
def test_inf_and_a_truncated_gzip_through_the_monitoring_dag(tmp_path, monkeypatch, airflow_db):
    """dag.test() of the demo's first (clean) day with one inf in a captured feature and a
    truncated gzip object beside the day's objects: the run succeeds, its verdict is
    violations (the type error, the object not readable to its end), and no record is lost."""
    from driftline.config import default_monitors_dir, load_all
    from driftline.demo import generate_demo
    from driftline.stages.baseline import create_baseline
    from driftline_airflow.local_runs import get_dag, run_interval

    demo, store_url = f"file://{tmp_path}/demo", f"file://{tmp_path}/store"
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", demo)
    monkeypatch.setenv("DRIFTLINE_STORE_URL", store_url)
    manifest = generate_demo(demo, rows_per_hour=40, training_rows=6000)
    cfg = load_all(default_monitors_dir()).models["churn"]
    store = Store(store_url)
    create_baseline(cfg, store)
    start = datetime.fromisoformat(manifest["interval_starts"][0])
    hour_dir = tmp_path / "demo/capture/churn-endpoint/AllTraffic" / (start + timedelta(hours=10)).strftime("%Y/%m/%d/%H")
    [obj] = sorted(hour_dir.iterdir())[:1]
    lines = obj.read_text().splitlines()
    rec = json.loads(lines[0])
    fields = rec["captureData"]["endpointInput"]["data"].split(",")
    at = cfg.input_fields.index("monthly_charges")
    fields[at] = "inf"
    rec["captureData"]["endpointInput"]["data"] = ",".join(fields)
    lines[0] = json.dumps(rec)
    obj.write_text("\n".join(lines) + "\n")
    inf_id = rec["eventMetadata"].get("inferenceId") or rec["eventMetadata"]["eventId"]
    extra = []
    for i, ln in enumerate(lines[1:]):  # the object's other records again, new ids, in a gzip object cut short
        r = json.loads(ln)
        r["eventMetadata"]["eventId"] = f"gz-{i}"
        r["eventMetadata"].pop("inferenceId", None)
        extra.append(json.dumps(r))
    blob = gzip.compress(("\n".join(extra) + "\n").encode())
    cut = blob[: len(blob) // 2]
    (hour_dir / "zz-late.jsonl.gz").write_bytes(cut)
    readable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")

    dr = run_interval(get_dag("driftline_monitor_churn"), start, cfg.interval_end(start))
    assert str(dr.state).endswith("success"), dr.state
    prefix = Store.run_prefix("churn", start)
    run = store.read_json(f"{prefix}/run.json")
    assert run["status"] == "violations"
    assert {"quarantine_check", "data_type_check"} <= set(run["violation_checks"])
    ingest = store.read_json(f"{prefix}/ingest.json")
    day = manifest["interval_starts"][0][:10]
    valid, malformed = manifest["per_day"][day]["valid_records"], sum(1 for m in manifest["malformed"] if m["day"] == day)
    assert ingest["rows"] == valid + readable  # the inf record is kept, its value a type error
    assert ingest["records_seen"] == ingest["rows"] + ingest["quarantined"] == valid + malformed + readable + 1
    assert ingest["type_errors"] == {"monthly_charges": 1}
    assert [u["source"].rsplit("/", 1)[1] for u in ingest["unreadable_objects"]] == ["zz-late.jsonl.gz"]
    batch = store.read_parquet(f"{prefix}/batch.parquet")
    row = batch.filter(pa.compute.equal(batch.column("inference_id"), inf_id)).to_pylist()[0]
    assert row["monthly_charges"] is None and row[UNPARSED_PREFIX + "monthly_charges"] == "inf"
    report = store.read_bytes(f"{prefix}/report.html").decode()
    assert "1 object(s) could not be read to their end (zz-late.jsonl.gz)" in report and "truncated_object" in report


def test_an_implausible_capture_time_is_not_filed_in_another_era():
    """`inferenceTime: 12` is Unix second 12 (1970): not a capture time. It is unreadable, so the
    record is placed by its object's hour folder and counted, never silently moved to 1970."""
    from driftline.stages.ingest import _UNREADABLE, _instant

    assert _instant(12) is _UNREADABLE and _instant("12") is _UNREADABLE
    assert _instant("1970-01-01T00:00:12Z") is _UNREADABLE and _instant("2250-01-01T00:00:00Z") is _UNREADABLE
    assert _instant(1_790_000_000).year == 2026 and _instant("2026-10-04T10:00:00Z").hour == 10


def test_a_non_finite_number_reaching_a_store_file_names_the_file(tmp_path):
    from driftline.store import StoreError

    store = Store(f"file://{tmp_path}/store")
    with pytest.raises(StoreError, match=r"writing runs/m/k/drift\.json failed: Out of range float"):
        store.write_json("runs/m/k/drift.json", {"statistic": float("inf")})
