"""Ground truth: labels ingested as they arrive, merged with each interval's predictions.

Labels land under ``<labels.uri>/YYYY/MM/DD/HH/``, partitioned by the hour they *arrive*
(SageMaker's ground-truth layout), keyed by the inference id. They come days after the
prediction, in any order, sometimes twice, sometimes for ids nobody predicted.

Ingestion (:func:`sync_labels`) works by arrival day. For each day it lists the day's
objects once; a day whose listing has not changed since it was ingested is skipped, and a
day ingested after it ended (plus :data:`SETTLE`) is settled and never listed again. A day's
labels become ``labels/<model>/arrivals/<YYYY-MM-DD>.parquet`` (id, label, arrival hour,
source, line) and its unreadable records ``labels/<model>/quarantine/<YYYY-MM-DD>.jsonl``,
each with its reason (QUARANTINE_KINDS). Re-ingesting a day replaces its files, so
ingestion is idempotent, and parallel runs write the same bytes.

Formats: SageMaker ground-truth JSONL (``groundTruthData.data`` -- CSV text, JSON, or BASE64
of either -- and ``eventMetadata.eventId``), plain JSONL, CSV with a header, and Parquet,
the last three with the id in ``labels.id_field`` (default: the model's ``inference_id``)
and the label in ``labels.column``. Gzip objects (``.gz``) are read too. Label values:
binary -- 0/1, true/false, yes/no (any case) or an integral 0.0/1.0; multiclass -- the text
of the class, integral numbers written without a fraction (``2.0`` is class ``2``);
regression -- a finite number. Anything else is quarantined as ``bad_label``.

Merging (:func:`merge_interval`): an interval's predictions (its ``batch.parquet``) are
joined with every label that has arrived so far -- by the ``as_of`` time, no matter in which
run -- within ``[interval start - labels.lookback, interval end + labels.horizon)``. When one id
has several labels the latest arrival wins (then the later object, then the later line) and
the overrides are counted. Coverage is labelled / predicted. The result carries a digest of
the matched (id, label) pairs, so a re-evaluation can tell whether anything changed.

Labels whose id matches no captured prediction (:func:`reconcile_unknown`) are quarantined
as ``unknown_id`` once that can be decided: when the predictions that could match (made in
``[arrival - horizon, arrival + lookback]``) have all been ingested.
"""
from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import json
import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftline.config import ModelConfig
from driftline.store import Resolver, Store, StoreError, as_utc, interval_key, parse_interval_key

#: A day's listing is final once it was taken this long after the day ended.
SETTLE = timedelta(hours=2)
TIMESTAMP = pa.timestamp("us", tz="UTC")

QUARANTINE_KINDS = {
    "invalid_json": "the line is not valid JSON",
    "invalid_utf8": "the line is not UTF-8 text",
    "not_object": "the record is not a JSON object",
    "missing_field": "groundTruthData / its data / eventMetadata is missing",
    "bad_base64": "a BASE64 label cannot be decoded",
    "missing_id": "no (or an empty) inference id",
    "bad_label": "the label cannot be read as the model's kind of label",
    "csv_field_count": "a CSV row has the wrong number of fields",
    "unreadable_file": "a whole object that cannot be read in the labels' format",
    "unknown_id": "no captured prediction has this inference id",
}

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}
_INTEGRAL = re.compile(r"^[+-]?\d+(?:\.0*)?$")


def labels_prefix(model: str) -> str:
    return posixpath.join("labels", model)


def label_type(problem_type: str) -> pa.DataType:
    return {"binary_classification": pa.int64(), "multiclass_classification": pa.string(),
            "regression": pa.float64()}[problem_type]


def parse_label(problem_type: str, raw: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, why) for one raw label."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "the label is empty"
    if isinstance(raw, (dict, list)):
        return None, f"the label is a JSON {type(raw).__name__}, not a value"
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw).strip()
    low = text.lower()
    if problem_type == "binary_classification":
        if low in _TRUE or (_INTEGRAL.match(low) and float(low) == 1.0):
            return 1, None
        if low in _FALSE or (_INTEGRAL.match(low) and float(low) == 0.0):
            return 0, None
        return None, f"{text[:80]!r} is not a binary label (0/1, true/false, yes/no)"
    if problem_type == "multiclass_classification":
        if _INTEGRAL.match(text):
            return str(int(float(text))) if abs(float(text)) < 2 ** 53 else text.split(".")[0], None
        return text, None
    try:
        value = float(text)
    except ValueError:
        return None, f"{text[:80]!r} is not a number (a regression label)"
    if not np.isfinite(value):
        return None, f"{text!r} is not a finite number"
    return value, None


def normalise_predictions(problem_type: str, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Predicted labels in the type labels are parsed to, so the two compare."""
    if problem_type == "regression":
        return pc.cast(values, pa.float64())
    if problem_type == "binary_classification":
        return pc.cast(values, pa.int64()) if not pa.types.is_string(values.type) else pa.array(
            [parse_label(problem_type, v)[0] for v in values.to_pylist()], pa.int64())
    return pa.array([None if v is None else parse_label(problem_type, v)[0] for v in values.to_pylist()], pa.string())


# -- reading label objects ---------------------------------------------------------------
class _Reader:
    """Rows (id, label, line) and quarantine entries of one day's objects."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.problem = cfg.problem_type
        self.id_field = cfg.label_id_field
        self.column = cfg.labels.column
        self.ids: list[str] = []
        self.values: list[Any] = []
        self.arrived: list[datetime] = []
        self.sources: list[str] = []
        self.lines: list[int] = []
        self.quarantine: list[dict] = []
        self.kinds: list[str] = []
        self.records = 0

    def reject(self, source: str, line: int | None, kind: str, reason: str, raw: Any) -> None:
        self.records += 1
        self.quarantine.append({"source": source, "line": line, "kind": kind, "reason": reason, "raw": raw})
        self.kinds.append(kind)

    def add(self, source: str, line: int, hour: datetime, rid: Any, raw_label: Any, raw: Any) -> None:
        rid = None if rid is None else str(rid).strip()
        if not rid:
            return self.reject(source, line, "missing_id", f"label record has no inference id "
                                                           f"({self.id_field!r} missing or empty)", raw)
        value, why = parse_label(self.problem, raw_label)
        if why:
            return self.reject(source, line, "bad_label", f"label for {rid!r}: {why}", raw)
        self.records += 1
        self.ids.append(rid)
        self.values.append(value)
        self.arrived.append(hour)
        self.sources.append(source)
        self.lines.append(line)

    # formats -----------------------------------------------------------------------------
    def _sagemaker_label(self, gt: Any) -> Any:
        if not isinstance(gt, dict) or "data" not in gt:
            raise ValueError("missing_field", "groundTruthData or its data is missing")
        data, enc = gt["data"], str(gt.get("encoding") or "CSV").upper()
        if enc == "BASE64":
            try:
                data = base64.b64decode(str(data), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
                raise ValueError("bad_base64", f"groundTruthData.data is not valid BASE64 text ({exc})") from None
            enc = "JSON" if data.strip()[:1] in ("{", "[") else "CSV"
        if enc == "JSON" and isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise ValueError("bad_label", f"groundTruthData.data {data[:80]!r} is not valid JSON") from None
        if isinstance(data, dict):
            for key in (self.column, "label", "groundTruthLabel"):
                if key in data:
                    return data[key]
            raise ValueError("bad_label", f"groundTruthData.data has no {self.column!r} or 'label' key")
        if isinstance(data, str) and "," in data:  # CSV: the first field is the label
            data = next(csv.reader([data]), [""])[0]
        return data

    def _records(self, source: str, data: bytes):
        """(line number, text, record) of the lines that are JSON objects; the others are
        quarantined."""
        for lineno, text in self._text_lines(source, data):
            try:
                rec = json.loads(text)
            except ValueError as exc:
                self.reject(source, lineno, "invalid_json", f"not valid JSON ({exc})", text)
                continue
            if not isinstance(rec, dict):
                self.reject(source, lineno, "not_object", f"record is a JSON {type(rec).__name__}", text)
                continue
            yield lineno, text, rec

    def sagemaker(self, source: str, data: bytes, hour: datetime) -> None:
        for lineno, text, rec in self._records(source, data):
            meta = rec.get("eventMetadata")
            if not isinstance(meta, dict):
                self.reject(source, lineno, "missing_field", "record has no eventMetadata", text)
                continue
            try:
                label = self._sagemaker_label(rec.get("groundTruthData"))
            except ValueError as exc:
                kind, reason = exc.args
                self.reject(source, lineno, kind, reason, text)
                continue
            self.add(source, lineno, hour, meta.get("eventId") or meta.get("inferenceId"), label, text)

    def jsonl(self, source: str, data: bytes, hour: datetime) -> None:
        for lineno, text, rec in self._records(source, data):
            self.add(source, lineno, hour, rec.get(self.id_field), rec.get(self.column), text)

    def csv(self, source: str, data: bytes, hour: datetime) -> None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return self.reject(source, None, "unreadable_file", f"CSV file is not UTF-8 text ({exc})", None)
        rows = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(rows, [])]
            if not header:
                return
            if self.id_field not in header or self.column not in header:
                return self.reject(source, 1, "unreadable_file", f"CSV header {header} lacks {self.id_field!r} "
                                                                 f"or {self.column!r}", None)
            i_id, i_label = header.index(self.id_field), header.index(self.column)
            for r in rows:
                if not r:
                    continue
                line = rows.line_num
                if len(r) != len(header):
                    self.reject(source, line, "csv_field_count",
                                f"CSV row has {len(r)} fields, expected {len(header)}", ",".join(r))
                    continue
                self.add(source, line, hour, r[i_id], r[i_label], ",".join(r))
        except csv.Error as exc:
            self.reject(source, None, "unreadable_file", f"not a readable CSV file ({exc})", None)

    def parquet(self, source: str, data: bytes, hour: datetime) -> None:
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - any decoding failure means the same
            return self.reject(source, None, "unreadable_file", f"not a readable Parquet file ({exc})", None)
        missing = [c for c in (self.id_field, self.column) if c not in table.column_names]
        if missing:
            return self.reject(source, None, "unreadable_file", f"Parquet file lacks columns {missing}", None)
        for i, (rid, label) in enumerate(zip(table.column(self.id_field).to_pylist(),
                                             table.column(self.column).to_pylist()), 1):
            self.add(source, i, hour, rid, label, {self.id_field: str(rid), self.column: str(label)})

    def _text_lines(self, source: str, data: bytes):
        for i, bline in enumerate(data.split(b"\n"), 1):
            try:
                text = bline.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                self.reject(source, i, "invalid_utf8", "line is not UTF-8 text",
                            bline.decode("utf-8", errors="backslashreplace"))
                continue
            if text.strip():
                yield i, text

    def read(self, source: str, data: bytes, hour: datetime) -> None:
        if source.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                return self.reject(source, None, "unreadable_file", f"not a readable gzip file ({exc})", None)
        fmt = self.cfg.labels.format
        {"sagemaker_ground_truth": self.sagemaker, "jsonl": self.jsonl, "csv": self.csv,
         "parquet": self.parquet}[fmt](source, data, hour)

    def table(self) -> pa.Table:
        return pa.table({
            "id": pa.array(self.ids, pa.string()),
            "label": pa.array(self.values, label_type(self.problem)),
            "arrived": pa.array(self.arrived, TIMESTAMP),
            "source": pa.array(self.sources, pa.string()),
            "line": pa.array(self.lines, pa.int64()),
        })


# -- ingestion by arrival day --------------------------------------------------------------
def _day_key(d: date) -> str:
    return d.isoformat()


def _hour_of(path: str, root: str) -> datetime | None:
    m = re.search(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/", path[len(root):] if path.startswith(root) else path)
    if not m:
        return None
    try:
        return datetime(*map(int, m.groups()), tzinfo=timezone.utc)
    except ValueError:
        return None


def _open(cfg: ModelConfig, resolver: Resolver | None):
    from driftline.ingest import _open_location  # the capture reader's checks

    return _open_location(cfg.labels.uri.rstrip("/"), resolver, what="labels location")


def _list_day(fs: Any, root: str, day: date, uri: str) -> dict[str, dict]:
    prefix = posixpath.join(root, day.strftime("%Y/%m/%d"))
    try:
        found = fs.find(prefix, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"labels location {uri}: listing {prefix} failed ({type(exc).__name__}: {exc})") from exc
    out = {}
    for path, info in sorted(found.items()):
        if posixpath.basename(path.rstrip("/")).startswith((".", "_")) or info.get("type") == "directory":
            continue
        stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        out[path] = {"size": int(info.get("size") or 0), "stamp": str(stamp)}
    return out


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def ingest_day(cfg: ModelConfig, store: Store, day: date, objects: dict[str, dict], fs: Any, root: str,
               now: datetime) -> dict:
    """Read one arrival day's objects and replace its arrivals/quarantine files."""
    from driftline.ingest import _fetch

    uri = cfg.labels.uri.rstrip("/")
    reader = _Reader(cfg)
    data = _fetch(fs, list(objects), uri, what="labels location")
    for path in objects:
        hour = _hour_of(path, root) or datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        source = f"{uri}/{path[len(root):].lstrip('/')}" if path.startswith(root) else path
        reader.read(source, data[path], hour)
    table = reader.table()
    base = labels_prefix(cfg.name)
    key = _day_key(day)
    store.write_parquet(posixpath.join(base, "arrivals", f"{key}.parquet"), table)
    text = "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in reader.quarantine)
    store.write_text(posixpath.join(base, "quarantine", f"{key}.jsonl"), text)
    dupes = table.num_rows - len(set(reader.ids))
    day_end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    manifest = {
        "day": key, "objects": objects, "records": reader.records, "labels": table.num_rows,
        "quarantined": len(reader.quarantine), "quarantine_reasons": dict(Counter(reader.kinds).most_common()),
        "duplicate_ids": dupes, "ingested_at": now.isoformat(), "settled": now >= day_end + SETTLE,
    }
    store.write_json(posixpath.join(base, "arrivals", f"{key}.json"), manifest)
    return manifest


def sync_labels(cfg: ModelConfig, store: Store, now: datetime | None = None, resolver: Resolver | None = None,
                since: datetime | None = None, force: bool = False) -> dict:
    """Ingest every arrival day from ``since`` (default: the model's start date minus
    labels.lookback) to ``now`` whose objects changed; returns a small summary. ``force``
    lists settled days again (after objects were added to an old partition by hand)."""
    if cfg.labels is None:
        return {"summary": f"{cfg.name} has no labels section", "days_ingested": [], "labels": 0}
    now = as_utc(now or datetime.now(timezone.utc))
    first = as_utc(since or (cfg.start_date - cfg.labels.lookback)).date()
    fs, root = _open(cfg, resolver)
    uri = cfg.labels.uri.rstrip("/")
    base = posixpath.join(labels_prefix(cfg.name), "arrivals")
    known = {n[:-5] for n in store.listdir(base) if n.endswith(".json")}
    ingested, quarantined, labels, listed = [], 0, 0, 0
    manifests = {k: store.read_json(posixpath.join(base, f"{k}.json")) for k in sorted(known)}
    listings: dict[date, dict[str, dict]] = {}
    for day in _days(first, now.date()):
        manifest = manifests.get(_day_key(day))
        if manifest and manifest.get("settled") and not force:
            continue
        listed += 1
        listings[day] = _list_day(fs, root, day, uri)
    # an empty day is only final once labels have arrived on a later day: before that, the
    # location may simply not be filled yet
    with_labels = [date.fromisoformat(k) for k, m in manifests.items() if m.get("objects")]
    with_labels += [d for d, objs in listings.items() if objs]
    last_with_labels = max(with_labels, default=None)
    for day, objects in listings.items():
        key = _day_key(day)
        manifest = manifests.get(key)
        day_end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
        past = now >= day_end + SETTLE
        if manifest is not None and manifest.get("objects") == objects:
            if past and not manifest.get("settled") and (objects or (last_with_labels and day < last_with_labels)):
                store.write_json(posixpath.join(base, f"{key}.json"), {**manifest, "settled": True})
            continue
        if not objects:
            if manifest is None and past and last_with_labels and day < last_with_labels:
                store.write_json(posixpath.join(base, f"{key}.json"), {
                    "day": key, "objects": {}, "records": 0, "labels": 0, "quarantined": 0,
                    "quarantine_reasons": {}, "duplicate_ids": 0, "ingested_at": now.isoformat(), "settled": True})
            if manifest is None:
                continue
        m = ingest_day(cfg, store, day, objects, fs, root, now)
        ingested.append(key)
        quarantined += m["quarantined"]
        labels += m["labels"]
    summary = (f"labels {cfg.name}: listed {listed} arrival day(s), ingested {len(ingested)}"
               + (f" ({', '.join(ingested[:5])}{', ...' if len(ingested) > 5 else ''})" if ingested else "")
               + f": {labels} labels, {quarantined} quarantined")
    return {"summary": summary, "days_ingested": ingested, "labels": labels, "quarantined": quarantined,
            "listed": listed}


def arrival_manifests(store: Store, model: str) -> dict[str, dict]:
    base = posixpath.join(labels_prefix(model), "arrivals")
    return {n[:-5]: store.read_json(posixpath.join(base, n)) for n in store.listdir(base) if n.endswith(".json")}


def read_arrivals(store: Store, model: str, first: date, last: date, problem_type: str,
                  columns: list[str] | None = None) -> pa.Table:
    """Every ingested label that arrived on a day in [first, last], in arrival order: days in
    order, and within a day the order ingestion wrote (objects by path, whose hour folders
    sort by time, then lines)."""
    base = posixpath.join(labels_prefix(model), "arrivals")
    have = set(store.listdir(base))
    schema = _arrivals_schema(problem_type)
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    tables = [store.read_parquet(posixpath.join(base, f"{_day_key(d)}.parquet"), columns=columns)
              for d in _days(first, last) if f"{_day_key(d)}.parquet" in have]
    tables = [t.cast(schema) for t in tables if t.num_rows]
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables)


def _arrivals_schema(problem_type: str) -> pa.Schema:
    return pa.schema([("id", pa.string()), ("label", label_type(problem_type)), ("arrived", TIMESTAMP),
                      ("source", pa.string()), ("line", pa.int64())])


# -- merging an interval -----------------------------------------------------------------
@dataclass
class Merge:
    table: pa.Table        # the interval's predictions + label + label_arrived (null when unlabelled)
    predicted: int
    labelled: int
    overrides: int         # labels of this interval's ids superseded by a later one
    latest_arrival: str | None
    digest: str            # of the matched (id, label) pairs
    window: tuple[str, str]
    as_of: str

    @property
    def coverage(self) -> float:
        return self.labelled / self.predicted if self.predicted else 0.0

    def state(self) -> dict:
        return {"predicted": self.predicted, "labelled": self.labelled, "coverage": self.coverage,
                "overrides": self.overrides, "latest_arrival": self.latest_arrival, "digest": self.digest,
                "window": list(self.window), "as_of": self.as_of}


def label_window(cfg: ModelConfig, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Arrival times [lo, hi) of the labels that may belong to the interval's predictions."""
    return as_utc(start) - cfg.labels.lookback, as_utc(end) + cfg.labels.horizon


def prediction_columns(cfg: ModelConfig, columns: list[str]) -> list[str]:
    """Columns of the batch the model-quality stage needs."""
    want = [cfg.inference_id, "inference_time", *cfg.prediction_columns, *cfg.performance.segments,
            *(f.feature for f in cfg.bias.facets)]
    if cfg.problem_type == "regression":  # direct loss estimation reads the features
        want += cfg.feature_names
    return [c for c in dict.fromkeys(want) if c in columns]


def read_predictions(cfg: ModelConfig, store: Store, start: datetime) -> pa.Table:
    """The columns of the interval's batch that model quality needs (prediction_columns)."""
    batch_rel = posixpath.join(Store.run_prefix(cfg.name, start), "batch.parquet")
    with store.fs.open(store.path(batch_rel), "rb") as f:
        names = pq.ParquetFile(f).schema_arrow.names
    return store.read_parquet(batch_rel, columns=prediction_columns(cfg, names))


def merge_interval(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                   as_of: datetime | None = None) -> Merge:
    """The interval's predictions joined with every label arrived by ``as_of`` (see module doc)."""
    as_of = as_utc(as_of or datetime.now(timezone.utc))
    preds = read_predictions(cfg, store, start)
    lo, hi = label_window(cfg, start, end)
    hi = min(hi, as_of + timedelta(microseconds=1))
    labels = read_arrivals(store, cfg.name, lo.date(), (hi - timedelta(microseconds=1)).date(), cfg.problem_type,
                           columns=["id", "label", "arrived"])
    arrived = labels.column("arrived")
    keep = pc.and_(pc.greater_equal(arrived, pa.scalar(lo, TIMESTAMP)), pc.less(arrived, pa.scalar(hi, TIMESTAMP)))
    labels = labels.filter(keep)
    ids = preds.column(cfg.inference_id)
    mine = labels.filter(pc.is_in(labels.column("id"), value_set=ids.combine_chunks() if preds.num_rows else
                                  pa.array([], pa.string())))
    # latest wins: the arrivals are in arrival order (read_arrivals), so the last of an id
    n_matched = mine.num_rows
    schema = pa.schema([("id", pa.string()), ("label", label_type(cfg.problem_type)), ("arrived", TIMESTAMP)])
    if n_matched:
        df = mine.to_pandas().drop_duplicates("id", keep="last")
        latest = pa.Table.from_pandas(df, preserve_index=False).cast(schema)
    else:
        latest = schema.empty_table()
    label_col = cfg.labels.column
    # the join does not keep row order: a row number puts the batch's order back
    numbered = preds.append_column("__row", pa.array(np.arange(preds.num_rows, dtype="int64")))
    joined = numbered.join(latest.rename_columns(["__id", label_col, "label_arrived"]), keys=cfg.inference_id,
                           right_keys="__id", join_type="left outer")
    joined = joined.sort_by("__row").drop_columns(["__row"])
    digest = _digest(latest)
    last = pc.max(latest.column("arrived")).as_py() if latest.num_rows else None
    return Merge(table=joined, predicted=preds.num_rows, labelled=latest.num_rows,
                 overrides=n_matched - latest.num_rows, latest_arrival=last.isoformat() if last else None,
                 digest=digest, window=(lo.isoformat(), hi.isoformat()), as_of=as_of.isoformat())


def _digest(latest: pa.Table) -> str:
    """A fingerprint of the matched (id, label) pairs, whatever their order: the pairs sorted
    by id, as text, hashed from Arrow's buffers (no Python objects per row)."""
    h = hashlib.sha256()
    if latest.num_rows:
        t = latest.take(pc.sort_indices(latest, sort_keys=[("id", "ascending")]))
        pairs = pc.binary_join_element_wise(t.column("id"), pc.cast(t.column("label"), pa.string()), "\t")
        arr = pc.fill_null(pairs, "").combine_chunks()
        # the same pairs hash the same however Arrow chunked or sliced them
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
        h.update((offsets - offsets[0]).astype("<i8").tobytes())
        h.update(memoryview(arr.buffers()[2])[int(offsets[0]):int(offsets[-1])])
    return h.hexdigest()[:16]


# -- labels nobody predicted ---------------------------------------------------------------
def interval_starts(store: Store, model: str) -> list[datetime]:
    """Starts of the intervals that have an ingested batch."""
    out = []
    for name in store.listdir(posixpath.join("runs", model)):
        try:
            start = parse_interval_key(name)
        except ValueError:
            continue
        if store.exists(posixpath.join("runs", model, name, "batch.parquet")):
            out.append(start)
    return sorted(out)


def reconcile_unknown(cfg: ModelConfig, store: Store, now: datetime | None = None) -> dict:
    """Quarantine, per arrival day, the labels whose id no captured prediction has, for the
    days where that can be decided (every interval that could hold their prediction has
    been ingested). Idempotent: a day is redone when its labels or the intervals change."""
    now = as_utc(now or datetime.now(timezone.utc))
    starts = interval_starts(store, cfg.name)
    if not starts:
        return {"days": 0, "unknown": 0, "summary": "no ingested intervals yet"}
    last_end = cfg.interval_end(starts[-1])
    base = labels_prefix(cfg.name)
    manifests = arrival_manifests(store, cfg.name)
    days_done, unknown_total = 0, 0
    id_cache: dict[datetime, set[str]] = {}
    for key, manifest in sorted(manifests.items()):
        day = date.fromisoformat(key)
        day_start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        day_end = day_start + timedelta(days=1)
        if not manifest.get("labels") or day_end + cfg.labels.lookback > min(now, last_end):
            continue
        window = [s for s in starts if cfg.interval_end(s) > day_start - cfg.labels.horizon
                  and s < day_end + cfg.labels.lookback]
        state_rel = posixpath.join(base, "unknown", f"{key}.json")
        stamp = {"ingested_at": manifest.get("ingested_at"), "intervals": [interval_key(s) for s in window]}
        if store.exists(state_rel) and {k: v for k, v in store.read_json(state_rel).items() if k in stamp} == stamp:
            unknown_total += store.read_json(state_rel).get("unknown", 0)
            continue
        known: set[str] = set()
        for s in window:
            if s not in id_cache:
                id_cache[s] = set(store.read_parquet(posixpath.join(Store.run_prefix(cfg.name, s), "batch.parquet"),
                                                     columns=[cfg.inference_id]).column(0).to_pylist())
            known |= id_cache[s]
        table = store.read_parquet(posixpath.join(base, "arrivals", f"{key}.parquet"))
        rows = [r for r in table.select(["id", "label", "source", "line"]).to_pylist() if r["id"] not in known]
        lo = window[0].isoformat() if window else None
        hi = interval_key(window[-1]) if window else None
        entries = [{"source": r["source"], "line": r["line"], "kind": "unknown_id", "id": r["id"],
                    "label": r["label"],
                    "reason": (f"no captured prediction has inference id {r['id']!r} (searched "
                               f"{len(window)} interval(s) {interval_key(window[0]) if window else '-'}..{hi})")}
                   for r in rows]
        store.write_text(posixpath.join(base, "quarantine", f"{key}.unknown.jsonl"),
                         "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in entries))
        store.write_json(state_rel, {**stamp, "unknown": len(entries), "decided_at": now.isoformat(), "from": lo})
        days_done += 1
        unknown_total += len(entries)
    return {"days": days_done, "unknown": unknown_total,
            "summary": f"unknown ids: {unknown_total} label(s) match no captured prediction"
                       + (f" ({days_done} day(s) decided now)" if days_done else "")}
