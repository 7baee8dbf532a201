"""The ingest stage: capture partitions of one interval -> normalised batch + quarantine."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from driftline.config import parse_model_config
from driftline.stages.ingest import UNPARSED_PREFIX, empty_batch, ingest_interval, read_interval
from driftline.store import Store, StoreError

T0 = datetime(2026, 10, 1, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 10, 1, 1, tzinfo=timezone.utc)
T2 = datetime(2026, 10, 1, 2, tzinfo=timezone.utc)
FIELDS = ["tenure_months", "monthly_charges", "contract", "paperless_billing", "signup_date"]
TS = pa.timestamp("us", tz="UTC")


def make_cfg(tmp_path: Path, fmt: str = "sagemaker_capture", **over):
    data = {
        "name": "churn",
        "problem_type": "binary_classification",
        "features": [
            {"name": "tenure_months", "type": "integer"},
            {"name": "monthly_charges", "type": "numeric"},
            {"name": "contract", "type": "categorical"},
            {"name": "paperless_billing", "type": "boolean"},
            {"name": "signup_date", "type": "datetime"},
        ],
        "prediction": {"label": "predicted_churn", "probability": "churn_probability", "threshold": 0.5},
        "capture": {"uri": "capture", "format": fmt},
        "baseline": {"training_data": "train.parquet"},
        "start_date": "2026-10-01",
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_model_config(data, "test.yaml", base_dir=tmp_path)


def part_dir(tmp_path: Path, hour: datetime) -> Path:
    d = tmp_path / "capture" / hour.strftime("%Y/%m/%d/%H")
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_lines(tmp_path: Path, hour: datetime, name: str, lines: list[str]) -> str:
    p = part_dir(tmp_path, hour) / name
    p.write_text("".join(ln + "\n" for ln in lines))
    return "file://" + str(p)


def payload(data, content_type="text/csv", encoding=None) -> dict:
    enc = encoding or ("JSON" if "json" in content_type else "CSV")
    if enc == "BASE64":
        data = base64.b64encode(data.encode()).decode()
    elif not isinstance(data, str):
        data = json.dumps(data)
    return {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": enc}


def sm(event_id, inp, out, when="2026-10-01T00:03:12Z", inference_id=None, **kw) -> str:
    """One SageMaker capture line. inp/out: CSV text or a payload() dict."""
    meta = {"eventId": event_id, "inferenceTime": when}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    i = inp if isinstance(inp, dict) else payload(inp)
    o = out if isinstance(out, dict) else {**payload(out), "mode": "OUTPUT"}
    return json.dumps({"captureData": {"endpointInput": i, "endpointOutput": o},
                       "eventMetadata": meta, "eventVersion": "0", **kw})


def by_id(batch: pa.Table, id_col="inference_id") -> dict[str, dict]:
    return {r[id_col]: r for r in batch.to_pylist()}


def assert_schema(cfg, batch: pa.Table, label_type=pa.int64()):
    types = dict(zip(batch.schema.names, batch.schema.types))
    assert batch.schema.names[:2] == [cfg.inference_id, "inference_time"]
    assert types[cfg.inference_id] == pa.string()
    assert types["inference_time"] == TS
    want = {"numeric": pa.float64(), "integer": pa.int64(), "categorical": pa.string(),
            "boolean": pa.bool_(), "datetime": TS}
    for f in cfg.features:
        if f.name in types:
            assert types[f.name] == want[f.type], f.name
    if cfg.prediction.label in types:
        assert types[cfg.prediction.label] == label_type
    if cfg.prediction.probability in types:
        assert types[cfg.prediction.probability] == pa.float64()
    for name, typ in types.items():
        if name.startswith(UNPARSED_PREFIX):
            assert typ == pa.string()


def assert_counts(res):
    assert res.records_seen == res.rows + len(res.quarantine)
    assert res.rows == res.batch.num_rows
    assert len(res.quarantine_kinds) == len(res.quarantine)


# -- formats -----------------------------------------------------------------------------------
def test_sagemaker_csv_payload(tmp_path):
    cfg = make_cfg(tmp_path)
    src = write_lines(tmp_path, T0, "a.jsonl", [
        sm("e1", "12,70.5,Month-to-month,true,2024-05-01", "0.73"),
        sm("e2", "3,20,Two year,No,2025-01-02T10:00:00Z", "0.2", when="2026-10-01T00:59:59Z"),
        sm("e3", "0,,One year,,", "0.5"),
    ])
    res = read_interval(cfg, T0, T1)
    assert res.objects_read == [src]
    assert (res.rows, res.records_seen, res.quarantine) == (3, 3, [])
    assert_schema(cfg, res.batch)
    assert res.batch.schema.names == ["inference_id", "inference_time", *FIELDS,
                                      "predicted_churn", "churn_probability"]
    rows = by_id(res.batch)
    assert rows["e1"]["tenure_months"] == 12 and rows["e1"]["monthly_charges"] == 70.5
    assert rows["e1"]["contract"] == "Month-to-month" and rows["e1"]["paperless_billing"] is True
    assert rows["e1"]["signup_date"] == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert rows["e1"]["inference_time"] == datetime(2026, 10, 1, 0, 3, 12, tzinfo=timezone.utc)
    assert rows["e1"]["churn_probability"] == 0.73 and rows["e1"]["predicted_churn"] == 1
    assert rows["e2"]["paperless_billing"] is False and rows["e2"]["predicted_churn"] == 0
    assert rows["e3"]["predicted_churn"] == 1  # 0.5 >= threshold
    # empty CSV fields are nulls, not type errors
    assert rows["e3"]["monthly_charges"] is None and rows["e3"]["paperless_billing"] is None
    assert rows["e3"]["signup_date"] is None
    assert res.type_errors == {} and res.missing_columns == [] and res.extra_columns == []


def test_sagemaker_json_payloads(tmp_path):
    cfg = make_cfg(tmp_path)
    obj = {"tenure_months": 5, "monthly_charges": 50.0, "contract": "One year",
           "paperless_billing": True, "signup_date": "2025-02-03"}
    j = "application/json"
    write_lines(tmp_path, T0, "a.jsonl", [
        sm("obj", payload(obj, j), payload(0.9, j)),
        sm("pos", payload([7, 1.5, "Two year", "yes", None], j), payload({"score": 0.1}, j)),
        sm("inst", payload({"instances": [obj, [8, 2.5, "x", 0, None]]}, j),
           payload({"predictions": [{"probability": 0.6}, {"predicted_label": 1, "score": 0.4}]}, j)),
        sm("feat", payload({"features": [9, 3.5, "y", "TRUE", "2025-01-01T00:00:00+02:00"]}, j),
           payload({"predicted_churn": 0, "churn_probability": 0.45}, j)),
        sm("csvin", "1,2,z,false,", payload([0.3], j)),
    ])
    res = read_interval(cfg, T0, T1)
    assert res.quarantine == [] and res.rows == 6
    assert_counts(res)
    assert_schema(cfg, res.batch)
    rows = by_id(res.batch)
    assert set(rows) == {"obj", "pos", "inst-0", "inst-1", "feat", "csvin"}
    assert rows["obj"]["tenure_months"] == 5 and rows["obj"]["churn_probability"] == 0.9
    assert rows["obj"]["predicted_churn"] == 1 and rows["obj"]["paperless_billing"] is True
    assert rows["pos"]["contract"] == "Two year" and rows["pos"]["paperless_billing"] is True
    assert rows["pos"]["churn_probability"] == 0.1 and rows["pos"]["predicted_churn"] == 0
    assert rows["inst-0"]["contract"] == "One year" and rows["inst-0"]["churn_probability"] == 0.6
    assert rows["inst-1"]["tenure_months"] == 8 and rows["inst-1"]["paperless_billing"] is False
    assert rows["inst-1"]["predicted_churn"] == 1 and rows["inst-1"]["churn_probability"] == 0.4
    assert rows["feat"]["paperless_billing"] is True and rows["feat"]["predicted_churn"] == 0
    assert rows["feat"]["signup_date"] == datetime(2024, 12, 31, 22, tzinfo=timezone.utc)
    assert rows["csvin"]["churn_probability"] == 0.3
    assert res.extra_columns == [] and res.type_errors == {}


def test_sagemaker_base64_payloads(tmp_path):
    cfg = make_cfg(tmp_path)
    write_lines(tmp_path, T0, "a.jsonl", [
        sm("b1", payload("4,10.5,One year,1,2025-03-04", "text/csv", "BASE64"),
           payload("0.81", "text/csv", "BASE64")),
        sm("b2", payload(json.dumps({"tenure_months": 2, "contract": "x"}), "application/json", "BASE64"),
           payload(json.dumps({"score": 0.05}), "application/json", "BASE64")),
    ])
    res = read_interval(cfg, T0, T1)
    assert res.quarantine == [] and res.rows == 2
    rows = by_id(res.batch)
    assert rows["b1"]["tenure_months"] == 4 and rows["b1"]["contract"] == "One year"
    assert rows["b1"]["paperless_billing"] is True and rows["b1"]["churn_probability"] == 0.81
    assert rows["b2"]["tenure_months"] == 2 and rows["b2"]["monthly_charges"] is None
    assert rows["b2"]["predicted_churn"] == 0


def test_multi_row_payload(tmp_path):
    cfg = make_cfg(tmp_path)
    write_lines(tmp_path, T0, "a.jsonl", [
        sm("ev1", "1,1,a,true,\n2,2,b,false,\n3,3,c,true,\n", "0.1\n0.6\n0.9"),
        sm("ev2", "4,4,d,1,\n5,5,e,0,", "0.2\n0.3", inference_id="req-9"),
        # one line of comma-separated scores (as some containers answer) is accepted too
        sm("ev3", "6,6,f,1,\n7,7,g,0,", "0.7,0.8"),
        # row 1 of 3 has a field too few: only that row is quarantined
        sm("ev4", "8,8,h,1,\n9,9,i\n10,10,j,0,", "0.1\n0.2\n0.3"),
    ])
    res = read_interval(cfg, T0, T1)
    rows = by_id(res.batch)
    assert set(rows) == {"ev1-0", "ev1-1", "ev1-2", "req-9-0", "req-9-1", "ev3-0", "ev3-1", "ev4-0", "ev4-2"}
    assert [rows[f"ev1-{i}"]["tenure_months"] for i in range(3)] == [1, 2, 3]
    assert [rows[f"ev1-{i}"]["predicted_churn"] for i in range(3)] == [0, 1, 1]
    assert rows["ev3-1"]["churn_probability"] == 0.8
    # records_seen counts rows: 4 lines hold 10 rows -> 9 accepted + 1 quarantined
    assert res.lines_read == 4 and res.records_seen == 10 and res.rows == 9
    assert_counts(res)
    (q,) = res.quarantine
    assert q["line"] == 4 and "payload row 1 of 3 (id ev4-1)" in q["reason"]
    assert "CSV payload has 3 fields, expected 5" in q["reason"]
    assert res.quarantine_kinds == ["csv_field_count"]


def test_jsonl_format(tmp_path):
    cfg = make_cfg(tmp_path, "jsonl", capture={"time_field": "ts"})
    write_lines(tmp_path, T0, "part-1.jsonl", [
        json.dumps({"inference_id": "j1", "ts": "2026-10-01T00:10:00Z", "tenure_months": 3, "monthly_charges": 9.5,
                    "contract": "x", "paperless_billing": "no", "signup_date": "2025-01-01",
                    "predicted_churn": 1, "churn_probability": 0.2}),
        json.dumps({"inference_id": 2, "tenure_months": "4", "churn_probability": 0.7, "channel": "web"}),
    ])
    res = read_interval(cfg, T0, T1)
    assert res.quarantine == [] and res.rows == 2
    assert_schema(cfg, res.batch)
    rows = by_id(res.batch)
    assert rows["j1"]["inference_time"] == datetime(2026, 10, 1, 0, 10, tzinfo=timezone.utc)
    assert rows["j1"]["predicted_churn"] == 1  # the given label wins over the threshold
    assert rows["2"]["inference_time"] == T0  # no time: the partition hour
    assert rows["2"]["tenure_months"] == 4 and rows["2"]["predicted_churn"] == 1
    assert rows["2"]["channel"] == "web" and res.extra_columns == ["channel"]
    assert res.batch.schema.field("channel").type == pa.string()


def test_csv_format(tmp_path):
    cfg = make_cfg(tmp_path, "csv")
    d = part_dir(tmp_path, T0)
    (d / "b.csv").write_text(
        "inference_id,inference_time,tenure_months,monthly_charges,contract,paperless_billing,signup_date,"
        "churn_probability,region\n"
        "c1,2026-10-01T00:01:00Z,1,2.5,\"Month, to month\",true,2025-01-01,0.9,eu\n"
        "c2,,n/a,,One year,,,0.1,us\n")
    (d / "a.csv").write_text("inference_id,tenure_months,churn_probability\nc0,7,\n")
    res = read_interval(cfg, T0, T1)
    assert [o.rsplit("/", 1)[1] for o in res.objects_read] == ["a.csv", "b.csv"]
    assert res.quarantine == [] and res.rows == 3
    assert_schema(cfg, res.batch)
    assert res.batch.column("inference_id").to_pylist() == ["c0", "c1", "c2"]
    rows = by_id(res.batch)
    assert rows["c1"]["contract"] == "Month, to month" and rows["c1"]["predicted_churn"] == 1
    assert rows["c2"]["inference_time"] == T0 and rows["c2"]["tenure_months"] is None
    assert rows["c2"][UNPARSED_PREFIX + "tenure_months"] == "n/a"
    assert rows["c0"]["churn_probability"] is None and rows["c0"]["predicted_churn"] is None
    assert res.type_errors == {"tenure_months": 1}
    assert res.extra_columns == ["region"]


def test_parquet_format(tmp_path):
    cfg = make_cfg(tmp_path, "parquet", capture={"time_field": "event_time"})
    d = part_dir(tmp_path, T0)
    pq.write_table(pa.table({
        "inference_id": ["p1", "p2"],
        "event_time": pa.array([datetime(2026, 10, 1, 0, 5), datetime(2026, 10, 1, 0, 6)], pa.timestamp("ms")),
        "tenure_months": pa.array([3, None], pa.int32()),
        "monthly_charges": [1.25, 2.0],
        "contract": pa.array(["a", "b"]).dictionary_encode(),
        "paperless_billing": [True, None],
        "signup_date": pa.array([datetime(2025, 1, 1, tzinfo=timezone.utc), None], TS),
        "churn_probability": [0.25, 0.75],
        "score_bucket": [1, 2],
    }), d / "part-0.parquet")
    (d / "_SUCCESS").write_text("")
    res = read_interval(cfg, T0, T1)
    assert len(res.objects_read) == 1 and res.quarantine == [] and res.rows == 2
    assert_schema(cfg, res.batch)
    rows = by_id(res.batch)
    assert rows["p1"]["inference_time"] == datetime(2026, 10, 1, 0, 5, tzinfo=timezone.utc)
    assert rows["p1"]["tenure_months"] == 3 and rows["p2"]["tenure_months"] is None
    assert rows["p1"]["contract"] == "a" and rows["p1"]["signup_date"] == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert [rows["p1"]["predicted_churn"], rows["p2"]["predicted_churn"]] == [0, 1]
    assert rows["p2"]["score_bucket"] == "2" and res.extra_columns == ["score_bucket"]


def test_label_types(tmp_path):
    multi = make_cfg(tmp_path, "jsonl", problem_type="multiclass_classification",
                     prediction={"label": "plan", "probability": None})
    write_lines(tmp_path, T0, "a.jsonl", [json.dumps({"inference_id": "1", "plan": "gold"}),
                                          json.dumps({"inference_id": "2", "plan": 3})])
    assert read_interval(multi, T0, T1).batch.schema.field("plan").type == pa.string()
    reg = make_cfg(tmp_path, "jsonl", problem_type="regression", prediction={"label": "ltv", "probability": None})
    write_lines(tmp_path, T0, "a.jsonl", [json.dumps({"inference_id": "1", "ltv": 12}),
                                          json.dumps({"inference_id": "2", "ltv": "?"})])
    res = read_interval(reg, T0, T1)
    assert res.batch.schema.field("ltv").type == pa.float64()
    # a prediction that is no number is no prediction: quarantined, never a null in the batch
    assert res.batch.column("ltv").to_pylist() == [12.0] and res.type_errors == {}
    assert res.quarantine_kinds == ["bad_prediction"] and "'?' is not a number" in res.quarantine[0]["reason"]
    ints = make_cfg(tmp_path, "jsonl", problem_type="multiclass_classification",
                    prediction={"label": "plan", "probability": None})
    write_lines(tmp_path, T0, "a.jsonl", [json.dumps({"inference_id": "1", "plan": "2"}),
                                          json.dumps({"inference_id": "2", "plan": 1.0})])
    assert read_interval(ints, T0, T1).batch.column("plan").to_pylist() == [2, 1]


# -- partitions ---------------------------------------------------------------------------
class SpyFS(LocalFileSystem):
    cachable = False

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.listed: list[str] = []

    def find(self, path, *a, **kw):
        self.listed.append(path)
        return super().find(path, *a, **kw)

    def ls(self, path, *a, **kw):
        self.listed.append(path)
        return super().ls(path, *a, **kw)


def test_only_the_interval_folders_are_listed_and_read(tmp_path):
    """An interval lists the hour folders it touches, plus those up to its end +
    capture.write_delay (5 minutes by default: objects are written a little after their
    records), never the whole tree; records are kept by capture time."""
    cfg = make_cfg(tmp_path, schedule="hourly")
    row = "1,1,a,true,"
    write_lines(tmp_path, datetime(2026, 9, 30, 23, tzinfo=timezone.utc), "x.jsonl",
                [sm("before", row, "0.1", when="2026-09-30T23:10:00Z")])
    write_lines(tmp_path, T0, "x.jsonl", [sm("h0", row, "0.1", when="2026-10-01T00:03:12Z")])
    write_lines(tmp_path, T1, "x.jsonl", [sm("h1", row, "0.1", when="2026-10-01T01:59:59Z")])
    # captured at 01:58, written at 02:01: in the next hour's folder
    write_lines(tmp_path, T2, "x.jsonl", [sm("h1-written-at-2", row, "0.1", when="2026-10-01T01:58:00Z"),
                                          sm("next-hour", row, "0.1", when="2026-10-01T02:01:00Z")])
    spy = SpyFS()
    root = str(tmp_path / "capture")

    res = read_interval(cfg, T0, T2, resolver=lambda url: (spy, url.removeprefix("file://")))
    assert sorted(res.batch.column("inference_id").to_pylist()) == ["h0", "h1", "h1-written-at-2"]
    assert res.outside == {"before": 0, "after": 1} and res.records_seen == 3
    # every listing call stays inside the interval's hourly prefixes (find() uses ls() inside)
    hours = (f"{root}/2026/10/01/00", f"{root}/2026/10/01/01", f"{root}/2026/10/01/02")
    assert spy.listed and all(p.rstrip("/").startswith(hours) for p in spy.listed), spy.listed
    assert {p for p in spy.listed if p in hours} == set(hours)
    assert res.partitions == ["2026/10/01/00", "2026/10/01/01", "2026/10/01/02"]
    # write_delay 0: the interval's own hours only; the record written late is the next
    # interval's to answer for (quarantined there as written_late, not lost)
    own = make_cfg(tmp_path, schedule="hourly", capture={"write_delay": 0})
    res = read_interval(own, T0, T2)
    assert res.partitions == ["2026/10/01/00", "2026/10/01/01"]
    assert sorted(res.batch.column("inference_id").to_pylist()) == ["h0", "h1"]
    nxt = read_interval(own, T2, T2 + (T1 - T0))
    assert nxt.batch.column("inference_id").to_pylist() == ["next-hour"]
    assert nxt.quarantine_kinds == ["written_late"] and "captured at 2026-10-01T01:58:00Z" in nxt.quarantine[0]["reason"]
    # naive datetimes are UTC; an interval not on the hour reads the folder it starts in
    res = read_interval(cfg, datetime(2026, 10, 1, 0, 30), datetime(2026, 10, 1, 3))
    assert sorted(res.batch.column("inference_id").to_pylist()) == ["h1", "h1-written-at-2", "next-hour"]
    assert res.partitions[0] == "2026/10/01/00" and res.outside == {"before": 1, "after": 0}


# -- quarantine -------------------------------------------------------------------------------
def test_malformed_records_are_quarantined(tmp_path):
    cfg = make_cfg(tmp_path)
    ok = "1,1,a,true,"
    good = sm("good", ok, "0.4")
    no_output = json.dumps({"captureData": {"endpointInput": payload(ok)}, "eventMetadata": {"eventId": "x1"}})
    no_data = json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "encoding": "CSV"},
                                          "endpointOutput": payload("0.1")}, "eventMetadata": {"eventId": "x2"}})
    bad_b64 = sm("x3", {"observedContentType": "text/csv", "mode": "INPUT", "data": "@@not base64@@",
                        "encoding": "BASE64"}, "0.1")
    lines = [
        good,                                                       # 1
        "{this is not json",                                        # 2 invalid_json
        "[1, 2, 3]",                                                # 3 not_object
        json.dumps({"eventMetadata": {"eventId": "x0"}}),           # 4 no captureData
        no_output,                                                  # 5 no endpointOutput
        no_data,                                                    # 6 no data
        bad_b64,                                                    # 7 bad_base64
        sm("x4", "1,1,a,true", "0.1"),                              # 8 4 fields, expected 5
        sm("x5", ok, "high"),                                       # 9 output not a number
        sm("x6", "1,1,a,true,\n2,2,b,false,", "0.1"),               # 10 row count mismatch
        sm("x7", ok, "1.5"),                                        # 11 probability > 1
        sm("", ok, "0.1"),                                          # 12 empty id
        sm("good", ok, "0.2"),                                      # 13 duplicate id
        sm("x8", payload("{nope", "application/json"), "0.1"),      # 14 bad JSON payload
        sm("x9", ok, ""),                                           # 15 empty output
        "",                                                         # 16 blank: skipped
        sm("x10", ok, payload({"foo": 1}, "application/json")),     # 17 no prediction keys
    ]
    src = write_lines(tmp_path, T0, "cap.jsonl", lines)
    res = read_interval(cfg, T0, T1)
    assert res.batch.column("inference_id").to_pylist() == ["good"]
    assert_counts(res)
    assert res.records_seen == 16 and res.lines_read == 16
    q = {e["line"]: (k, e) for k, e in zip(res.quarantine_kinds, res.quarantine)}
    expected = {
        2: ("invalid_json", "not valid JSON"),
        3: ("not_object", "not an object"),
        4: ("missing_field", "no captureData"),
        5: ("missing_field", "no endpointOutput"),
        6: ("missing_field", "endpointInput has no data"),
        7: ("bad_base64", "not valid BASE64"),
        8: ("csv_field_count", "CSV payload has 4 fields, expected 5 (tenure_months, monthly_charges, contract, "
                               "paperless_billing, signup_date)"),
        9: ("output_not_number", "churn_probability is 'high', not a number"),
        10: ("row_count_mismatch", "input payload has 2 rows but the output has 1"),
        11: ("probability_out_of_range", "churn_probability = 1.5 is outside [0, 1]"),
        12: ("missing_id", "no inference id"),
        13: ("duplicate_id", f"duplicate inference id 'good' (first seen in {src} line 1)"),
        14: ("bad_payload", "not valid JSON"),
        15: ("bad_output", "endpointOutput.data is empty"),
        17: ("bad_output", "none of the keys"),
    }
    assert sorted(q) == sorted(expected)
    for line, (kind, text) in expected.items():
        got_kind, entry = q[line]
        assert got_kind == kind, (line, entry)
        assert text in entry["reason"], (line, entry["reason"])
        assert entry["source"] == src
        assert entry["raw"] == lines[line - 1]  # the full original line
        assert set(entry) == {"source", "line", "reason", "raw"}


def test_quarantine_raw_is_not_truncated_and_invalid_utf8(tmp_path):
    cfg = make_cfg(tmp_path, "jsonl")
    long_line = json.dumps({"inference_id": "a", "churn_probability": 7, "pad": "x" * 20000})
    d = part_dir(tmp_path, T0)
    (d / "a.jsonl").write_bytes(long_line.encode() + b"\n\xff\xfe{\"inference_id\": 1}\n"
                                + json.dumps({"churn_probability": 0.5}).encode() + b"\n")
    res = read_interval(cfg, T0, T1)
    assert res.rows == 0 and res.records_seen == 3
    assert res.quarantine_kinds == ["probability_out_of_range", "invalid_utf8", "missing_id"]
    assert res.quarantine[0]["raw"] == long_line
    assert res.quarantine[1]["line"] == 2 and "\\xff" in res.quarantine[1]["raw"]
    assert res.quarantine[2]["line"] == 3


def test_tabular_row_errors_and_unreadable_files(tmp_path):
    cfg = make_cfg(tmp_path, "csv")
    d = part_dir(tmp_path, T0)
    (d / "a.csv").write_text("inference_id,tenure_months,churn_probability\n"
                             "r1,1,0.5\n"
                             "r2,2\n"
                             "r1,3,0.5\n"
                             "r3,4,-0.1\n"
                             ",5,0.2\n")
    (d / "b.csv").write_text("1,2,3\n4,5,6\n")                       # no header
    (d / "c.csv").write_bytes(b"inference_id\n\xff\xfe\n")           # not UTF-8
    res = read_interval(cfg, T0, T1)
    assert res.batch.column("inference_id").to_pylist() == ["r1"]
    assert_counts(res)
    assert res.quarantine_kinds == ["csv_field_count", "duplicate_id", "probability_out_of_range", "missing_id",
                                    "unreadable_file", "unreadable_file"]
    assert [e["line"] for e in res.quarantine] == [3, 4, 5, 6, None, None]
    assert res.quarantine[0]["raw"] == "r2,2"
    assert "CSV row has 2 fields, expected 3 (inference_id, tenure_months, churn_probability)" \
        in res.quarantine[0]["reason"]
    assert res.quarantine[4]["raw"] is None and "no header row" in res.quarantine[4]["reason"]
    assert res.quarantine[4]["source"].endswith("/b.csv")

    pcfg = make_cfg(tmp_path, "parquet")
    for f in d.iterdir():
        f.unlink()
    (d / "bad.parquet").write_bytes(b"PAR1 definitely not parquet")
    pq.write_table(pa.table({"inference_id": ["q1", "q2"], "churn_probability": [0.1, 2.0]}), d / "good.parquet")
    res = read_interval(pcfg, T0, T1)
    assert res.batch.column("inference_id").to_pylist() == ["q1"]
    assert_counts(res)
    assert res.quarantine_kinds == ["unreadable_file", "probability_out_of_range"]
    bad, oor = res.quarantine
    assert bad["source"].endswith("/bad.parquet") and bad["line"] is None and bad["raw"] is None
    assert "not a readable Parquet file" in bad["reason"]
    assert oor["line"] == 2 and json.loads(oor["raw"]) == {"inference_id": "q2", "churn_probability": 2.0}


# -- typing, missing and extra columns -----------------------------------------------------
def test_unparsable_values_become_null_with_sidecar(tmp_path):
    cfg = make_cfg(tmp_path)
    write_lines(tmp_path, T0, "a.jsonl", [
        sm("t1", "n/a,1.5,a,maybe,not-a-date", "0.1"),
        sm("t2", "2,abc,b,true,2025-01-01", "0.2"),
        sm("t3", "3.0,2,c,false,", "0.3", when="yesterday"),
    ])
    res = read_interval(cfg, T0, T1)
    assert res.quarantine == [] and res.rows == 3
    assert_schema(cfg, res.batch)
    assert res.type_errors == {"inference_time": 1, "tenure_months": 1, "monthly_charges": 1,
                               "paperless_billing": 1, "signup_date": 1}
    rows = by_id(res.batch)
    assert rows["t1"]["tenure_months"] is None and rows["t1"][UNPARSED_PREFIX + "tenure_months"] == "n/a"
    assert rows["t2"][UNPARSED_PREFIX + "tenure_months"] is None
    assert rows["t3"]["tenure_months"] == 3  # an integral float is an integer
    assert rows["t2"]["monthly_charges"] is None and rows["t2"][UNPARSED_PREFIX + "monthly_charges"] == "abc"
    assert rows["t1"][UNPARSED_PREFIX + "paperless_billing"] == "maybe"
    assert rows["t1"][UNPARSED_PREFIX + "signup_date"] == "not-a-date"
    assert rows["t3"]["inference_time"] is None and rows["t3"][UNPARSED_PREFIX + "inference_time"] == "yesterday"
    assert UNPARSED_PREFIX + "contract" not in res.batch.schema.names
    # only columns with an unreadable value get a sidecar
    clean = make_cfg(tmp_path)
    write_lines(tmp_path, T0, "a.jsonl", [sm("ok", "1,1,a,true,", "0.1")])
    assert not [n for n in read_interval(clean, T0, T1).batch.schema.names if n.startswith(UNPARSED_PREFIX)]


def test_missing_and_extra_columns(tmp_path):
    cfg = make_cfg(tmp_path)
    j = "application/json"
    write_lines(tmp_path, T0, "a.jsonl", [
        sm("m1", payload({"tenure_months": 1, "contract": "a", "paperless_billing": None, "signup_date": None,
                          "browser": "firefox"}, j), payload({"score": 0.2, "model_version": "v3"}, j)),
        sm("m2", payload({"tenure_months": 2, "contract": "b", "paperless_billing": True, "signup_date": None,
                          "inference_id": "client-side"}, j), payload(0.3, j)),
    ])
    res = read_interval(cfg, T0, T1)
    assert res.missing_columns == ["monthly_charges"]
    assert "monthly_charges" not in res.batch.schema.names
    assert res.extra_columns == ["browser", "model_version", "input_inference_id"]
    assert_schema(cfg, res.batch)
    rows = by_id(res.batch)
    assert rows["m1"]["browser"] == "firefox" and rows["m2"]["browser"] is None
    assert rows["m2"]["input_inference_id"] == "client-side"
    assert rows["m1"]["model_version"] == "v3"
    for c in res.extra_columns:
        assert res.batch.schema.field(c).type == pa.string()
    # present but always null is not missing
    assert res.batch.column("signup_date").null_count == 2


def test_empty_interval(tmp_path):
    cfg = make_cfg(tmp_path)
    res = read_interval(cfg, T0, T1)  # capture folder does not even exist yet
    assert (res.rows, res.records_seen, res.quarantine, res.objects_read) == (0, 0, [], [])
    assert res.batch.schema == empty_batch(cfg).schema
    assert res.batch.schema.names == ["inference_id", "inference_time", *FIELDS, "predicted_churn",
                                      "churn_probability"]
    assert_schema(cfg, res.batch)
    part_dir(tmp_path, T0)  # an empty partition
    store = Store("file://" + str(tmp_path / "store"))
    out = ingest_interval(cfg, store, T0, T1)
    assert out["rows"] == 0 and out["quarantined"] == 0 and out["objects_read"] == 0
    run = tmp_path / "store" / "runs" / "churn" / "2026-10-01T0000Z"
    assert (run / "quarantine.jsonl").read_text() == ""
    assert pq.read_table(run / "batch.parquet").schema == empty_batch(cfg).schema
    assert "no captured data" in json.loads((run / "ingest.json").read_text())["summary"]


# -- the stage -------------------------------------------------------------------------------
def test_ingest_interval_writes_and_rerun_replaces(tmp_path):
    cfg = make_cfg(tmp_path)
    write_lines(tmp_path, T0, "a.jsonl", [sm("a", "n/a,1,a,true,", "0.9"), "garbage", sm("a", "1,1,a,true,", "0.9")])
    store = Store("file://" + str(tmp_path / "store"))
    out = ingest_interval(cfg, store, T0, T1)
    assert json.loads(json.dumps(out)) == out  # plain JSON (an XCom)
    run = tmp_path / "store" / "runs" / "churn" / "2026-10-01T0000Z"
    assert out["batch_uri"] == store.uri("runs/churn/2026-10-01T0000Z/batch.parquet")
    assert out["quarantine_uri"].endswith("/quarantine.jsonl") and out["report_uri"].endswith("/ingest.json")
    assert (out["rows"], out["records_seen"], out["quarantined"]) == (1, 3, 2)
    assert out["type_errors"] == {"tenure_months": 1}
    assert out["summary"].startswith("ingest churn 2026-10-01T0000Z: 1 rows from 3 records in 1 objects")
    assert "2 quarantined (" in out["summary"]
    report = json.loads((run / "ingest.json").read_text())
    assert report["interval_start"] == "2026-10-01T00:00:00Z" and report["interval_end"] == "2026-10-01T01:00:00Z"
    assert report["objects_read"] == [f"file://{tmp_path}/capture/2026/10/01/00/a.jsonl"]
    assert report["quarantine_reasons"]["invalid_json"]["count"] == 1
    assert report["quarantine_reasons"]["duplicate_id"]["count"] == 1
    assert report["records_seen"] == report["rows"] + report["quarantined"]
    q = [json.loads(x) for x in (run / "quarantine.jsonl").read_text().splitlines()]
    assert [e["line"] for e in q] == [2, 3] and q[0]["raw"] == "garbage"
    batch = pq.read_table(run / "batch.parquet")
    assert batch.num_rows == 1 and batch.column(UNPARSED_PREFIX + "tenure_months").to_pylist() == ["n/a"]

    write_lines(tmp_path, T0, "a.jsonl", [sm("b", "1,1,a,true,", "0.1"), sm("c", "2,1,a,true,", "0.1")])
    out = ingest_interval(cfg, store, T0, T1)
    assert (out["rows"], out["quarantined"], out["type_errors"]) == (2, 0, {})
    assert (run / "quarantine.jsonl").read_text() == ""
    assert pq.read_table(run / "batch.parquet").column("inference_id").to_pylist() == ["b", "c"]
    assert json.loads((run / "ingest.json").read_text())["quarantined"] == 0
    assert sorted(p.name for p in run.iterdir()) == ["batch.parquet", "ingest.json", "quarantine.jsonl"]


def test_unreachable_capture_location(tmp_path):
    (tmp_path / "afile").write_text("x")
    cfg = make_cfg(tmp_path, capture={"uri": f"file://{tmp_path}/afile/capture"})
    with pytest.raises(StoreError, match=f"file://{tmp_path}/afile/capture"):
        read_interval(cfg, T0, T1)
    cfg = make_cfg(tmp_path, capture={"uri": "nosuchproto://bucket/capture"})
    with pytest.raises(StoreError, match="nosuchproto://bucket/capture"):
        read_interval(cfg, T0, T1)
    store = Store("file://" + str(tmp_path / "store"))
    with pytest.raises(StoreError, match="nosuchproto://bucket/capture"):
        ingest_interval(cfg, store, T0, T1)


def test_fast_path_matches_general_path(tmp_path, monkeypatch):
    """Plain single-row CSV records take a column-wise fast path; mixed with records that
    need the general one, the batch is the same as when everything takes the general path."""
    from driftline.stages import ingest

    cfg = make_cfg(tmp_path)
    j = "application/json"
    write_lines(tmp_path, T0, "a.jsonl", [
        sm("f1", "1,1.5,a,true,2025-01-01", "0.1"),
        sm("s1", "2,2.5,b,false,\n3,3.5,c,yes,", "0.2\n0.7"),
        sm("f2", "n/a,,c,maybe,", "0.9\n"),
        sm("s2", payload({"tenure_months": 4, "contract": "d", "browser": "x"}, j), payload({"score": 0.3}, j)),
        sm("f3", "5,5.5,e,no,2025-02-02T03:04:05Z", "0.55", inference_id="req-3"),
        sm("f1", "6,6.5,f,true,", "0.4"),  # duplicate: general path words the reason
    ])
    fast = read_interval(cfg, T0, T1)
    monkeypatch.setattr(ingest._SageMaker, "_fast", lambda *a, **kw: False)
    slow = read_interval(cfg, T0, T1)
    assert fast.batch.equals(slow.batch)
    assert fast.quarantine == slow.quarantine and len(fast.quarantine) == 1
    assert (fast.type_errors, fast.extra_columns) == (slow.type_errors, slow.extra_columns)
    assert fast.batch.column("inference_id").to_pylist() == ["f1", "s1-0", "s1-1", "f2", "s2", "req-3"]
    assert fast.batch.column("browser").to_pylist() == [None, None, None, None, "x", None]
    assert fast.type_errors == {"tenure_months": 1, "paperless_billing": 1}


@pytest.fixture
def s3(tmp_path):
    """moto's standalone S3 server on loopback with one bucket: (resolver, bucket)."""
    boto3 = pytest.importorskip("boto3")
    s3fs = pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "x", "aws_secret_access_key": "y", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, **creds)
    client.create_bucket(Bucket="capture-bucket")
    fs = s3fs.S3FileSystem(key="x", secret="y", endpoint_url=endpoint, skip_instance_cache=True)

    def resolver(url):
        return fs, fs._strip_protocol(url)

    try:
        yield resolver, client
    finally:
        server.stop()


@pytest.mark.s3
def test_s3_capture_location(tmp_path, s3):
    resolver, client = s3
    cfg = make_cfg(tmp_path, capture={"uri": "s3://capture-bucket/ep/AllTraffic"})
    for hour, eid in ((T0, "h0"), (T1, "h1"), (T2, "h2")):
        body = sm(eid, "1,1,a,true,", "0.5", when=f"{hour:%Y-%m-%dT%H}:10:00Z") + "\n" + "oops\n"
        client.put_object(Bucket="capture-bucket", Key=f"ep/AllTraffic/{hour:%Y/%m/%d/%H}/x.jsonl", Body=body)
    res = read_interval(cfg, T0, T2, resolver=resolver)
    assert res.batch.column("inference_id").to_pylist() == ["h0", "h1"]
    # the next hour's folder is read too (capture.write_delay): its records are the next interval's
    assert res.objects_read == ["s3://capture-bucket/ep/AllTraffic/2026/10/01/00/x.jsonl",
                                "s3://capture-bucket/ep/AllTraffic/2026/10/01/01/x.jsonl",
                                "s3://capture-bucket/ep/AllTraffic/2026/10/01/02/x.jsonl"]
    assert [(q["source"], q["line"]) for q in res.quarantine] == [(res.objects_read[0], 2), (res.objects_read[1], 2)]
    assert res.outside == {"before": 0, "after": 2}
    assert read_interval(cfg, T2.replace(day=2), T2.replace(day=3), resolver=resolver).rows == 0
    missing = make_cfg(tmp_path, capture={"uri": "s3://no-such-bucket/ep"})
    with pytest.raises(StoreError, match="s3://no-such-bucket/ep"):
        read_interval(missing, T0, T1, resolver=resolver)


# -- intervals: records by capture time ------------------------------------------------------
H10 = datetime(2026, 10, 1, 10, tzinfo=timezone.utc)


def _hour_of_capture(tmp_path) -> dict[str, str]:
    """One hour of SageMaker capture (10:00-11:00) with every kind of record a schedule must
    place, and its neighbours. Returns id -> the interval start (HH:MM) it belongs to."""
    row = "1,1,a,true,"
    own = {f"m{m:02d}": f"10:{m // 15 * 15:02d}" for m in range(60)}
    folder10 = [sm(f"m{m:02d}", row, "0.3", when=f"2026-10-01T10:{m:02d}:30Z") for m in range(60)]
    folder10 += [
        sm("notime", row, "0.3", when=None),                            # no capture time: its folder's hour
        sm("badtime", row, "0.3", when="soon"),                         # unreadable: its folder's hour too
        "{oops",                                                        # unreadable record: its folder's hour
        sm("bad-payload", row, "high", when="2026-10-01T10:20:00Z"),   # malformed, but its time is known
        sm("prev", row, "0.3", when="2026-10-01T09:59:50Z"),           # the previous interval's, written at 10:00
    ]
    write_lines(tmp_path, H10, "a.jsonl", folder10)
    write_lines(tmp_path, H10 + timedelta(hours=1), "b.jsonl", [
        sm("m59-late", row, "0.3", when="2026-10-01T10:59:50Z"),       # written at 11:00, within write_delay
        sm("very-late", row, "0.3", when="2026-10-01T10:05:00Z"),      # written nearly an hour after its time
        sm("n01", row, "0.3", when="2026-10-01T11:01:00Z"),            # the next hour's
    ])
    return own


def test_quarter_hour_intervals_read_exactly_their_records(tmp_path, monkeypatch):
    """A */15 model: the four intervals of one hour each get exactly the records captured in
    them (not the whole hour in the first and nothing in the others), and every record of the
    hour is counted once across the four: in one batch, or in one quarantine."""
    cfg = make_cfg(tmp_path, schedule="*/15 * * * *")
    own = _hour_of_capture(tmp_path)
    starts = [H10 + timedelta(minutes=15 * q) for q in range(4)]
    res = {s: read_interval(cfg, s, s + timedelta(minutes=15)) for s in starts}
    for s, r in res.items():
        assert_counts(r)
        want = {i for i, start in own.items() if start == f"{s:%H:%M}"}
        got = set(r.batch.column("inference_id").to_pylist())
        extra = {starts[0]: {"notime", "badtime"}, starts[3]: {"m59-late"}}.get(s, set())
        assert got == want | extra, s
        times = [t for t in r.batch.column("inference_time").to_pylist() if t is not None]
        assert all(s <= t < s + timedelta(minutes=15) for t in times), s
    first, second, third, fourth = (res[s] for s in starts)
    # no capture time: the hour folder's, counted; an unreadable one: a type error, counted
    rows = by_id(first.batch)
    assert rows["notime"]["inference_time"] == H10 and first.time_from_folder == 1
    assert rows["badtime"]["inference_time"] is None and rows["badtime"][UNPARSED_PREFIX + "inference_time"] == "soon"
    assert first.time_unreadable == 1 and first.type_errors == {"inference_time": 1}
    # malformed records are quarantined once, by the interval of their time (or folder hour)
    assert first.quarantine_kinds == ["invalid_json"] and second.quarantine_kinds == ["output_not_number"]
    assert third.quarantine == []
    # written an hour late, past the 10:00-10:15 interval's reach (its end + write_delay):
    # quarantined, with why, by the one interval that reads its folder first
    assert fourth.quarantine_kinds == ["written_late"]
    assert "captured at 2026-10-01T10:05:00Z" in fourth.quarantine[0]["reason"]
    assert "own interval's end 2026-10-01T10:15:00Z + capture.write_delay 0:05:00" in fourth.quarantine[0]["reason"]
    # the others' records are not quarantined but counted, by hand: 60 + 5 records in 10:00's
    # folder, and 11:00's folder read by the last quarter only (its end + 5 minutes)
    assert first.outside == {"before": 1, "after": 45 + 1}          # prev; m15-m59, bad-payload
    assert second.outside == {"before": 15 + 4, "after": 30}        # m00-m14, notime, badtime, {oops, prev
    assert third.outside == {"before": 30 + 5, "after": 15}
    assert fourth.outside == {"before": 45 + 5, "after": 1}         # ...; n01
    assert [r.partitions for r in (first, fourth)] == [["2026/10/01/10"], ["2026/10/01/10", "2026/10/01/11"]]
    # every record of the hour exactly once across the four intervals
    seen = [i for r in res.values() for i in r.batch.column("inference_id").to_pylist()]
    seen += [json.loads(q["raw"])["eventMetadata"]["eventId"] if q["raw"] != "{oops" else "{oops"
             for r in res.values() for q in r.quarantine]
    hour = set(own) | {"notime", "badtime", "{oops", "bad-payload", "m59-late", "very-late"}
    assert sorted(seen) == sorted(hour)
    # the summary says where the others went
    assert "records of other intervals left to them (19 before, 30 after)" in \
        ingest_interval(cfg, Store(f"file://{tmp_path}/store"), starts[1], starts[2])["summary"]
    # the column-wise fast path places records exactly as the general path does
    from driftline.stages import ingest

    monkeypatch.setattr(ingest._SageMaker, "_fast", lambda *a, **kw: False)
    slow = {s: read_interval(cfg, s, s + timedelta(minutes=15)) for s in starts}
    for s in starts:
        assert slow[s].batch.equals(res[s].batch) and slow[s].quarantine == res[s].quarantine
        assert (slow[s].outside, slow[s].time_from_folder) == (res[s].outside, res[s].time_from_folder)


def test_hourly_and_daily_models_read_what_they_did(tmp_path):
    """Records in their own hour's folder: an hourly model's interval gets its hour, a daily
    model's its 24 hours, as before; the folder after the interval (write_delay) adds only
    the records captured inside it."""
    row = "1,1,a,true,"
    day = datetime(2026, 10, 1, tzinfo=timezone.utc)
    for h in range(25):  # and the next day's first hour
        t = day + timedelta(hours=h)
        write_lines(tmp_path, t, "x.jsonl", [sm(f"r{h:02d}-{k}", row, "0.5", when=f"{t:%Y-%m-%dT%H}:{20 * k:02d}:00Z")
                                             for k in range(3)])
    hourly = make_cfg(tmp_path, schedule="hourly")
    for h in range(24):
        r = read_interval(hourly, day + timedelta(hours=h), day + timedelta(hours=h + 1))
        assert r.batch.column("inference_id").to_pylist() == [f"r{h:02d}-{k}" for k in range(3)]
        assert r.quarantine == [] and r.outside == {"before": 0, "after": 3}
    daily = make_cfg(tmp_path, schedule="daily")
    r = read_interval(daily, day, day + timedelta(days=1))
    assert r.batch.column("inference_id").to_pylist() == [f"r{h:02d}-{k}" for h in range(24) for k in range(3)]
    assert r.rows == r.records_seen == 72 and r.outside == {"before": 0, "after": 3} and len(r.partitions) == 25


def test_capture_time_formats_place_records(tmp_path):
    """The capture time of the tabular formats (capture.time_field): ISO 8601 with an offset,
    naive (UTC), Unix seconds, a Parquet timestamp; absent or unreadable: the folder's hour."""
    cfg = make_cfg(tmp_path, "jsonl", schedule="*/30 * * * *", capture={"time_field": "ts"})
    write_lines(tmp_path, H10, "a.jsonl", [json.dumps({"inference_id": i, "ts": ts, "churn_probability": 0.5})
                                           for i, ts in [("offset", "2026-10-01T12:40:00+02:00"),  # 10:40Z
                                                         ("naive", "2026-10-01 10:10:00"),
                                                         ("unix", H10.timestamp() + 35 * 60),
                                                         ("none", None), ("text", "half past ten")]])
    first = read_interval(cfg, H10, H10 + timedelta(minutes=30))
    second = read_interval(cfg, H10 + timedelta(minutes=30), H10 + timedelta(hours=1))
    assert sorted(first.batch.column("inference_id").to_pylist()) == ["naive", "none", "text"]
    assert sorted(second.batch.column("inference_id").to_pylist()) == ["offset", "unix"]
    assert by_id(second.batch)["unix"]["inference_time"] == H10 + timedelta(minutes=35)
    assert (first.time_from_folder, first.time_unreadable, first.type_errors) == (1, 1, {"inference_time": 1})


def test_write_delay_is_validated(tmp_path):
    from driftline.config import ConfigError

    assert make_cfg(tmp_path, capture={"write_delay": "10m"}).capture.write_delay == timedelta(minutes=10)
    assert make_cfg(tmp_path).capture.write_delay == timedelta(minutes=5)
    for bad in ("2h", "-5", "soon"):
        with pytest.raises(ConfigError, match="capture.write_delay"):
            make_cfg(tmp_path, capture={"write_delay": bad})


def test_the_capture_of_an_interval_is_complete_write_delay_after_its_end(tmp_path):
    """A scheduled run starts at the interval's end; objects of its last minutes are written
    up to capture.write_delay later: the DAG waits until then (test_dags checks its sensor)."""
    from driftline.pipeline.interval import capture_ready_at

    assert capture_ready_at(make_cfg(tmp_path, schedule="hourly"), T1) == T1 + timedelta(minutes=5)
    assert capture_ready_at(make_cfg(tmp_path, capture={"write_delay": "0s"}), T1) == T1
