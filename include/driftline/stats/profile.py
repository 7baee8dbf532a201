"""Mergeable column profiles: computed once per partition, merged into the profile of the union.

Numeric: count, missing, min, max, mean and M2 (sum of squared deviations; merged with
Chan, Golub & LeVeque's pairwise formula, exact up to float rounding), a KLL quantile sketch
(Apache DataSketches, as SageMaker/Deequ use; rank error ``kll_rank_error()``), and counts on
fixed bin edges (taken from the baseline's quantiles, so every partition bins alike).

Categorical: exact value counts while the number of distinct values stays within
``max_exact``; past it, a frequent-items sketch (DataSketches) whose estimates carry a
stated error bound. Reported as top-K plus "other". A value longer than
``driftline.common.limits.SHOWN_CHARS`` is counted under its shown form (preview, length, SHA-256):
profiles are stored and reported, and the form keeps distinct values distinct.

``profile_parquet`` reads a Parquet file one column chunk at a time, so memory follows a
column chunk, not the file size.
"""
from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasketches import frequent_items_error_type, frequent_strings_sketch, kll_doubles_sketch

from driftline.common.limits import SHOWN_CHARS, shown
from driftline.stats import kll
from driftline.stats.measures import counts_on_sorted

KLL_K = 400  # 0.68% rank error (99% confidence); update cost barely differs from k=200
MAX_EXACT_CATEGORIES = 10_000
FREQUENT_LG_MAX_K = 12  # frequent-items sketch: up to 2^12 * 0.75 tracked items


def kll_rank_error(k: int = KLL_K) -> float:
    """Normalised rank error of a single KLL quantile (99% confidence)."""
    return float(kll_doubles_sketch.get_normalized_rank_error(k, False))


def combine_moments(na: int, mean_a: float, m2_a: float, nb: int, mean_b: float, m2_b: float) -> tuple[float, float]:
    """Mean and M2 of the union of two samples from theirs (Chan, Golub & LeVeque 1979)."""
    n = na + nb
    if n == 0:
        return 0.0, 0.0
    delta = mean_b - mean_a
    return mean_a + delta * nb / n, m2_a + m2_b + delta * delta * na * nb / n


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@dataclass
class NumericProfile:
    count: int = 0
    missing: int = 0
    min: float = float("inf")
    max: float = float("-inf")
    mean: float = 0.0
    m2: float = 0.0
    sketch: kll_doubles_sketch = field(default_factory=lambda: kll_doubles_sketch(KLL_K))
    edges: np.ndarray | None = None
    bin_counts: np.ndarray | None = None

    @property
    def present(self) -> int:
        return self.count - self.missing

    @property
    def variance(self) -> float:
        """Population variance (ddof=0)."""
        return self.m2 / self.present if self.present else float("nan")

    def _add_moments(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        """Fold n present values (their mean, M2, min, max) into self; self.count/missing
        must not include them yet."""
        if n == 0:
            return
        self.mean, self.m2 = combine_moments(self.present, self.mean, self.m2, n, mean, m2)
        self.min, self.max = min(self.min, lo), max(self.max, hi)

    def update(self, values: np.ndarray) -> NumericProfile:
        # Sorted first (numpy's SIMD sort, ~13 ms per million on the benchmark machine): the KLL
        # sketch is then bulk-loaded (driftline.stats.kll: no per-value updates), min/max are the
        # ends, missing values (NaN sorts last) are counted by one binary search, and the bin
        # counts are one binary search per edge instead of a pass over the values per edge.
        return self.update_sorted(np.sort(np.asarray(values, dtype="float64").ravel()))

    def update_sorted(self, v: np.ndarray) -> NumericProfile:
        """update() with float64 values already sorted ascending (NaN last)."""
        present = v[:int(np.searchsorted(v, np.nan, side="left"))]
        if present.size:
            mean = float(present.mean())
            dev = present - mean
            self._add_moments(present.size, mean, float(np.dot(dev, dev)), float(present[0]), float(present[-1]))
            chunk = kll.from_sorted(present, self.sketch.k)
            self.sketch = chunk if self.sketch.is_empty() else kll.merge([self.sketch, chunk], self.sketch.k)
        self.count += v.size
        self.missing += v.size - present.size
        if self.edges is not None:
            counts = counts_on_sorted(present, self.edges)
            self.bin_counts = counts if self.bin_counts is None else self.bin_counts + counts
        return self

    def merge(self, other: NumericProfile) -> NumericProfile:
        """The profile of both partitions' rows (neither input changes)."""
        if (self.edges is None) != (other.edges is None) or (
                self.edges is not None and not np.array_equal(self.edges, other.edges)):
            raise ValueError("cannot merge numeric profiles binned on different edges")
        out = NumericProfile(edges=self.edges)
        out.sketch = kll.merge([self.sketch, other.sketch], self.sketch.k)  # deterministic, unlike the library's
        for p in (self, other):
            out._add_moments(p.present, p.mean, p.m2, p.min, p.max)
            out.count += p.count
            out.missing += p.missing
            if p.bin_counts is not None:
                out.bin_counts = p.bin_counts.copy() if out.bin_counts is None else out.bin_counts + p.bin_counts
        return out

    def quantile(self, q: float) -> float:
        return float(self.sketch.get_quantile(q))

    def weighted_items(self) -> tuple[np.ndarray, np.ndarray]:
        """The sketch's retained values and their weights: a weighted sample standing for the
        present values (exact while the sketch holds fewer than k values)."""
        return kll.weighted_items(self.sketch)

    def summary(self) -> dict:
        """Small, readable statistics for drift.json and the report."""
        out = {"count": self.count, "missing": self.missing,
               "missing_share": self.missing / self.count if self.count else 0.0}
        if self.present:
            q = self.sketch.get_quantiles([0.05, 0.25, 0.5, 0.75, 0.95])
            out.update(mean=self.mean, std=float(np.sqrt(self.variance)), min=self.min, max=self.max,
                       p05=q[0], p25=q[1], p50=q[2], p75=q[3], p95=q[4])
        return out

    def to_dict(self) -> dict:
        return {"type": "numeric", "count": self.count, "missing": self.missing,
                "min": self.min if self.present else None, "max": self.max if self.present else None,
                "mean": self.mean, "m2": self.m2, "kll_k": self.sketch.k,
                "kll": _b64(self.sketch.serialize()),
                # JSON has no infinity: the open outer edges are written as "-inf"/"inf"
                "edges": None if self.edges is None else [float(e) if np.isfinite(e) else str(float(e))
                                                          for e in self.edges],
                "bin_counts": None if self.bin_counts is None else [float(c) for c in self.bin_counts]}

    @classmethod
    def from_dict(cls, d: dict) -> NumericProfile:
        p = cls(count=d["count"], missing=d["missing"],
                min=d["min"] if d["min"] is not None else float("inf"),
                max=d["max"] if d["max"] is not None else float("-inf"), mean=d["mean"], m2=d["m2"],
                sketch=kll_doubles_sketch.deserialize(base64.b64decode(d["kll"])),
                edges=None if d["edges"] is None else np.array([float(e) for e in d["edges"]], dtype="float64"),
                bin_counts=None if d["bin_counts"] is None else np.array(d["bin_counts"], dtype="float64"))
        return p


@dataclass
class CategoricalProfile:
    count: int = 0
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    #: Once there are more than max_exact distinct values, counts move into this sketch.
    sketch: frequent_strings_sketch | None = None
    max_exact: int = MAX_EXACT_CATEGORIES

    @property
    def exact(self) -> bool:
        return self.sketch is None

    def _add(self, value: str, n: int) -> None:
        if len(value) > SHOWN_CHARS:
            # a profile is stored and reported: a long value is kept in its shown form (preview,
            # length, hash), the same in the baseline's profile and an interval's, so counts
            # still compare category by category
            value = shown(value)
        if self.sketch is not None:
            self.sketch.update(value, int(n))
            return
        self.counts[value] = self.counts.get(value, 0) + int(n)
        if len(self.counts) > self.max_exact:
            self.sketch = frequent_strings_sketch(FREQUENT_LG_MAX_K)
            for k, c in self.counts.items():
                self.sketch.update(k, int(c))
            self.counts = {}

    def update(self, values: pa.Array | pa.ChunkedArray | list) -> CategoricalProfile:
        arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=pa.string())
        self.count += len(arr)
        self.missing += arr.null_count
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        for chunk in chunks:
            if pa.types.is_dictionary(chunk.type) and pa.types.is_string(chunk.type.value_type):
                # count the dictionary codes: no string is materialised per row
                codes = chunk.indices.drop_null().to_numpy(zero_copy_only=False)
                counts = np.bincount(codes, minlength=len(chunk.dictionary))
                names = chunk.dictionary.to_pylist()
                for i in np.flatnonzero(counts):
                    self._add(names[i], int(counts[i]))
                continue
            if chunk.type != pa.string():
                chunk = pc.cast(chunk, pa.string())
            for item in pc.value_counts(chunk.drop_null()).to_pylist():
                self._add(item["values"], item["counts"])
        return self

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        out = CategoricalProfile(count=self.count + other.count, missing=self.missing + other.missing,
                                 max_exact=self.max_exact)
        for p in (self, other):
            if p.sketch is not None:
                if out.sketch is None:
                    out.sketch = frequent_strings_sketch(FREQUENT_LG_MAX_K)
                    for k, c in out.counts.items():
                        out.sketch.update(k, int(c))
                    out.counts = {}
                out.sketch.merge(p.sketch)
            else:
                for k, c in p.counts.items():
                    out._add(k, c)
        return out

    def top(self, k: int = 50) -> tuple[dict[str, int], int]:
        """The k most frequent values with their counts, and the count of all other values."""
        present = self.count - self.missing
        if self.sketch is None:
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        else:
            items = self.sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
            ranked = [(it[0], int(it[1])) for it in items[:k]]
        top = dict(ranked)
        return top, present - sum(top.values())

    def summary(self, k: int = 10) -> dict:
        top, other = self.top(k)
        present = self.count - self.missing
        return {"count": self.count, "missing": self.missing,
                "missing_share": self.missing / self.count if self.count else 0.0,
                "distinct": len(self.counts) if self.exact else None,
                "top": {v: c / present for v, c in top.items()} if present else {},
                "other_share": other / present if present else 0.0}

    def to_dict(self) -> dict:
        return {"type": "categorical", "count": self.count, "missing": self.missing, "max_exact": self.max_exact,
                "counts": self.counts, "sketch": None if self.sketch is None else _b64(self.sketch.serialize())}

    @classmethod
    def from_dict(cls, d: dict) -> CategoricalProfile:
        return cls(count=d["count"], missing=d["missing"], counts=dict(d["counts"]), max_exact=d["max_exact"],
                   sketch=None if d["sketch"] is None else frequent_strings_sketch.deserialize(base64.b64decode(d["sketch"])))


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ColumnSpec:
    """How a column is profiled: as numbers (with optional fixed bin edges) or as categories."""
    kind: str  # "numeric" | "categorical"
    edges: np.ndarray | None = None

    def empty(self) -> ColumnProfile:
        return NumericProfile(edges=self.edges) if self.kind == "numeric" else CategoricalProfile()


def spec_of(profile: ColumnProfile) -> ColumnSpec:
    """The spec that profiles new data comparably to profile (same kind, same edges)."""
    if isinstance(profile, NumericProfile):
        return ColumnSpec("numeric", profile.edges)
    return ColumnSpec("categorical")


@dataclass
class DatasetProfile:
    """Profiles of a dataset's columns. Merging two gives the profile of their union."""
    rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        if set(self.columns) != set(other.columns):
            raise ValueError(f"cannot merge profiles of different columns: {sorted(set(self.columns) ^ set(other.columns))}")
        return DatasetProfile(self.rows + other.rows, {n: p.merge(other.columns[n]) for n, p in self.columns.items()})

    def to_dict(self) -> dict:
        return {"rows": self.rows, "columns": {n: p.to_dict() for n, p in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> DatasetProfile:
        return cls(d["rows"], {n: (NumericProfile if c["type"] == "numeric" else CategoricalProfile).from_dict(c)
                               for n, c in d["columns"].items()})


def merge_all(profiles: list[DatasetProfile]) -> DatasetProfile:
    if not profiles:
        raise ValueError("no profiles to merge")
    out = profiles[0]
    for p in profiles[1:]:
        out = out.merge(p)
    return out


def _decoded(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return pc.cast(col, col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _as_float(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    col = _decoded(col)
    if pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.int8())
    col = pc.cast(col, pa.float64())
    if col.null_count:
        # filling first: to_numpy() of a float column with nulls takes a slow path (~20x)
        col = pc.fill_null(col, np.nan)
    return col.to_numpy() if isinstance(col, pa.ChunkedArray) else col.to_numpy(zero_copy_only=False)


def update_profiles(profile: DatasetProfile, batch: pa.RecordBatch | pa.Table, specs: dict[str, ColumnSpec]) -> None:
    """Fold one batch of rows into profile (in place)."""
    for name, spec in specs.items():
        col = batch.column(name)
        prof = profile.columns.setdefault(name, spec.empty())
        if spec.kind == "numeric":
            prof.update(_as_float(col))
        else:
            prof.update(col)
    profile.rows += batch.num_rows


def profile_table(table: pa.Table, specs: dict[str, ColumnSpec]) -> DatasetProfile:
    missing = [n for n in specs if n not in table.column_names]
    if missing:
        raise ValueError(f"the data lacks columns {missing} (it has {table.column_names})")
    out = DatasetProfile(columns={n: s.empty() for n, s in specs.items()})
    update_profiles(out, table, specs)
    return out


def _row_groups(pf: pq.ParquetFile, start: int, stop: int) -> list[tuple[int, int, int]]:
    """(row group, first row, last row + 1) of the groups overlapping [start, stop), the rows
    counted within each group."""
    out, at = [], 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        lo, hi = max(start - at, 0), min(stop - at, n)
        if hi > lo:
            out.append((g, lo, hi))
        at += n
    return out


def profile_parquet(source, specs: dict[str, ColumnSpec], rows: tuple[int, int] | None = None,
                    batch_rows: int = 1 << 20) -> DatasetProfile:
    """Profile the named columns of a Parquet file (a path or an open binary file).

    The file is read one column of one row group at a time, so memory follows a column chunk,
    not the file (nor a whole row group of every column). ``rows=(start, stop)`` profiles
    only that range of rows (a partition): only the row groups that overlap it are read."""
    pf = pq.ParquetFile(source)
    names = pf.schema_arrow.names
    missing = [n for n in specs if n not in names]
    if missing:
        raise ValueError(f"the data lacks columns {missing} (it has {names})")
    out = DatasetProfile(columns={n: s.empty() for n, s in specs.items()})
    start, stop = rows if rows is not None else (0, pf.metadata.num_rows)
    groups = _row_groups(pf, start, stop)

    def chunks():
        for g, lo, hi in groups:
            for name, spec in specs.items():
                col = pf.read_row_group(g, columns=[name]).column(0)
                for a in range(lo, hi, batch_rows):
                    yield name, spec.kind, col.slice(a, min(batch_rows, hi - a))

    def prepare(item):
        name, kind, part = item
        return name, kind, (np.sort(_as_float(part)) if kind == "numeric" else part)

    # A pipeline of two: one thread reads, decodes and sorts the next column chunk (Arrow and
    # numpy's sort release the GIL) while this one folds the previous into its profile (the
    # sketches hold the GIL). One chunk in flight, so memory stays at two column chunks.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftline-read") as pool:
        it = chunks()
        ahead = pool.submit(prepare, next(it)) if groups and specs else None
        while ahead is not None:
            name, kind, data = ahead.result()
            nxt = next(it, None)
            ahead = pool.submit(prepare, nxt) if nxt is not None else None
            prof = out.columns[name]
            prof.update_sorted(data) if kind == "numeric" else prof.update(data)
    out.rows += sum(hi - lo for _, lo, hi in groups)
    return out


def sample_parquet(source, fraction: float, rows: tuple[int, int] | None = None, columns: list[str] | None = None,
                   seed=0) -> pa.Table | None:
    """A Bernoulli sample (each row kept with probability ``fraction``, seeded) of a Parquet
    file's rows in [start, stop), read column by column. None when no row is drawn."""
    pf = pq.ParquetFile(source)
    columns = columns or pf.schema_arrow.names
    start, stop = rows if rows is not None else (0, pf.metadata.num_rows)
    rng = np.random.default_rng(seed)
    parts = []
    for g, lo, hi in _row_groups(pf, start, stop):
        idx = lo + np.flatnonzero(rng.random(hi - lo) < fraction)
        if idx.size:
            take = pa.array(idx)
            parts.append(pa.table({c: pf.read_row_group(g, columns=[c]).column(0).take(take) for c in columns}))
    return pa.concat_tables(parts) if parts else None
