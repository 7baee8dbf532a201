"""Ground truth: labels ingested as they arrive, merged with each interval's predictions.

Labels land under ``<labels.uri>/YYYY/MM/DD/HH/``, partitioned by the hour they *arrive*
(SageMaker's ground-truth layout), keyed by the inference id. They come days after the
prediction, in any order, sometimes twice, sometimes for ids nobody predicted.

Ingestion (:func:`sync_labels`) tracks objects, grouped by arrival day: each sync lists the
location once (recursively), and a day is read again whenever its objects changed since it
was ingested (an object added, replaced -- another size or ETag/mtime -- or removed), however
long ago the day ended, so labels that land late in an old partition are picked up by the next
sync; a day whose objects did not change is not read again. A day's
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
regression -- a finite number (:func:`driftline.stages.ingest.parse_label`, which reads predictions
too). Anything else is quarantined as ``bad_label``. The capture reader's bounds hold here too
(``too_deep``, ``line_too_long``, ``value_too_long``), and an object that breaks off (a cut
gzip stream) keeps the labels before the break, the rest one ``truncated_object`` entry;
such objects are listed in the day's manifest (``unreadable_objects``) and the sync's summary.

Store files: a manifest or arrivals file that cannot be read (truncated, not JSON, not
Parquet) is moved to ``labels/<model>/corrupt/`` with a warning naming it, and its day is
ingested again from its objects: one broken file never stops the later syncs.

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
import hashlib
import io
import json
import logging
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

from driftline.common.limits import MAX_LINE_CHARS, MAX_VALUE_CHARS, TEXT_CHARS, TooDeep, shown, too_long
from driftline.common.limits import loads as bounded_loads
from driftline.config import ModelConfig

# one reader serves every input: the capture reader's rules for labels, objects and bounds
from driftline.stages.ingest import (
    UNKNOWN_EXTENT_KINDS,
    gunzip,
    parse_label,
    row_groups,
    truncation_reason,
    wide_csv_fields,
)
from driftline.store import Resolver, Store, StoreError, as_utc, interval_key, parse_interval_key

log = logging.getLogger(__name__)

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
    "unreadable_file": "a whole object that cannot be read in the labels' format (its record count is unknown)",
    "truncated_object": ("an object readable only up to a point (a cut or corrupt gzip stream): the labels before "
                         "it are kept, the rest is one entry (its record count is unknown)"),
    "unreadable_part": "a Parquet row group that cannot be read; the entry counts its records",
    "too_deep": "the record nests JSON deeper than MAX_JSON_DEPTH levels",
    "line_too_long": "the line is longer than MAX_LINE_CHARS characters",
    "value_too_long": "the id or the label is longer than MAX_VALUE_CHARS characters",
    "unknown_id": "no captured prediction has this inference id",
}

def labels_prefix(model: str) -> str:
    return posixpath.join("labels", model)


def label_type(problem_type: str) -> pa.DataType:
    return {"binary_classification": pa.int64(), "multiclass_classification": pa.string(),
            "regression": pa.float64()}[problem_type]


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
        self.quarantined = 0  # records (an entry may stand for several: "records")

    def reject(self, source: str, line: int | None, kind: str, reason: str, raw: Any, records: int = 1) -> None:
        self.records += records
        self.quarantined += records
        if isinstance(raw, str) and len(raw) > MAX_VALUE_CHARS:
            raw = shown(raw, MAX_VALUE_CHARS)
        entry = {"source": source, "line": line, "kind": kind, "reason": shown(reason, TEXT_CHARS), "raw": raw}
        if records != 1:
            entry["records"] = records
        self.quarantine.append(entry)
        self.kinds.append(kind)

    def add(self, source: str, line: int, hour: datetime, rid: Any, raw_label: Any, raw: Any) -> None:
        rid = None if rid is None else str(rid).strip()
        for name, v in (("the inference id", rid), ("the label", raw_label)):
            if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
                return self.reject(source, line, "value_too_long", too_long(v, name), raw)
        if not rid:
            return self.reject(source, line, "missing_id", f"label record has no inference id "
                                                           f"({self.id_field!r} missing or empty)", raw)
        value, why = parse_label(self.problem, raw_label)
        if why:
            return self.reject(source, line, "bad_label", f"label for {shown(repr(rid))}: {why}", raw)
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
                data = bounded_loads(data)
            except TooDeep as exc:
                raise ValueError("too_deep", f"groundTruthData.data: {exc}") from None
            except ValueError:
                raise ValueError("bad_label", f"groundTruthData.data {shown(data, 80)!r} is not valid JSON") from None
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
                rec = bounded_loads(text)
            except TooDeep as exc:
                self.reject(source, lineno, "too_deep", f"not read: {exc}", text)
                continue
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
        wide_csv_fields()  # a long field is a long value, not an unreadable file
        rows = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(rows, [])]
            if not header:
                return
            if self.id_field not in header or self.column not in header:
                return self.reject(source, 1, "unreadable_file", f"CSV header {shown(str(header))} lacks "
                                                                 f"{self.id_field!r} or {self.column!r}", None)
            i_id, i_label = header.index(self.id_field), header.index(self.column)
            for r in rows:
                if not r:
                    continue
                line = rows.line_num
                raw = ",".join(r)
                if len(raw) > MAX_LINE_CHARS:
                    self.reject(source, line, "line_too_long", too_long(raw, "the row", MAX_LINE_CHARS), raw)
                    continue
                if len(r) != len(header):
                    self.reject(source, line, "csv_field_count",
                                f"CSV row has {len(r)} fields, expected {len(header)}", raw)
                    continue
                self.add(source, line, hour, r[i_id], r[i_label], raw)
        except csv.Error as exc:
            self.reject(source, None, "unreadable_file", f"not a readable CSV file ({exc})", None)

    def parquet(self, source: str, data: bytes, hour: datetime) -> None:
        try:
            pf = pq.ParquetFile(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - any decoding failure means the same (a cut file has no footer)
            return self.reject(source, None, "unreadable_file", f"not a readable Parquet file ({exc})", None)
        missing = [c for c in (self.id_field, self.column) if c not in pf.schema_arrow.names]
        if missing:
            return self.reject(source, None, "unreadable_file", f"Parquet file lacks columns {missing}", None)
        for first, n, table, why in row_groups(pf, columns=[self.id_field, self.column]):
            if table is None:  # a corrupt page: this group's labels, counted, are lost
                self.reject(source, first + 1, "unreadable_part", why, None, records=n)
                continue
            for i, (rid, label) in enumerate(zip(table.column(self.id_field).to_pylist(),
                                                 table.column(self.column).to_pylist()), first + 1):
                self.add(source, i, hour, rid, label,
                         {self.id_field: shown(str(rid), MAX_VALUE_CHARS), self.column: shown(str(label), MAX_VALUE_CHARS)})

    def _text_lines(self, source: str, data: bytes):
        for i, bline in enumerate(data.split(b"\n"), 1):
            try:
                text = bline.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                self.reject(source, i, "invalid_utf8", "line is not UTF-8 text",
                            bline.decode("utf-8", errors="backslashreplace"))
                continue
            if len(text) > MAX_LINE_CHARS:
                self.reject(source, i, "line_too_long", f"not read: {too_long(text, 'the line', MAX_LINE_CHARS)}", text)
                continue
            if text.strip():
                yield i, text

    def read(self, source: str, data: bytes, hour: datetime) -> None:
        fmt = self.cfg.labels.format
        cut, tail = None, b""
        if source.endswith(".gz"):
            data, cut = gunzip(data)
            if cut is not None and (fmt == "parquet" or not data.strip()):
                return self.reject(source, None, "unreadable_file", f"not a readable gzip file: {cut.why} at "
                                                                    f"compressed byte {cut.at:,} of {cut.size:,}", None)
            if cut is not None:  # keep the lines before the break; the cut line is part of the rest
                end = data.rfind(b"\n") + 1
                data, tail = data[:end], data[end:]
        before = self.records
        {"sagemaker_ground_truth": self.sagemaker, "jsonl": self.jsonl, "csv": self.csv,
         "parquet": self.parquet}[fmt](source, data, hour)
        if cut is not None:
            line = data.count(b"\n") + 1
            self.reject(source, line, "truncated_object", truncation_reason(cut, self.records - before, line),
                        tail.decode("utf-8", errors="backslashreplace") or None)

    def unreadable_objects(self) -> list[dict]:
        return [{"source": e["source"], "kind": e["kind"], "line": e["line"], "reason": e["reason"]}
                for e in self.quarantine if e["kind"] in UNKNOWN_EXTENT_KINDS]

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


def _day_of(path: str, root: str) -> date | None:
    """The arrival day of an object from its ``YYYY/MM/DD/`` folders under the root."""
    m = re.match(r"/?(\d{4})/(\d{2})/(\d{2})/", path[len(root):] if path.startswith(root) else path)
    if not m:
        return None
    try:
        return date(*map(int, m.groups()))
    except ValueError:
        return None


def _open(cfg: ModelConfig, resolver: Resolver | None):
    from driftline.stages.ingest import _open_location  # the capture reader's checks

    return _open_location(cfg.labels.uri.rstrip("/"), resolver, what="labels location")


def list_objects(fs: Any, root: str, uri: str, first: date, last: date) -> dict[date, dict[str, dict]]:
    """Every label object of the arrival days [first, last], by day: ``{path: {size, stamp}}``
    (stamp: the ETag, else the modification time). One recursive listing of the location
    (an object store pages it, 1000 keys a request), so an object written late into a day
    long past is seen like any other."""
    try:
        found = fs.find(root, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"labels location {uri}: listing {root} failed ({type(exc).__name__}: {exc})") from exc
    out: dict[date, dict[str, dict]] = {}
    for path, info in sorted(found.items()):
        if posixpath.basename(path.rstrip("/")).startswith((".", "_")) or info.get("type") == "directory":
            continue
        day = _day_of(path, root)
        if day is None or not first <= day <= last:
            continue
        stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        out.setdefault(day, {})[path] = {"size": int(info.get("size") or 0), "stamp": str(stamp)}
    return out


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- store files that cannot be read -------------------------------------------------------------
def set_aside(store: Store, model: str, rel: str, why: Any) -> str:
    """Move a corrupt store file of the model's labels (a truncated manifest, a cut Parquet
    file) to ``labels/<model>/corrupt/<its path>.<UTC time>`` and warn, naming both: it can
    be looked at later, and it no longer stops every sync. What it held is derived from the
    label objects, so the next sync ingests its day again. Returns where it went."""
    base = labels_prefix(model)
    sub = rel[len(base) + 1:] if rel.startswith(base + "/") else rel
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = posixpath.join(base, "corrupt", f"{sub}.{stamp}")
    try:
        store.write_bytes(dest, store.read_bytes(rel))
    except StoreError:  # unreadable even as bytes: it goes all the same
        dest = f"(not copied) {dest}"
    store.delete(rel)
    log.warning("labels store file %s is corrupt (%s): moved to %s; its arrival day is ingested again by the "
                "next sync", store.uri(rel), shown(str(why)), dest)
    return dest


def _corrupt_parquet(exc: StoreError) -> bool:
    """A read that failed on the file's bytes (not on reaching the store)."""
    return isinstance(exc.__cause__, (pa.ArrowInvalid, OSError)) and not isinstance(
        exc.__cause__, (FileNotFoundError, PermissionError, ConnectionError, TimeoutError))


def _read_manifest(store: Store, model: str, rel: str, aside: list[str]) -> dict | None:
    """A day's manifest, or None (set aside, the day to be ingested again) when it is not
    readable JSON."""
    try:
        doc = store.read_json(rel)
    except ValueError as exc:  # json's errors and undecodable bytes; a store that fails raises StoreError
        aside.append(f"{rel} -> {set_aside(store, model, rel, exc)}")
        return None
    if not isinstance(doc, dict):
        aside.append(f"{rel} -> {set_aside(store, model, rel, 'not a JSON object')}")
        return None
    return doc


def _forget_day(store: Store, model: str, key: str, why: Any, aside: list[str]) -> None:
    """A day whose arrivals file is corrupt: set it and its manifest aside, so the next sync
    ingests the day again from its objects."""
    base = posixpath.join(labels_prefix(model), "arrivals")
    for name in (f"{key}.parquet", f"{key}.json"):
        rel = posixpath.join(base, name)
        if store.exists(rel):
            aside.append(f"{rel} -> {set_aside(store, model, rel, why)}")


def ingest_day(cfg: ModelConfig, store: Store, day: date, objects: dict[str, dict], fs: Any, root: str,
               now: datetime) -> dict:
    """Read one arrival day's objects and replace its arrivals/quarantine files."""
    from driftline.stages.ingest import _fetch

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
    reasons: Counter = Counter()
    for e in reader.quarantine:
        reasons[e["kind"]] += e.get("records", 1)
    manifest = {
        "day": key, "objects": objects, "records": reader.records, "labels": table.num_rows,
        "quarantined": reader.quarantined, "quarantine_reasons": dict(reasons.most_common()),
        "unreadable_objects": reader.unreadable_objects(),
        "duplicate_ids": dupes, "ingested_at": now.isoformat(),
    }
    # the manifest last: a sync that stops before it ingests the day again
    store.write_json(posixpath.join(base, "arrivals", f"{key}.json"), manifest)
    return manifest


def sync_labels(cfg: ModelConfig, store: Store, now: datetime | None = None, resolver: Resolver | None = None,
                since: datetime | None = None, force: bool = False) -> dict:
    """Ingest every arrival day from ``since`` (default: the model's start date minus
    labels.lookback) to ``now`` whose objects changed (one added, replaced -- another size or
    ETag/mtime -- or removed), however long ago the day ended; returns a small summary.
    ``force`` reads every day with objects again, changed or not. A manifest that is not
    readable is set aside (``labels/<model>/corrupt/``, named in the summary) and its day
    ingested again."""
    if cfg.labels is None:
        return {"summary": f"{cfg.name} has no labels section", "days_ingested": [], "labels": 0}
    now = as_utc(now or datetime.now(timezone.utc))
    first = as_utc(since or (cfg.start_date - cfg.labels.lookback)).date()
    fs, root = _open(cfg, resolver)
    uri = cfg.labels.uri.rstrip("/")
    base = posixpath.join(labels_prefix(cfg.name), "arrivals")
    aside: list[str] = []
    manifests = {}
    for name in store.listdir(base):
        if name.endswith(".json"):
            doc = _read_manifest(store, cfg.name, posixpath.join(base, name), aside)
            if doc is not None:
                manifests[name[:-5]] = doc
    listings = list_objects(fs, root, uri, first, now.date())
    ingested, quarantined, labels, unreadable = [], 0, 0, 0
    days = sorted(set(listings) | {d for d in map(date.fromisoformat, manifests) if first <= d <= now.date()})
    for day in days:
        key, objects = _day_key(day), listings.get(day, {})
        manifest = manifests.get(key)
        if manifest is None and not objects:
            continue  # nothing arrived, nothing was ingested
        if manifest is not None and manifest.get("objects") == objects and not (force and objects):
            continue
        m = ingest_day(cfg, store, day, objects, fs, root, now)
        ingested.append(key)
        quarantined += m["quarantined"]
        labels += m["labels"]
        unreadable += len(m["unreadable_objects"])
    n_objects = sum(len(o) for o in listings.values())
    summary = (f"labels {cfg.name}: listed {n_objects} object(s) in {len(listings)} arrival day(s), ingested "
               f"{len(ingested)}"
               + (f" ({', '.join(ingested[:5])}{', ...' if len(ingested) > 5 else ''})" if ingested else "")
               + f": {labels} labels, {quarantined} quarantined"
               + (f"; {unreadable} object(s) not readable to their end (records in them uncounted)" if unreadable else "")
               + (f"; corrupt store file(s) set aside: {'; '.join(aside)}" if aside else ""))
    return {"summary": summary, "days_ingested": ingested, "labels": labels, "quarantined": quarantined,
            "listed": n_objects, "unreadable_objects": unreadable, "set_aside": aside}


def arrival_manifests(store: Store, model: str) -> dict[str, dict]:
    """Every arrival day's manifest; one that is not readable is set aside (and its day
    ingested again by the next sync), never an error."""
    base = posixpath.join(labels_prefix(model), "arrivals")
    out, aside = {}, []
    for n in store.listdir(base):
        if n.endswith(".json"):
            doc = _read_manifest(store, model, posixpath.join(base, n), aside)
            if doc is not None:
                out[n[:-5]] = doc
    return out


def read_day(store: Store, model: str, key: str, columns: list[str] | None = None) -> pa.Table | None:
    """One arrival day's labels; None when its file is corrupt (then set aside with its
    manifest, so the next sync ingests the day again)."""
    rel = posixpath.join(labels_prefix(model), "arrivals", f"{key}.parquet")
    try:
        return store.read_parquet(rel, columns=columns)
    except StoreError as exc:
        if not _corrupt_parquet(exc):
            raise
        _forget_day(store, model, key, exc, [])
        return None


def read_arrivals(store: Store, model: str, first: date, last: date, problem_type: str,
                  columns: list[str] | None = None) -> pa.Table:
    """Every ingested label that arrived on a day in [first, last], in arrival order: days in
    order, and within a day the order ingestion wrote (objects by path, whose hour folders
    sort by time, then lines). A day whose file is corrupt is left out (and set aside)."""
    base = posixpath.join(labels_prefix(model), "arrivals")
    have = set(store.listdir(base))
    schema = _arrivals_schema(problem_type)
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    tables = [read_day(store, model, _day_key(d), columns)
              for d in _days(first, last) if f"{_day_key(d)}.parquet" in have]
    tables = [t.cast(schema) for t in tables if t is not None and t.num_rows]
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
    id_cache: dict[datetime, set[str] | None] = {}
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
        state = _read_manifest(store, cfg.name, state_rel, []) if store.exists(state_rel) else None
        if state is not None and {k: v for k, v in state.items() if k in stamp} == stamp:
            unknown_total += state.get("unknown", 0)
            continue
        known: set[str] = set()
        unreadable = None
        for s in window:
            if s not in id_cache:
                batch_rel = posixpath.join(Store.run_prefix(cfg.name, s), "batch.parquet")
                try:
                    id_cache[s] = set(store.read_parquet(batch_rel, columns=[cfg.inference_id]).column(0).to_pylist())
                except StoreError as exc:
                    if not _corrupt_parquet(exc):
                        raise
                    id_cache[s] = None
                    log.warning("%s cannot be read (%s): the unknown ids of the arrival days it could match are "
                                "not decided until its interval is ingested again", store.uri(batch_rel), exc)
            if id_cache[s] is None:
                unreadable = s
                break
            known |= id_cache[s]
        if unreadable is not None:
            continue  # not decidable: an interval's predictions cannot be read
        table = read_day(store, cfg.name, key)
        if table is None:
            continue  # set aside: the next sync ingests the day again
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
