"""Ingest: one data interval of captured traffic -> one normalised Arrow batch.

Captured traffic lives in hourly partitions ``<capture.uri>/YYYY/MM/DD/HH/`` (SageMaker
data capture's layout), each object under the hour it was *written*, which can be a little
after its records' capture time. :func:`read_interval` lists only the hour folders that
``[start, end + capture.write_delay)`` touches (never the whole tree, which may be huge in
S3), reads every object in them in name order (names starting with ``.`` or ``_``, e.g.
``_SUCCESS`` or Spark's ``.crc`` files, are skipped), keeps the records whose capture time
lies in ``[start, end)`` (see "Which records" below), and turns them into a batch with a
fixed schema:

``<cfg.inference_id>``  string
``inference_time``      timestamp[us, UTC]
one column per feature, in declared order
    numeric -> float64, integer -> int64, categorical -> string, boolean -> bool,
    datetime -> timestamp[us, UTC] (all nullable)
``<prediction.label>``  int64 for classifiers when every value is integral, else string;
                        float64 for regression
``<prediction.probability>`` float64 (when the model declares one)
``__unparsed__<column>`` string sidecars, only for columns holding at least one value that
                        could not be read as the column's type (the typed value is null)
extra columns           every column the schema does not declare, as string

Missing values (empty CSV field, JSON null, absent key) are nulls; a schema column absent
from every accepted record is left out of the batch (``missing_columns``) so the
data-quality stage reports ``missing_column_check``. An interval with no data gives an
empty batch carrying every schema column (label as int64 for classifiers).

Records that cannot become a row at all are *quarantined* (see ``QUARANTINE_KINDS``), one
entry ``{"source", "line", "reason", "raw"}`` each (``raw``: the record's text, whole up to
``MAX_VALUE_CHARS`` characters, else a preview with its length and hash). Nothing is dropped
silently:

    records_seen == rows + quarantined

always holds, because ``records_seen`` counts *rows*: a line (or CSV/Parquet row) whose
payload holds one row counts once; a SageMaker record whose payload holds ``n`` rows counts
``n`` (each row is accepted or quarantined on its own, e.g. for a duplicate id); a record
rejected as a whole (invalid JSON, row-count mismatch, ...) counts once. ``quarantined`` counts
records: one per entry, except an entry with a ``records`` field (a Parquet row group that
cannot be read: ``unreadable_part``, its rows counted from the file's footer). ``lines_read``
counts physical records (non-blank lines / CSV rows / Parquet rows) for reference. Blank
lines carry no data and are skipped.

Objects that cannot be read to their end. A gzip object that breaks off (truncated, corrupt
bytes, a bad checksum) keeps every complete line decoded before the break; the rest is one
``truncated_object`` entry (its ``line`` the first line not read, ``raw`` the cut line,
its reason the compressed byte offset and the count of records read before). An object that
cannot be read at all (no gzip stream, a Parquet file without its footer, a CSV file without
a header) is one ``unreadable_file`` entry. How many records those held is unknowable: each
entry counts as one record, and ``unreadable_objects`` lists them -- the data-quality stage
raises ``quarantine_check`` for any of them whatever the share, so such an interval is never
"ok" silently.

Bounds (``driftline.common.limits``): a line nested deeper than ``MAX_JSON_DEPTH`` (64) levels is
quarantined as ``too_deep`` (depth is measured before decoding: no RecursionError); a line
longer than ``MAX_LINE_CHARS`` (32 Mi characters) as ``line_too_long``; a record holding a
value or key longer than ``MAX_VALUE_CHARS`` (64 Ki characters) as ``value_too_long``, with the
field, the value's length and its SHA-256. Reasons are held to ``TEXT_CHARS``.

Predictions: the predicted label must be a label of the model's kind (:func:`parse_label`,
the rules ground truth is read by): binary 0/1, true/false, yes/no (stored as 0/1); a class;
a finite number for regression. Another value quarantines the record as ``bad_prediction``
(so model quality and bias never meet it), as a probability that is not a number in [0, 1]
does (``output_not_number``, ``probability_out_of_range``).

Multi-row SageMaker payloads: row ``i`` (0-based) gets the id ``<id>-<i>`` when the payload
holds more than one row, where ``<id>`` is ``eventMetadata.inferenceId`` if present and
non-empty, else ``eventId``. A single-row payload keeps ``<id>`` unchanged.

Inference (capture) time: SageMaker's ``eventMetadata.inferenceTime``; for the other formats
the ``capture.time_field`` column, else an ``inference_time`` column when the data has one.
When a record has no time its object's hour folder is used. An unreadable time is a type
error (null + ``__unparsed__inference_time``). Numbers in a datetime column are Unix seconds.

Which records: a record belongs to the interval holding its capture time -- or, without a
readable one, its object's hour folder (counted: ``time_from_folder``, ``time_unreadable``).
Records of other intervals met in the folders read are neither kept nor quarantined: they are
counted in ``outside`` (before / after the interval), and are not part of ``records_seen``.
Malformed records are placed the same way (by their capture time when it can be read, else
by their folder), so each is quarantined by one interval only. A record captured before the
interval in an object its own interval does not read (the object's hour is at or after that
interval's end + ``write_delay``) would be in no batch: it is quarantined as ``written_late``
by the one interval holding the instant "folder hour - write_delay", the first to read it.
So, read once each interval has ended (the DAG's ``wait_for_capture`` sensor waits until end + write_delay),
every record lands in exactly one interval's batch or quarantine. Objects are known only by
their hour folder, not their write time: one written into a folder after its interval read it
(later than end + write_delay, within the same hour) shows only in the next interval's
``outside["before"]`` count.

Payloads (SageMaker capture). ``encoding`` BASE64 is decoded first; then JSON when the
encoding is JSON or the content type mentions json (``application/jsonlines``: one JSON
value per line), else CSV. CSV input: ``capture.input_fields`` order, one row per line.
JSON input: an object (keys -> columns), a list (positional), ``{"instances": [...]}`` or
``{"features": [...]}`` of those (a list of scalars is one positional row). CSV output:
``prediction.output_fields`` order, one line per input row (a single line holding one
score per input row is accepted too). JSON output: a number (the probability, or the label
of a model without one), an object with the label/probability column names or the keys
``score``/``probability`` (probability; regression: the prediction) and
``predicted_label``/``label``, or ``{"predictions": [...]}`` / a list of those. Input keys
that collide with the id/time/prediction columns are kept as ``input_<key>``; unused output
keys are extra columns (``output_<key>`` when they collide with a batch column).

Typing: text is trimmed for typed columns; an empty field is null. ``numeric`` accepts
finite decimal/scientific numbers (``nan`` is null; ``inf``, ``-Infinity`` or ``1e999`` -- a JSON
number too large for a float -- is a type error: null, its text in the sidecar, counted, so no
non-finite number reaches a statistic or a JSON artifact); ``integer`` also accepts integral floats
(``3.0``); ``boolean`` accepts true/false/1/0/yes/no in any case; ``datetime`` accepts ISO
8601 (a naive time is UTC). Categorical text is kept verbatim (only ``""`` becomes null).

The common SageMaker record (single-row CSV input, one-field CSV output holding the
probability) is checked inline and its features parsed column-wise with Arrow's CSV reader;
every other record, and every record that fails a check, takes the general path, which
words the quarantine reason. Both give the same batch.
"""
from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import posixpath
import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from driftline.common.limits import (
    MAX_JSON_DEPTH,
    MAX_LINE_CHARS,
    MAX_VALUE_CHARS,
    TEXT_CHARS,
    TooDeep,
    shown,
    too_long,
)
from driftline.common.limits import loads as bounded_loads
from driftline.config import ModelConfig
from driftline.store import Resolver, Store, StoreError, default_resolver, interval_key

UNPARSED_PREFIX = "__unparsed__"
TIME_COLUMN = "inference_time"
TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {"numeric": pa.float64(), "integer": pa.int64(), "categorical": pa.string(),
               "boolean": pa.bool_(), "datetime": TIMESTAMP}
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")

#: Short codes of quarantine reasons (ingest.json groups entries by them).
QUARANTINE_KINDS = {
    "invalid_json": "the line is not valid JSON",
    "invalid_utf8": "the line is not UTF-8 text",
    "not_object": "the record is not a JSON object",
    "missing_field": "captureData / endpointInput / endpointOutput / data is missing",
    "bad_base64": "a BASE64 payload cannot be decoded",
    "bad_payload": "a payload cannot be read (bad JSON, unsupported content type, empty)",
    "csv_field_count": "a CSV row has the wrong number of fields",
    "bad_output": "the endpoint output holds no usable prediction",
    "output_not_number": "a probability that is not a number",
    "probability_out_of_range": "a probability outside [0, 1]",
    "row_count_mismatch": "the output has a different number of rows than the input",
    "missing_id": "no (or an empty) inference id",
    "duplicate_id": "an inference id already seen in the interval (the first one is kept)",
    "unreadable_file": "a whole object that cannot be read as the capture format (how many records it held is unknown)",
    "truncated_object": ("an object readable only up to a point (a cut or corrupt gzip stream): its records before "
                         "that point are kept, the rest is one entry (how many records it held is unknown)"),
    "unreadable_part": "a part of an object (a Parquet row group) that cannot be read; the entry counts its records",
    "too_deep": f"the record nests JSON deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)",
    "line_too_long": f"the line is longer than {MAX_LINE_CHARS:,} characters (MAX_LINE_CHARS)",
    "value_too_long": f"a value or key is longer than {MAX_VALUE_CHARS:,} characters (MAX_VALUE_CHARS)",
    "bad_prediction": "a predicted label that is not a label of the model's kind (a binary label, a class, a finite number)",
    "written_late": ("a record captured before the interval, in an object written after its own interval's "
                     "end + capture.write_delay: no interval's batch holds it"),
}

#: Kinds whose entry stands for an unknown number of records: an interval with one is never
#: judged "ok" silently (data quality raises quarantine_check, whatever the share).
UNKNOWN_EXTENT_KINDS = ("unreadable_file", "truncated_object")

_FLOAT_RE = r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)$"
_INT_RE = r"^[+-]?\d{1,18}$"
_NUMBER = re.compile(_FLOAT_RE, re.IGNORECASE)
_INT64_LIMIT = 2.0 ** 63


@dataclass
class IngestResult:
    batch: pa.Table                 # normalised batch (schema in the module docstring)
    quarantine: list[dict]          # one dict per malformed record (or part of an object: see "records")
    objects_read: list[str]         # URIs of capture objects read
    records_seen: int               # records read, malformed included (== rows + quarantined)
    rows: int                       # rows in batch
    type_errors: dict[str, int]     # column -> values that could not be read as the column's type
    missing_columns: list[str]      # schema columns absent from every record
    extra_columns: list[str]        # columns seen that the schema does not declare
    #: Quarantine reason code (a QUARANTINE_KINDS key) of each quarantine entry, same order.
    quarantine_kinds: list[str] = field(default_factory=list)
    #: Physical records read: non-blank lines, CSV rows, Parquet rows (a multi-row SageMaker
    #: payload is one line but several records).
    lines_read: int = 0
    #: Partition hours listed, as 'YYYY/MM/DD/HH'.
    partitions: list[str] = field(default_factory=list)
    #: Records read that belong to other intervals (capture time before / after this one),
    #: in records_seen's units; neither in the batch nor quarantined.
    outside: dict[str, int] = field(default_factory=lambda: {"before": 0, "after": 0})
    #: Records of the interval without a capture time (placed by their object's hour folder,
    #: which is also their inference_time) ...
    time_from_folder: int = 0
    #: ... and with one that cannot be read (placed by the folder; a type error of inference_time).
    time_unreadable: int = 0
    #: Records quarantined: one per entry, or an entry's "records" when it stands for several.
    quarantined: int = 0

    def unreadable_objects(self) -> list[dict]:
        """The objects (or their rest) whose records could not be counted: entries of the
        UNKNOWN_EXTENT_KINDS, which data quality never lets pass silently."""
        return [{"source": e["source"], "kind": k, "line": e["line"], "reason": e["reason"]}
                for k, e in zip(self.quarantine_kinds, self.quarantine) if k in UNKNOWN_EXTENT_KINDS]


class _Malformed(Exception):
    """A whole record cannot be read."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


@dataclass
class _BadRow:
    """One row of a payload cannot be read (the payload's other rows may be fine)."""
    kind: str
    reason: str


# -- time and partitions --------------------------------------------------------------------
def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def partition_hours(start: datetime, end: datetime) -> list[datetime]:
    """The hour folders [start, end) touches: hours H (on the hour, UTC) with
    H + 1 hour > start and H < end (a 15-minute range lies in one hour's folder)."""
    start, end = _utc(start), _utc(end)
    h = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while h < end:
        out.append(h)
        h += timedelta(hours=1)
    return out


#: A capture time that is there but cannot be read as a time.
_UNREADABLE = object()


#: A capture time outside this range is no capture time: ``inferenceTime: 12`` read as Unix
#: seconds is 1970-01-01T00:00:12, which would silently file the record in 1970. The range is
#: the one the CLI accepts for dates.
CAPTURE_TIME_RANGE = (datetime(1990, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc))


def _instant(v: Any) -> datetime | None | object:
    """A record's capture time as an aware UTC datetime; None when absent (null, blank);
    ``_UNREADABLE`` when present but not a time, or not a plausible one (outside
    ``CAPTURE_TIME_RANGE``): such a record is placed by its object's hour folder and its time
    counted unreadable, never filed in another era."""
    t = _parse_instant(v)
    if isinstance(t, datetime) and not CAPTURE_TIME_RANGE[0] <= t < CAPTURE_TIME_RANGE[1]:
        return _UNREADABLE
    return t


def _parse_instant(v: Any) -> datetime | None | object:
    """The rules of the ``datetime`` type: ISO 8601 (naive = UTC) or Unix seconds."""
    if v is None:
        return None
    if isinstance(v, datetime):
        return _utc(v)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    if isinstance(v, bool):
        return _UNREADABLE
    if isinstance(v, (int, float)):
        return _from_seconds(float(v))
    if not isinstance(v, str):
        return _UNREADABLE
    text = v.strip()
    if not text:
        return None
    try:
        return _utc(datetime.fromisoformat(text))  # the common case, ~1 us
    except ValueError:
        pass
    if _NUMBER.match(text):
        return _from_seconds(float(text))
    ts = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")  # what the batch column accepts
    return _UNREADABLE if pd.isna(ts) else ts.to_pydatetime()


def _from_seconds(x: float) -> datetime | object:
    if not math.isfinite(x) or abs(x) >= 2.5e11:  # beyond year ~9900 is not a time
        return _UNREADABLE
    return datetime.fromtimestamp(x, tz=timezone.utc)


def _iso(t: datetime) -> str:
    return _utc(t).isoformat().replace("+00:00", "Z")


# -- value helpers --------------------------------------------------------------------------
def _text(v: Any) -> str | None:
    """Any raw value as text (None stays None); the typed conversion parses the text."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="backslashreplace")
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str, separators=(",", ":"))
    return str(v)


def _texts(values: list) -> pa.Array:
    return pa.array([v if v.__class__ is str else _text(v) for v in values], pa.string())


def _as_number(v: Any) -> float | None:
    """A finite-or-infinite float from a JSON number or numeric text; None otherwise."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str) and _NUMBER.match(v.strip()):
        f = float(v.strip())
    else:
        return None
    return None if math.isnan(f) else f


def _null(typ: pa.DataType) -> pa.Scalar:
    return pa.scalar(None, typ)


def _blank_to_null(text: pa.Array) -> pa.Array:
    s = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(s, ""), _null(pa.string()), s)


def convert_column(values: list | pa.Array, typ: str) -> tuple[pa.Array, pa.Array | None, int]:
    """Raw values -> (typed array, sidecar of unreadable raw text or None, error count).

    Vectorised with Arrow compute; the raw values are first turned into text, so JSON
    numbers, CSV text and Parquet values all follow the same rules.
    """
    if isinstance(values, list) and typ in ("numeric", "integer", "boolean"):
        typed = _native(values, typ)
        if typed is not None:
            return typed, None, 0
    text = values if isinstance(values, pa.Array) else _texts(values)
    if typ == "categorical":
        return pc.if_else(pc.equal(text, ""), _null(pa.string()), text), None, 0
    s = _blank_to_null(text)
    present = pc.is_valid(s)
    if typ == "numeric":
        ok = pc.fill_null(pc.match_substring_regex(s, _FLOAT_RE, ignore_case=True), False)
        f = pc.cast(pc.if_else(ok, s, _null(pa.string())), pa.float64())
        # nan is a missing value; inf, -Infinity, 1e999 are not numbers a feature can hold (no
        # mean, range or distance is defined with them, and JSON cannot carry them): type errors
        finite = pc.fill_null(pc.is_finite(f), False)
        typed = pc.if_else(finite, f, _null(pa.float64()))
        error = pc.and_(present, pc.invert(pc.or_(finite, pc.fill_null(pc.is_nan(f), False))))
    elif typ == "integer":
        is_int = pc.fill_null(pc.match_substring_regex(s, _INT_RE), False)
        is_num = pc.fill_null(pc.match_substring_regex(s, _FLOAT_RE, ignore_case=True), False)
        ints = pc.cast(pc.if_else(is_int, s, _null(pa.string())), pa.int64())
        f = pc.cast(pc.if_else(pc.and_(is_num, pc.invert(is_int)), s, _null(pa.string())), pa.float64())
        nan = pc.fill_null(pc.is_nan(f), False)
        integral = pc.fill_null(pc.and_(pc.and_(pc.is_finite(f), pc.equal(pc.floor(f), f)),
                                        pc.less(pc.abs(f), _INT64_LIMIT)), False)
        from_float = pc.cast(pc.if_else(integral, f, _null(pa.float64())), pa.int64())
        typed = pc.coalesce(ints, from_float)
        error = pc.and_(present, pc.invert(pc.or_(pc.or_(is_int, integral), nan)))
    elif typ == "boolean":
        low = pc.utf8_lower(s)
        yes = pc.is_in(low, value_set=pa.array(TRUE_WORDS))
        no = pc.is_in(low, value_set=pa.array(FALSE_WORDS))
        typed = pc.if_else(yes, True, pc.if_else(no, False, _null(pa.bool_())))
        error = pc.and_(present, pc.invert(pc.or_(yes, no)))
    elif typ == "datetime":
        typed, error = _parse_datetimes(s)
        error = pc.and_(present, error)
    else:  # pragma: no cover - config validation allows only the types above
        raise ValueError(f"unknown feature type {typ!r}")
    error = pc.fill_null(error, False)
    n_err = pc.sum(error).as_py() or 0
    sidecar = pc.if_else(error, text, _null(pa.string())) if n_err else None
    return typed, sidecar, n_err


def _native(values: list, typ: str) -> pa.Array | None:
    """Fast path for JSON/Parquet values that are already all numbers (or all booleans)."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return None
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(values), ARROW_TYPES[typ])
    if typ == "numeric" and (pa.types.is_integer(t) or pa.types.is_floating(t)):
        f = pc.cast(arr, pa.float64())
        if pc.any(pc.is_inf(f)).as_py():
            return None  # the text path makes them type errors, with their text in the sidecar
        return pc.if_else(pc.fill_null(pc.is_nan(f), False), _null(pa.float64()), f)
    if typ == "integer" and pa.types.is_integer(t):
        return pc.cast(arr, pa.int64())
    if typ == "boolean" and pa.types.is_boolean(t):
        return arr
    return None


def _parse_datetimes(s: pa.Array) -> tuple[pa.Array, pa.Array]:
    """ISO 8601 text (naive = UTC) or Unix seconds -> timestamp[us, UTC]; and the failures."""
    ser = pd.Series(s.to_pylist(), dtype=object)
    ts = pd.to_datetime(ser, utc=True, format="ISO8601", errors="coerce").astype("datetime64[us, UTC]")
    failed = ts.isna() & ser.notna()
    if failed.any():
        cand = ser[failed]
        numeric = cand[cand.map(lambda v: bool(_NUMBER.match(v)))]
        if len(numeric):
            secs = pd.to_numeric(numeric, errors="coerce")
            secs = secs[secs.abs() < 2.5e11]  # beyond year ~9900 is not a time
            ts.loc[secs.index] = pd.to_datetime(secs, unit="s", utc=True).astype("datetime64[us, UTC]")
    typed = pa.array(ts, type=TIMESTAMP, from_pandas=True)
    error = pa.array((ts.isna() & ser.notna()).to_numpy(), pa.bool_())
    return typed, error


# -- labels: the model's kind of label, for its predictions and for ground truth alike ----------
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}
_INTEGRAL = re.compile(r"^[+-]?\d+(?:\.0*)?$")


def parse_label(problem_type: str, raw: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, why) for one raw label (a ground-truth label or a predicted one).
    binary: 0/1, true/false, yes/no (any case) or an integral 0.0/1.0 -> 0 or 1; multiclass:
    the text of the class, integral numbers without a fraction (``2.0`` is ``"2"``);
    regression: a finite number. Empty, a JSON object or list, or a non-finite number is no
    label of any kind."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "the label is empty"
    if isinstance(raw, (dict, list)):
        return None, f"the label is a JSON {type(raw).__name__}, not a value"
    if isinstance(raw, float) and not math.isfinite(raw):
        return None, f"{raw!r} is not a finite number"
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw).strip()
    low = text.lower()
    if problem_type == "binary_classification":
        if low in _TRUE or (_INTEGRAL.match(low) and float(low) == 1.0):
            return 1, None
        if low in _FALSE or (_INTEGRAL.match(low) and float(low) == 0.0):
            return 0, None
        return None, f"{shown(text, 80)!r} is not a binary label (0/1, true/false, yes/no)"
    if problem_type == "multiclass_classification":
        if _INTEGRAL.match(text):
            return str(int(float(text))) if abs(float(text)) < 2 ** 53 else text.split(".")[0], None
        return text, None
    try:
        value = float(text)
    except ValueError:
        return None, f"{shown(text, 80)!r} is not a number (a regression label)"
    if not math.isfinite(value):
        return None, f"{shown(text, 80)!r} is not a finite number"
    return value, None


def _label_array(values: list) -> pa.Array:
    """Classifier labels: int64 when every value is integral, else string."""
    ints: list[int | None] = []
    for v in values:
        if v is None:
            ints.append(None)
        elif isinstance(v, bool):
            ints.append(int(v))
        elif isinstance(v, int):
            ints.append(v)
        elif isinstance(v, float) and v.is_integer():
            ints.append(int(v))
        elif isinstance(v, str):
            t = v.strip()
            if not t:
                ints.append(None)
                continue
            f = _as_number(t)
            if f is None or not f.is_integer():
                break
            ints.append(int(t) if re.fullmatch(r"[+-]?\d+", t) else int(f))
        else:
            break
    else:
        if all(i is None or -(2 ** 63) <= i < 2 ** 63 for i in ints):
            return pa.array(ints, pa.int64())
    return convert_column(values, "categorical")[0]


def _capped_raw(raw: Any) -> Any:
    """A quarantined record's raw text as quarantine.jsonl keeps it: whole up to
    MAX_VALUE_CHARS characters, else a preview with its length and hash (the entry's source
    and line find the whole record)."""
    return shown(raw, MAX_VALUE_CHARS) if isinstance(raw, str) and len(raw) > MAX_VALUE_CHARS else raw


def _oversized(rid: Any, when: Any, row: dict) -> str | None:
    """Why a record cannot be kept because one of its values (or keys) is longer than
    MAX_VALUE_CHARS, or None."""
    for name, v in (("inference id", rid), ("capture time", when)):
        if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
            return too_long(v, name)
    for k, v in row.items():
        if len(k) > MAX_VALUE_CHARS:
            return too_long(k, "a column name")
        if v is not None and not isinstance(v, (str, int, float, bool)):
            v = _text(v)
        if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
            return too_long(v, f"column {shown(k)!r}")
    return None


# -- the collector: row-level checks, one place for every format ---------------------------
class _Collector:
    def __init__(self, cfg: ModelConfig, strict_output: bool, start: datetime | None = None,
                 end: datetime | None = None, write_delay: timedelta = timedelta(0)):
        self.cfg = cfg
        #: The interval [start, end): records are placed in it by their capture time.
        self.start, self.end, self.write_delay = start, end, write_delay
        self.folder: datetime | None = None
        self.folder_text: str | None = None
        self.outside = {"before": 0, "after": 0}
        self.time_from_folder = 0
        self.time_unreadable = 0
        self._ends: dict[datetime, datetime] = {}
        self.id_col = cfg.inference_id
        self.label = cfg.prediction.label
        self.prob = cfg.prediction.probability
        self.threshold = cfg.prediction.threshold
        self.binary = cfg.problem_type == "binary_classification"
        self.multiclass = cfg.problem_type == "multiclass_classification"
        #: SageMaker output: an empty probability is "not a number", not a missing value.
        self.strict_output = strict_output
        #: Accepted rows: the row's features and extra columns as a dict of raw values, or
        #: None for a row taken by the SageMaker fast path (its CSV text is in fast_texts).
        self.rows: list[dict | None] = []
        self.fast_texts: list[str] = []
        self.ids: list[str] = []
        self.times: list[Any] = []
        self.labels: list[Any] = []
        self.probs: list[float | None] = []
        self.keys: dict[str, None] = {}
        self._last_keys: Any = None
        self.seen: dict[str, tuple[str, int | None]] = {}
        self.quarantine: list[dict] = []
        self.kinds: list[str] = []
        self.records_seen = 0
        self.quarantined = 0  # records in quarantine (an entry may stand for several)
        self.lines_read = 0

    def enter(self, hour: datetime) -> None:
        """The hour folder of the objects read next."""
        self.folder, self.folder_text = hour, _iso(hour)

    def place(self, when: Any) -> tuple[Any, str | None]:
        """Where a record with capture time ``when`` belongs: (the inference_time the batch
        keeps, None for this interval, else "before" / "after" / "late"). A record without a
        readable time is placed by its object's hour folder. "late": captured before this
        interval, in an object its own interval does not read (written later than its end +
        write_delay), and this interval is the one that answers for it: the interval holding
        the instant folder hour - write_delay (exactly one interval reads the folder then)."""
        t = _instant(when)
        at = self.folder if t is None or t is _UNREADABLE else t
        value = self.folder_text if t is None else when if t is _UNREADABLE else t
        if self.start is None or self.start <= at < self.end:
            return value, None
        if at >= self.end:
            return value, "after"
        h, w = self.folder, self.write_delay
        # cheap tests first: an object written within write_delay of its record is read by the
        # record's own interval, which ends after the record
        if (t is at and h >= t + w and self.start <= h - w < self.end
                and h >= self._interval_end(t) + w):
            return value, "late"
        return value, "before"

    def _interval_end(self, t: datetime) -> datetime:
        """End of the schedule's interval holding t: the first tick after t (the same for a
        whole minute, cron's grain)."""
        from croniter import croniter  # the cron library Airflow itself schedules with

        minute = t.replace(second=0, microsecond=0)
        if minute not in self._ends:
            self._ends[minute] = croniter(self.cfg.cron, minute).get_next(datetime)
        return self._ends[minute]

    def _outside(self, verdict: str, n: int = 1) -> None:
        self.outside[verdict] += n

    def reject(self, source: str, line: int | None, kind: str, reason: str, raw: Any, when: Any = None,
               records: int = 1) -> None:
        """Quarantine a record of the interval (one of another interval is only counted)."""
        _, verdict = self.place(when)
        if verdict in ("before", "after"):
            return self._outside(verdict, records)
        if verdict == "late":
            kind, reason = "written_late", self._late_reason(when, reason)
        self._quarantine(source, line, kind, reason, raw, records)

    def _quarantine(self, source: str, line: int | None, kind: str, reason: str, raw: Any,
                    records: int = 1) -> None:
        """Quarantine a record already placed in the interval (``records``: how many records
        the entry stands for, when one entry covers several, e.g. an unreadable row group)."""
        self.records_seen += records
        self.quarantined += records
        if callable(raw):
            raw = raw()
        entry = {"source": source, "line": line, "reason": shown(reason, TEXT_CHARS), "raw": _capped_raw(raw)}
        if records != 1:
            entry["records"] = records
        self.quarantine.append(entry)
        self.kinds.append(kind)

    def _late_reason(self, when: Any, problem: str | None = None) -> str:
        t = _instant(when)
        return (f"captured at {_iso(t)}, in an object of hour folder {self.folder:%Y/%m/%d/%H}: written after its "
                f"own interval's end {_iso(self._interval_end(t))} + capture.write_delay {self.write_delay}, so "
                f"no interval's batch holds it" + (f" (and: {problem})" if problem else ""))

    def add(self, source: str, line: int | None, raw: Any, rid: Any, when: Any, row: dict,
            where: str = "") -> None:
        """Accept one row after the row-level checks, or quarantine it."""
        when, verdict = self.place(when)
        if verdict in ("before", "after"):
            return self._outside(verdict)
        if verdict == "late":
            return self._quarantine(source, line, "written_late", where + self._late_reason(when), raw)
        if raw.__class__ is str and len(raw) > MAX_VALUE_CHARS:  # a shorter record holds no longer value
            big = _oversized(rid, when, row)
            if big is not None:
                return self._quarantine(source, line, "value_too_long", where + big, raw)
        rid = None if rid is None else _text(rid)
        if rid is None or not rid.strip():
            return self._quarantine(source, line, "missing_id",
                                    f"{where}record has no inference id ({self.id_col!r} is missing or empty)", raw)
        prev = self.seen.get(rid)
        if prev is not None:
            at = f"{prev[0]} line {prev[1]}" if prev[1] is not None else prev[0]
            return self._quarantine(source, line, "duplicate_id",
                                    f"{where}duplicate inference id {shown(repr(rid))} (first seen in {at})", raw)
        if self.prob is not None:
            p = row.get(self.prob)
            if isinstance(p, str) and not p.strip() and not self.strict_output:
                p = None
            if p is not None:
                f = _as_number(p)
                if f is None:
                    return self._quarantine(source, line, "output_not_number",
                                            f"{where}{self.prob} is {shown(repr(p))}, not a number (a probability "
                                            f"is expected)", raw)
                if not 0.0 <= f <= 1.0:
                    return self._quarantine(source, line, "probability_out_of_range",
                                            f"{where}{self.prob} = {f!r} is outside [0, 1]", raw)
                row[self.prob] = f
                if self.binary:
                    lab = row.get(self.label)
                    if lab is None or (isinstance(lab, str) and not lab.strip()):
                        row[self.label] = int(f >= self.threshold)
            elif self.prob in row:
                row[self.prob] = None
        lab = row.get(self.label)
        if lab is not None and not (isinstance(lab, str) and not lab.strip()):
            # a prediction is what the record is for: one that is no label of the model's kind
            # (a word for a regression, 2 or 'maybe' for a binary model) would reach model
            # quality and bias as a string they cannot compute with
            value, why = parse_label(self.cfg.problem_type, lab)
            if why is not None:
                return self._quarantine(source, line, "bad_prediction", f"{where}{self.label}: {why}", raw)
            if not self.multiclass:  # a class keeps its spelling: the batch column's type depends on it
                row[self.label] = value
        self._timed(when)
        self.records_seen += 1
        self.seen[rid] = (source, line)
        self.ids.append(rid)
        self.times.append(when)
        keys = tuple(row)
        if keys != self._last_keys:
            for k in keys:
                if k not in self.keys:
                    self.keys[k] = None
            self._last_keys = keys
        self.labels.append(row.pop(self.label, None))
        if self.prob is not None:
            self.probs.append(row.pop(self.prob, None))
        self.rows.append(row)

    def _timed(self, when: Any) -> None:
        """Count an accepted row placed by its folder (``when`` is what place() returned)."""
        if when is self.folder_text:
            self.time_from_folder += 1
        elif not isinstance(when, datetime):
            self.time_unreadable += 1

    def add_fast(self, source: str, line: int, rid: str, when: Any, text: str, p: float) -> bool:
        """Accept a single-row CSV record already checked by the SageMaker fast path (or count
        it, when it is another interval's); False sends it to the general path (written late:
        quarantined there with its raw line)."""
        when, verdict = self.place(when)
        if verdict in ("before", "after"):
            self._outside(verdict)
            return True
        if verdict is not None:
            return False
        self._timed(when)
        if not self.fast_texts:
            for k in (*self.cfg.input_fields, self.prob, *((self.label,) if self.binary else ())):
                self.keys.setdefault(k, None)
        self.records_seen += 1
        self.seen[rid] = (source, line)
        self.ids.append(rid)
        self.times.append(when)
        self.probs.append(p)
        self.labels.append(int(p >= self.threshold) if self.binary else None)
        self.rows.append(None)
        self.fast_texts.append(text)
        return True


# -- SageMaker data capture ---------------------------------------------------------------
def wide_csv_fields() -> None:
    """Let Python's csv module read fields up to MAX_LINE_CHARS (its default stops at 128 Ki
    characters with an error that would lose the whole object): a long field is a long value,
    which the value cap quarantines with its record."""
    if csv.field_size_limit() < MAX_LINE_CHARS:
        csv.field_size_limit(MAX_LINE_CHARS)


def _csv_rows(text: str) -> list[list[str]]:
    if '"' not in text:
        return [ln.rstrip("\r").split(",") for ln in text.split("\n") if ln.rstrip("\r")]
    wide_csv_fields()
    try:
        return [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise _Malformed("bad_payload", f"payload is not valid CSV ({exc})") from None


def _decode_payload(part: dict, which: str) -> tuple[str, Any]:
    """('csv', text) or ('json', parsed) from an endpointInput/endpointOutput object."""
    data = part.get("data")
    if data is None:
        raise _Malformed("missing_field", f"captureData.{which} has no data")
    enc = str(part.get("encoding") or "").upper()
    ctype = str(part.get("observedContentType") or "").lower()
    if enc == "BASE64":
        if not isinstance(data, str):
            raise _Malformed("bad_base64", f"captureData.{which}.data is not a BASE64 string")
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Malformed("bad_base64", f"captureData.{which}.data is not valid BASE64 ({exc})") from None
        try:
            data = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed("bad_payload", f"captureData.{which}.data decodes from BASE64 to bytes that "
                                            f"are not UTF-8 text (content type {ctype or 'unknown'!r})") from None
    if enc == "JSON" or "json" in ctype:
        if not isinstance(data, str):
            return "json", data
        if "jsonlines" in ctype or "jsonl" in ctype:
            try:
                return "json", {"instances": [bounded_loads(ln) for ln in data.split("\n") if ln.strip()]}
            except TooDeep as exc:
                raise _Malformed("too_deep", f"captureData.{which}.data: {exc}") from None
            except ValueError as exc:
                raise _Malformed("bad_payload", f"captureData.{which}.data is not valid JSON Lines ({exc})") from None
        try:
            return "json", bounded_loads(data)
        except TooDeep as exc:
            raise _Malformed("too_deep", f"captureData.{which}.data: {exc}") from None
        except ValueError as exc:
            raise _Malformed("bad_payload", f"captureData.{which}.data is not valid JSON ({exc})") from None
    if "csv" in ctype or enc == "CSV" or (not ctype and enc in ("", "BASE64")):
        if not isinstance(data, str):
            raise _Malformed("bad_payload", f"captureData.{which}.data is not CSV text")
        return "csv", data
    raise _Malformed("bad_payload", f"captureData.{which} has unsupported content type {ctype!r} "
                                    f"(encoding {enc or 'none'}); expected CSV or JSON")


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


class _SageMaker:
    """Turns SageMaker capture records into rows for one model."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.fields = cfg.input_fields
        self.out_fields = cfg.output_fields
        self.label = cfg.prediction.label
        self.prob = cfg.prediction.probability
        self.reserved_in = {cfg.inference_id, TIME_COLUMN, self.label, self.prob} - {None}
        self.reserved_out = {cfg.inference_id, TIME_COLUMN, *cfg.feature_names}
        self.fields_desc = ", ".join(self.fields)
        self.out_desc = ", ".join(self.out_fields)
        regression = cfg.problem_type == "regression"
        #: Fast path: single-row CSV input and a one-field CSV output holding the probability
        #: (SageMaker's usual capture) are checked inline and parsed column-wise later.
        self.fast = self.prob is not None and self.out_fields == [self.prob]
        self.n_commas = len(self.fields) - 1
        self._csv_ctypes: dict[Any, bool] = {}
        self.prob_keys = [k for k in (self.prob, "score", "probability") if k] if self.prob else []
        self.label_keys = [self.label, "predicted_label", "label"] + (["score"] if regression else [])

    # input ------------------------------------------------------------------------------
    def inputs(self, kind: str, payload: Any) -> list[dict | _BadRow]:
        if kind == "csv":
            rows = _csv_rows(payload)
            if not rows:
                raise _Malformed("bad_payload", "captureData.endpointInput.data is empty")
            n, fields = len(self.fields), self.fields
            out: list[dict | _BadRow] = []
            for r in rows:
                if len(r) == n:
                    out.append(dict(zip(fields, r)))
                else:
                    out.append(_BadRow("csv_field_count", f"CSV payload has {len(r)} fields, expected "
                                                          f"{n} ({self.fields_desc})"))
            return out
        items = self._json_items(payload)
        if not items:
            raise _Malformed("bad_payload", "captureData.endpointInput.data holds no rows")
        return [self._json_row(x) for x in items]

    def _json_items(self, obj: Any) -> list:
        if isinstance(obj, dict):
            inst = obj.get("instances")
            if isinstance(inst, list):
                return [] if not inst else ([inst] if all(_is_scalar(v) for v in inst) else inst)
            feats = obj.get("features")
            if isinstance(feats, list) and "features" not in self.fields:
                return [] if not feats else ([feats] if all(_is_scalar(v) for v in feats) else feats)
            return [obj]
        if isinstance(obj, list):
            return [] if not obj else ([obj] if all(_is_scalar(v) for v in obj) else obj)
        raise _Malformed("bad_payload", f"JSON input payload is a bare {type(obj).__name__}; expected an object, "
                                        f"a list, or {{\"instances\": [...]}}")

    def _json_row(self, item: Any) -> dict | _BadRow:
        if isinstance(item, dict) and isinstance(item.get("features"), list) and "features" not in self.fields:
            item = item["features"]
        if isinstance(item, list):
            if len(item) != len(self.fields):
                return _BadRow("csv_field_count", f"JSON payload row has {len(item)} values, expected "
                                                  f"{len(self.fields)} ({self.fields_desc})")
            return dict(zip(self.fields, item))
        if isinstance(item, dict):
            if self.reserved_in.isdisjoint(item):
                return item
            return {("input_" + k if k in self.reserved_in else k): v for k, v in item.items()}
        return _BadRow("bad_payload", f"JSON payload row is a bare {type(item).__name__}; expected an object or a list")

    # output -----------------------------------------------------------------------------
    def outputs(self, kind: str, payload: Any, n_in: int) -> list[dict | _BadRow]:
        if kind == "csv":
            rows = _csv_rows(payload)
            if not rows:
                raise _Malformed("bad_output", "captureData.endpointOutput.data is empty")
            m = len(self.out_fields)
            if len(rows) == 1 and n_in > 1 and m == 1 and len(rows[0]) == n_in:
                rows = [[v] for v in rows[0]]  # one line of comma-separated scores, one per input row
            out: list[dict | _BadRow] = []
            for r in rows:
                if len(r) != m:
                    out.append(_BadRow("csv_field_count", f"CSV output has {len(r)} fields, expected {m} "
                                                          f"({self.out_desc})"))
                    continue
                row = {k: (v if (v or k == self.prob) else None) for k, v in zip(self.out_fields, r)}
                out.append(row)
            return out
        if isinstance(payload, dict) and isinstance(payload.get("predictions"), list):
            items = payload["predictions"]
        elif isinstance(payload, list):
            items = payload
        else:
            items = [payload]
        return [self._json_output(x) for x in items]

    def _json_output(self, x: Any) -> dict | _BadRow:
        if isinstance(x, list) and len(x) == 1:
            x = x[0]
        if x is None:
            return _BadRow("bad_output", "endpoint output is null")
        if isinstance(x, bool):
            return {self.label: int(x)}
        if isinstance(x, (int, float, str)):
            return {self.prob: x} if self.prob else {self.label: x}
        if isinstance(x, dict):
            row: dict = {}
            rest = dict(x)
            for keys, col in ((self.prob_keys, self.prob), (self.label_keys, self.label)):
                for k in keys:
                    if k in rest:
                        row[col] = rest.pop(k)
                        break
            if not row:
                wanted = list(dict.fromkeys(self.prob_keys + self.label_keys))
                return _BadRow("bad_output", f"endpoint output object has none of the keys {wanted}")
            if all(v is None for v in row.values()):
                return _BadRow("bad_output", f"endpoint output holds no prediction ({json.dumps(x)[:200]})")
            for k, v in rest.items():
                row["output_" + k if k in self.reserved_out or k in row else k] = v
            return row
        return _BadRow("bad_output", f"endpoint output row is a list of {len(x)} values; expected a number "
                                     f"or an object")

    # a whole line -----------------------------------------------------------------------
    def _is_csv(self, ctype: Any) -> bool:
        ok = self._csv_ctypes.get(ctype)
        if ok is None:
            ok = self._csv_ctypes[ctype] = "json" not in str(ctype).lower()
        return ok

    def _fast(self, col: _Collector, source: str, lineno: int, rec: Any) -> bool:
        """Accept a plain single-row CSV record; False sends it down the general path, which
        also words every error."""
        try:
            cd = rec["captureData"]
            inp, out, meta = cd["endpointInput"], cd["endpointOutput"], rec["eventMetadata"]
            idata, od = inp["data"], out["data"]
            if not (inp["encoding"] == "CSV" and out["encoding"] == "CSV" and type(idata) is str
                    and type(od) is str and self._is_csv(inp.get("observedContentType"))
                    and self._is_csv(out.get("observedContentType"))):
                return False
            rid = meta.get("inferenceId")
            if rid is None:
                rid = meta.get("eventId")
        except (KeyError, TypeError, AttributeError):
            return False
        if idata.endswith("\n"):
            idata = idata.rstrip("\n")
        if od.endswith("\n"):
            od = od.rstrip("\n")
        if not (type(rid) is str and rid.strip() and rid not in col.seen and idata and od
                and idata.count(",") == self.n_commas and '"' not in idata and "\n" not in idata
                and "\r" not in idata and "," not in od and "\n" not in od and "\r" not in od
                and _NUMBER.match(od.strip())):
            return False
        p = float(od)
        if not 0.0 <= p <= 1.0:
            return False
        return col.add_fast(source, lineno, rid, meta.get("inferenceTime"), idata, p)

    def read(self, col: _Collector, source: str, lines: Iterator[tuple[int, str]]) -> None:
        fast = self.fast
        for lineno, text in lines:
            col.lines_read += 1
            try:
                rec = bounded_loads(text)
            except TooDeep as exc:
                col.reject(source, lineno, "too_deep", f"not read: {exc}", text)
                continue
            except ValueError as exc:
                col.reject(source, lineno, "invalid_json", f"not valid JSON ({exc})", text)
                continue
            # a long line may hold a value past MAX_VALUE_CHARS: the general path looks
            if fast and type(rec) is dict and len(text) <= MAX_VALUE_CHARS and self._fast(col, source, lineno, rec):
                continue
            if not isinstance(rec, dict):
                col.reject(source, lineno, "not_object",
                           f"capture record is a JSON {type(rec).__name__}, not an object", text)
                continue
            meta = rec.get("eventMetadata")
            meta = meta if isinstance(meta, dict) else {}
            # a malformed record belongs to the interval of its capture time too
            when = meta.get("inferenceTime")
            try:
                cd = rec.get("captureData")
                if not isinstance(cd, dict):
                    raise _Malformed("missing_field", "record has no captureData object")
                parts = []
                for which in ("endpointInput", "endpointOutput"):
                    part = cd.get(which)
                    if not isinstance(part, dict):
                        raise _Malformed("missing_field", f"captureData has no {which} object")
                    parts.append(_decode_payload(part, which))
                base_id = meta.get("inferenceId")
                if base_id is None or not _text(base_id).strip():
                    base_id = meta.get("eventId")
                if base_id is None or not _text(base_id).strip():
                    raise _Malformed("missing_id", "record has no inference id (eventMetadata.inferenceId "
                                                   "and eventMetadata.eventId are missing or empty)")
                base_id = _text(base_id)
                ins = self.inputs(*parts[0])
                outs = self.outputs(*parts[1], n_in=len(ins))
                if len(ins) != len(outs):
                    raise _Malformed("row_count_mismatch", f"input payload has {len(ins)} rows but the output "
                                                           f"has {len(outs)}")
            except _Malformed as m:
                col.reject(source, lineno, m.kind, m.reason, text, when)
                continue
            n = len(ins)
            for i in range(n):
                rid = base_id if n == 1 else f"{base_id}-{i}"
                where = "" if n == 1 else f"payload row {i} of {n} (id {rid}): "
                irow, orow = ins[i], outs[i]
                bad = irow if isinstance(irow, _BadRow) else orow if isinstance(orow, _BadRow) else None
                if bad is not None:
                    col.reject(source, lineno, bad.kind, f"{where}{bad.reason}", text, when)
                    continue
                row = irow
                for k, v in orow.items():
                    row["output_" + k if k in row else k] = v
                col.add(source, lineno, text, rid, when, row, where)


# -- tabular formats (jsonl, csv, parquet) ------------------------------------------------
class _Tabular:
    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.id_col = cfg.inference_id
        self.time_key = cfg.capture.time_field or TIME_COLUMN
        self.known = [cfg.inference_id, *cfg.feature_names, *cfg.prediction_columns, self.time_key]

    def split(self, rec: dict) -> tuple[Any, Any, dict]:
        rid = rec.pop(self.id_col, None)
        when = rec.pop(self.time_key, None)
        if TIME_COLUMN in rec:  # time_field names another column: keep this one as an extra
            rec["input_" + TIME_COLUMN] = rec.pop(TIME_COLUMN)
        return rid, when, rec

    def jsonl(self, col: _Collector, source: str, lines: Iterator[tuple[int, str]]) -> None:
        for lineno, text in lines:
            col.lines_read += 1
            try:
                rec = bounded_loads(text)
            except TooDeep as exc:
                col.reject(source, lineno, "too_deep", f"not read: {exc}", text)
                continue
            except ValueError as exc:
                col.reject(source, lineno, "invalid_json", f"not valid JSON ({exc})", text)
                continue
            if not isinstance(rec, dict):
                col.reject(source, lineno, "not_object", f"record is a JSON {type(rec).__name__}, not an object", text)
                continue
            rid, when, row = self.split(rec)
            col.add(source, lineno, text, rid, when, row)

    def csv(self, col: _Collector, source: str, text: str) -> None:
        wide_csv_fields()
        physical = io.StringIO(text, newline="").readlines()
        reader = csv.reader(physical)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            if set(self.known).isdisjoint(header):
                col.reject(source, None, "unreadable_file",
                           f"CSV file has no header row naming its columns (expected names such as "
                           f"{', '.join(self.known[:4])}); first row: {','.join(header)[:200]}", None)
                return
            width, header_desc = len(header), ", ".join(header)
            prev = reader.line_num
            for r in reader:
                start, prev = prev, reader.line_num
                if not r:
                    continue
                col.lines_read += 1
                raw = "".join(physical[start:prev]).rstrip("\r\n")
                if len(raw) > MAX_LINE_CHARS:
                    col.reject(source, start + 1, "line_too_long",
                               f"not read: {too_long(raw, 'the CSV row', MAX_LINE_CHARS)}", raw)
                    continue
                if len(r) != width:
                    col.reject(source, start + 1, "csv_field_count",
                               f"CSV row has {len(r)} fields, expected {width} ({header_desc})", raw)
                    continue
                rid, when, row = self.split(dict(zip(header, r)))
                col.add(source, start + 1, raw, rid, when, row)
        except csv.Error as exc:
            col.reject(source, None, "unreadable_file", f"not a readable CSV file ({exc})", None)

    def parquet(self, col: _Collector, source: str, data: bytes) -> None:
        try:
            pf = pq.ParquetFile(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - any decoding failure means the same
            # a cut Parquet file has no footer: nothing says how many rows it held
            col.reject(source, None, "unreadable_file",
                       f"not a readable Parquet file ({type(exc).__name__}: {exc})", None)
            return
        for first, n, table, why in row_groups(pf):
            if table is None:
                col.lines_read += n
                col.reject(source, first + 1, "unreadable_part", why, None, records=n)
                continue
            records = table.to_pylist()
            long_rows = _long_rows(table)
            for i, rec in enumerate(records):
                col.lines_read += 1
                raw = (lambda i=i, t=table: json.dumps(t.slice(i, 1).to_pylist()[0], default=str))
                rid, when, row = self.split(rec)
                if i in long_rows:
                    big = _oversized(rid, when, row)
                    if big is not None:
                        col.reject(source, first + i + 1, "value_too_long", big, raw, when)
                        continue
                col.add(source, first + i + 1, raw, rid, when, row)


def row_groups(pf: pq.ParquetFile, columns: list[str] | None = None):
    """Each row group of a Parquet file as (first row number, rows, table, None), or as
    (first, rows, None, why) when it cannot be read: a corrupt page loses that group's rows --
    counted, quarantined as one entry by the caller -- and the other groups are still read.
    Captured traffic and labels read Parquet alike through this."""
    first = 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        try:
            table = pf.read_row_group(g, columns=columns)
        except Exception as exc:  # noqa: BLE001 - a corrupt page: this group's rows, counted, are lost
            yield first, n, None, (f"Parquet row group {g} (rows {first + 1}-{first + n}) cannot be read "
                                   f"({type(exc).__name__}: {exc}); its {n} record(s) are quarantined as one entry")
        else:
            yield first, n, table, None
        first += n


def _long_rows(table: pa.Table) -> set[int]:
    """Rows of a table with a string (or binary) value longer than MAX_VALUE_CHARS, found
    column-wise; other types are checked row by row only on these rows, and never are long."""
    rows: set[int] = set()
    for c in table.columns:
        t = c.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            n = pc.utf8_length(c)
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            n = pc.binary_length(c)
        else:
            continue
        over = pc.fill_null(pc.greater(n, MAX_VALUE_CHARS), False)
        if pc.any(over).as_py():
            rows.update(pc.indices_nonzero(over).to_pylist())
    return rows


# -- reading the capture location ---------------------------------------------------------
def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of the non-blank lines of a text object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        for i, ln in enumerate(text.split("\n"), 1):
            if ln.strip():
                yield i, ln.rstrip("\r")
        return
    for i, bline in enumerate(data.split(b"\n"), 1):
        try:
            ln = bline.decode("utf-8")
        except UnicodeDecodeError:
            yield i, bline  # type: ignore[misc] - flagged by the caller
            continue
        if ln.strip():
            yield i, ln.rstrip("\r")


def _checked_lines(col: _Collector, source: str, data: bytes) -> Iterator[tuple[int, str]]:
    for i, ln in _lines(data):
        if isinstance(ln, bytes):
            col.lines_read += 1
            col.reject(source, i, "invalid_utf8", "line is not UTF-8 text",
                       ln.decode("utf-8", errors="backslashreplace"))
            continue
        if len(ln) > MAX_LINE_CHARS:
            col.lines_read += 1
            col.reject(source, i, "line_too_long", f"not read: {too_long(ln, 'the line', MAX_LINE_CHARS)}", ln)
            continue
        yield i, ln


# -- objects that break off ----------------------------------------------------------------
@dataclass
class Cut:
    """Where an object stops being readable: ``kept`` bytes of its (decompressed) content
    could be read; ``at`` is the compressed byte where decoding broke off, of ``size``."""
    why: str
    kept: int
    at: int
    size: int


#: Compressed bytes fed to zlib at a time; on an error the chunk is fed again in small steps,
#: so what decodes before a corrupt byte is kept.
_GZ_CHUNK = 1 << 16
_GZ_STEP = 256


def gunzip(data: bytes) -> tuple[bytes, Cut | None]:
    """The content of a gzip object (every member, as ``gzip.decompress``) and None; or,
    when the stream breaks off (truncated, corrupt bytes, a bad checksum), the content
    decoded before the break and where it broke. Nothing decoded is thrown away."""
    out: list[bytes] = []
    kept = pos = 0
    step = _GZ_CHUNK
    d = zlib.decompressobj(wbits=31)
    while pos < len(data):
        piece = data[pos:pos + step]
        saved = d.copy()
        try:
            got = d.decompress(piece)
        except zlib.error as exc:
            if step > _GZ_STEP:  # zlib drops a failing call's output: again in small steps
                d, step = saved, _GZ_STEP
                continue
            if "incorrect data check" in str(exc) or "incorrect length check" in str(exc):
                # the trailer's CRC or length: corrupt bytes inside the stream were decoded as data
                why = (f"the gzip checksum does not match ({exc}): bytes inside the stream are corrupt, so lines "
                       f"decoded before it may hold garbage (those that are not records are quarantined one by one)")
            else:
                why = f"corrupt gzip data ({exc})"
            return b"".join(out), Cut(why, kept, pos, len(data))
        out.append(got)
        kept += len(got)
        if d.eof:
            consumed = pos + len(piece) - len(d.unused_data)
            if not data[consumed:].strip(b"\x00"):  # gzip tools may pad with zeros
                return b"".join(out), None
            pos, d = consumed, zlib.decompressobj(wbits=31)  # another member follows
            continue
        pos += len(piece)
    return b"".join(out), Cut("the gzip stream ends early (the object is truncated)", kept, len(data), len(data))


def _whole_lines(data: bytes) -> tuple[bytes, bytes]:
    """A broken-off text split at its last line break: (complete lines, the cut line)."""
    end = data.rfind(b"\n") + 1
    return data[:end], data[end:]


def truncation_reason(cut: Cut, records: int, line: int) -> str:
    return (f"object readable only up to line {line}: {cut.why} at compressed byte {cut.at:,} of {cut.size:,} "
            f"(after {cut.kept:,} bytes of content); {records} record(s) before it were read, the rest of the "
            f"object is unreadable and how many records it held is unknown")


def _open_location(uri: str, resolver: Resolver | None, what: str = "capture location"):
    try:
        fs, root = (resolver or default_resolver)(uri)
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{what} {uri}: cannot open ({type(exc).__name__}: {exc})") from exc
    root = root.rstrip("/")
    if isinstance(fs, LocalFileSystem):
        p = Path(root)
        while not p.exists() and p != p.parent:
            p = p.parent
        if not p.is_dir():
            raise StoreError(f"{what} {uri}: cannot be reached ({p} is a file, not a folder)")
    else:
        bucket = root.split("/")[0]
        if bucket:
            try:
                fs.info(bucket)
            except FileNotFoundError:
                raise StoreError(f"{what} {uri}: bucket {bucket!r} does not exist") from None
            except Exception as exc:  # noqa: BLE001
                raise StoreError(f"{what} {uri}: cannot be reached ({type(exc).__name__}: {exc})") from exc
    return fs, root


def _list_partition(fs: Any, prefix: str, uri: str) -> list[str]:
    try:
        found = fs.find(prefix)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"capture location {uri}: listing {prefix} failed ({type(exc).__name__}: {exc})") from exc
    return sorted(p for p in found if not posixpath.basename(p.rstrip("/")).startswith((".", "_")))


def _fetch(fs: Any, paths: list[str], uri: str, what: str = "capture location") -> dict[str, bytes]:
    if not paths:
        return {}
    try:
        if len(paths) == 1:
            return {paths[0]: fs.cat_file(paths[0])}
        got = fs.cat(paths)  # concurrent on object stores
        return {p: got[p] if p in got else fs.cat_file(p) for p in paths}
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{what} {uri}: reading objects failed ({type(exc).__name__}: {exc})") from exc


def empty_batch(cfg: ModelConfig) -> pa.Table:
    """The batch of an interval without data: every schema column, no rows."""
    fields = [pa.field(cfg.inference_id, pa.string()), pa.field(TIME_COLUMN, TIMESTAMP)]
    fields += [pa.field(f.name, ARROW_TYPES[f.type]) for f in cfg.features]
    fields.append(pa.field(cfg.prediction.label,
                           pa.float64() if cfg.problem_type == "regression" else pa.int64()))
    if cfg.prediction.probability:
        fields.append(pa.field(cfg.prediction.probability, pa.float64()))
    return pa.schema(fields).empty_table()


def _fast_columns(fields: list[str], texts: list[str]) -> dict[str, pa.Array]:
    """Columns (as text) of single-line CSV rows that have exactly len(fields) fields and
    no quotes (the fast path checked both)."""
    data = "\n".join(texts).encode()
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=fields, block_size=max(1 << 20, len(data) + 1)),
            parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types={f: pa.string() for f in fields},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        if table.num_rows == len(texts):
            return {f: table.column(f).combine_chunks() for f in fields}
    except Exception:  # noqa: BLE001 - e.g. a field name listed twice: the plain split below copes
        pass
    columns = list(zip(*(t.split(",") for t in texts)))
    return {f: pa.array(list(c), pa.string()) for f, c in zip(fields, columns)}


def _build_batch(cfg: ModelConfig, col: _Collector) -> tuple[pa.Table, dict[str, int], list[str], list[str]]:
    if not col.rows:
        return empty_batch(cfg), {}, [], []
    rows, keys = col.rows, col.keys
    fast = _fast_columns(cfg.input_fields, col.fast_texts) if col.fast_texts else {}
    all_fast = len(col.fast_texts) == len(rows)

    def raw(name: str) -> list | pa.Array:
        if all_fast:
            return fast[name] if name in fast else pa.nulls(len(rows), pa.string())
        if not fast:
            return [r.get(name) for r in rows]
        it = iter(fast[name].to_pylist() if name in fast else [None] * len(col.fast_texts))
        return [next(it) if r is None else r.get(name) for r in rows]
    names: list[str] = []
    arrays: list[pa.Array] = []
    sidecars: list[tuple[str, pa.Array]] = []
    type_errors: dict[str, int] = {}

    def put(name: str, typed: pa.Array, sidecar: pa.Array | None, n_err: int) -> None:
        names.append(name)
        arrays.append(typed)
        if n_err:
            type_errors[name] = n_err
            sidecars.append((UNPARSED_PREFIX + name, sidecar))

    names.append(cfg.inference_id)
    arrays.append(pa.array(col.ids, pa.string()))
    put(TIME_COLUMN, *convert_column(col.times, "datetime"))
    missing = []
    for f in cfg.features:
        if f.name in keys:
            put(f.name, *convert_column(raw(f.name), f.type))
        else:
            missing.append(f.name)
    label = cfg.prediction.label
    if label in keys:
        if cfg.problem_type == "regression":
            put(label, *convert_column(col.labels, "numeric"))
        else:
            put(label, _label_array(col.labels), None, 0)
    else:
        missing.append(label)
    prob = cfg.prediction.probability
    if prob:
        if prob in keys:
            put(prob, pa.array(col.probs, pa.float64()), None, 0)
        else:
            missing.append(prob)
    schema_cols = {cfg.inference_id, TIME_COLUMN, *cfg.feature_names, *cfg.prediction_columns}
    extras = [k for k in keys if k not in schema_cols]
    for name, sc in sidecars:
        names.append(name)
        arrays.append(sc)
    for k in extras:
        names.append(k)
        arrays.append(convert_column(raw(k), "categorical")[0])
    return pa.Table.from_arrays(arrays, names=names), type_errors, missing, extras


def read_interval(cfg: ModelConfig, start: datetime, end: datetime, resolver: Resolver | None = None) -> IngestResult:
    """Read the records captured in [start, end) into a normalised batch (see module doc)."""
    uri = cfg.capture.uri.rstrip("/")
    fs, root = _open_location(uri, resolver)
    fmt = cfg.capture.format
    start, end = _utc(start), _utc(end)
    col = _Collector(cfg, strict_output=fmt == "sagemaker_capture", start=start, end=end,
                     write_delay=cfg.capture.write_delay)
    sagemaker = _SageMaker(cfg) if fmt == "sagemaker_capture" else None
    tabular = _Tabular(cfg)
    objects: list[str] = []
    partitions: list[str] = []
    for hour in partition_hours(start, end + cfg.capture.write_delay):
        part = hour.strftime("%Y/%m/%d/%H")
        partitions.append(part)
        paths = _list_partition(fs, posixpath.join(root, part), uri)
        col.enter(hour)
        for path, data in _fetch(fs, paths, uri).items():
            rel = path[len(root):].lstrip("/") if path.startswith(root) else path
            source = f"{uri}/{rel}"
            objects.append(source)
            cut, tail = None, b""
            if path.endswith(".gz"):
                data, cut = gunzip(data)
                if cut is not None and (fmt == "parquet" or not data.strip()):
                    col.reject(source, None, "unreadable_file", f"not a readable gzip file: {cut.why} at compressed "
                                                                f"byte {cut.at:,} of {cut.size:,}", None)
                    continue
                if cut is not None:  # keep the lines before the break; the cut line is part of the rest
                    data, tail = _whole_lines(data)
            before = col.lines_read
            if fmt == "sagemaker_capture":
                sagemaker.read(col, source, _checked_lines(col, source, data))
            elif fmt == "jsonl":
                tabular.jsonl(col, source, _checked_lines(col, source, data))
            elif fmt == "csv":
                try:
                    text = data.decode("utf-8-sig")
                except UnicodeDecodeError as exc:
                    col.reject(source, None, "unreadable_file", f"CSV file is not UTF-8 text ({exc})", None)
                    continue
                tabular.csv(col, source, text)
            else:
                tabular.parquet(col, source, data)
            if cut is not None:
                line = data.count(b"\n") + 1
                col.reject(source, line, "truncated_object", truncation_reason(cut, col.lines_read - before, line),
                           tail.decode("utf-8", errors="backslashreplace") or None)
    batch, type_errors, missing, extras = _build_batch(cfg, col)
    return IngestResult(batch=batch, quarantine=col.quarantine, objects_read=objects,
                        records_seen=col.records_seen, rows=batch.num_rows, type_errors=type_errors,
                        missing_columns=missing, extra_columns=[shown(x) for x in extras], quarantine_kinds=col.kinds,
                        lines_read=col.lines_read, partitions=partitions, outside=dict(col.outside),
                        time_from_folder=col.time_from_folder, time_unreadable=col.time_unreadable,
                        quarantined=col.quarantined)


# -- the stage -------------------------------------------------------------------------------
def group_reasons(result: IngestResult) -> dict[str, dict]:
    """Quarantined records grouped by kind: {kind: {count, description, example}}, largest
    first (count: records, an entry standing for several counting them all)."""
    counts: Counter = Counter()
    example = {}
    for kind, entry in zip(result.quarantine_kinds, result.quarantine):
        counts[kind] += entry.get("records", 1)
        example.setdefault(kind, entry["reason"])
    return {k: {"count": n, "description": QUARANTINE_KINDS.get(k, k), "example": example[k]}
            for k, n in counts.most_common()}


def summary_line(cfg: ModelConfig, start: datetime, result: IngestResult) -> str:
    head = f"ingest {cfg.name} {interval_key(start)}"
    if not result.objects_read:
        return f"{head}: no captured data ({len(result.partitions)} hourly partitions, no objects)"
    parts = [f"{result.rows} rows from {result.records_seen} records in {len(result.objects_read)} objects"]
    outside = {k: n for k, n in result.outside.items() if n}
    if outside:
        parts.append(f"{sum(outside.values())} records of other intervals left to them ("
                     + ", ".join(f"{n} {k}" for k, n in outside.items()) + ")")
    if result.time_from_folder:
        parts.append(f"{result.time_from_folder} rows without a capture time (placed by their hour folder)")
    if result.time_unreadable:
        parts.append(f"{result.time_unreadable} rows with an unreadable capture time (placed by their hour folder)")
    if result.quarantine:
        kinds = ", ".join(f"{k} {g['count']}" for k, g in group_reasons(result).items())
        parts.append(f"{result.quarantined} quarantined ({kinds})")
    unreadable = result.unreadable_objects()
    if unreadable:
        parts.append(f"{len(unreadable)} object(s) not readable to their end, records in them uncounted: "
                     + ", ".join(posixpath.basename(u["source"]) for u in unreadable[:3])
                     + (", ..." if len(unreadable) > 3 else ""))
    if result.type_errors:
        cols = ", ".join(f"{k} {n}" for k, n in result.type_errors.items())
        parts.append(f"{sum(result.type_errors.values())} type errors ({cols})")
    if result.missing_columns:
        parts.append(f"missing columns {result.missing_columns}")
    if result.extra_columns:
        parts.append(f"extra columns {result.extra_columns}")
    return f"{head}: " + "; ".join(parts)


#: Row groups of batch.parquet: the unit a drift profiling partition reads.
BATCH_ROW_GROUP = 131_072


def ingest_interval(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                    resolver: Resolver | None = None) -> dict:
    """Read [start, end) and write batch.parquet, quarantine.jsonl and ingest.json under the
    run's prefix (replacing earlier ones). Returns a small JSON-safe summary (an XCom)."""
    t0 = time.perf_counter()
    result = read_interval(cfg, start, end, resolver=resolver)
    prefix = store.run_prefix(cfg.name, start)
    summary = summary_line(cfg, start, result)
    batch_uri = store.write_parquet(posixpath.join(prefix, "batch.parquet"), result.batch,
                                    row_group_size=BATCH_ROW_GROUP)
    text = "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in result.quarantine)
    quarantine_uri = store.write_text(posixpath.join(prefix, "quarantine.jsonl"), text)
    report = {
        "model": cfg.name,
        "interval_start": _iso(start),
        "interval_end": _iso(end),
        "capture_uri": cfg.capture.uri,
        "format": cfg.capture.format,
        "partitions": result.partitions,
        "write_delay_seconds": cfg.capture.write_delay.total_seconds(),
        "objects_read": result.objects_read,
        "lines_read": result.lines_read,
        "records_seen": result.records_seen,
        "rows": result.rows,
        "quarantined": result.quarantined,
        "quarantine_entries": len(result.quarantine),
        "unreadable_objects": result.unreadable_objects(),
        "outside_interval": dict(result.outside),
        "time_from_folder": result.time_from_folder,
        "time_unreadable": result.time_unreadable,
        "quarantine_reasons": group_reasons(result),
        "type_errors": result.type_errors,
        "missing_columns": result.missing_columns,
        "extra_columns": result.extra_columns,
        "columns": {f.name: str(f.type) for f in result.batch.schema},
        "batch": batch_uri,
        "quarantine": quarantine_uri,
        "seconds": round(time.perf_counter() - t0, 3),
        "summary": summary,
    }
    report_uri = store.write_json(posixpath.join(prefix, "ingest.json"), report)
    return {
        "model": cfg.name,
        "interval_start": report["interval_start"],
        "interval_end": report["interval_end"],
        "batch_uri": batch_uri,
        "quarantine_uri": quarantine_uri,
        "report_uri": report_uri,
        "objects_read": len(result.objects_read),
        "records_seen": result.records_seen,
        "rows": result.rows,
        "quarantined": result.quarantined,
        "unreadable_objects": len(result.unreadable_objects()),
        "outside_interval": dict(result.outside),
        "type_errors": dict(result.type_errors),
        "missing_columns": list(result.missing_columns),
        "extra_columns": list(result.extra_columns),
        "summary": summary,
    }
