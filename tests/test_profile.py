"""Profiles of partitions merge into the profile of the whole: exact fields exactly,
moments to float rounding, quantiles within the KLL sketch's stated rank error."""
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline.stats.measures import quantile_edges
from driftline.stats.profile import (
    CategoricalProfile,
    ColumnSpec,
    DatasetProfile,
    NumericProfile,
    kll_rank_error,
    merge_all,
    profile_parquet,
    sample_parquet,
)

RNG = np.random.default_rng(2024)
VALUES = np.where(RNG.random(50_000) < 0.03, np.nan, RNG.lognormal(1.0, 0.75, 50_000))
EDGES = quantile_edges(VALUES[:5000], bins=10)


def _partitions(values, cuts):
    return np.split(values, sorted(cuts))


@pytest.mark.parametrize("cuts", [[], [25_000], [1, 2, 3, 49_999], list(range(1000, 50_000, 7001))])
def test_numeric_merge_equals_whole(cuts):
    whole = NumericProfile(edges=EDGES).update(VALUES)
    parts = [NumericProfile(edges=EDGES).update(p) for p in _partitions(VALUES, cuts)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    present = VALUES[~np.isnan(VALUES)]
    assert (merged.count, merged.missing) == (whole.count, whole.missing) == (50_000, int(np.isnan(VALUES).sum()))
    assert (merged.min, merged.max) == (present.min(), present.max())
    assert merged.mean == pytest.approx(present.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(present.var(), rel=1e-10)   # numpy, population
    np.testing.assert_array_equal(merged.bin_counts, whole.bin_counts)
    assert merged.bin_counts.sum() == present.size
    eps = kll_rank_error()
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        # the sketch's answer sits within eps of q in the true empirical rank
        rank = (present <= merged.quantile(q)).mean()
        assert abs(rank - q) <= eps, (q, rank, eps)


def test_numeric_merge_rejects_other_edges():
    with pytest.raises(ValueError, match="different edges"):
        NumericProfile(edges=EDGES).merge(NumericProfile(edges=EDGES + 1))


def test_numeric_round_trip_and_empty_partition():
    p = NumericProfile(edges=EDGES).update(VALUES[:1000]).merge(NumericProfile(edges=EDGES).update([np.nan, np.nan]))
    q = NumericProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert (q.count, q.missing, q.mean, q.m2, q.min, q.max) == (p.count, p.missing, p.mean, p.m2, p.min, p.max)
    assert q.quantile(0.5) == p.quantile(0.5)
    np.testing.assert_array_equal(q.bin_counts, p.bin_counts)


def test_categorical_merge_exact_and_sketched():
    vals = RNG.choice(["a", "b", "c", None], 10_000, p=[0.5, 0.3, 0.15, 0.05]).tolist()
    whole = CategoricalProfile().update(vals)
    merged = CategoricalProfile().update(vals[:3333]).merge(CategoricalProfile().update(vals[3333:]))
    assert merged.counts == whole.counts == {k: vals.count(k) for k in ("a", "b", "c")}
    assert merged.missing == vals.count(None)
    top, other = merged.top(2)
    assert list(top) == ["a", "b"] and other == vals.count("c")
    # past the cardinality bound the counts move into a frequent-items sketch; heavy hitters survive
    many = [f"id{i}" for i in range(3000)] + ["hot"] * 5000
    small = CategoricalProfile(max_exact=1000)
    for chunk in np.array_split(np.array(many, dtype=object), 4):
        small = small.merge(CategoricalProfile(max_exact=1000).update(list(chunk)))
    assert not small.exact and small.count == 8000
    top, _ = small.top(1)
    assert list(top) == ["hot"] and abs(top["hot"] - 5000) <= 3000 * 0.01 + 50
    rt = CategoricalProfile.from_dict(json.loads(json.dumps(small.to_dict())))
    assert rt.top(1) == small.top(1)


def test_profile_parquet_streams_by_batch_and_partitions_merge_to_the_whole():
    table = pa.table({"x": VALUES, "c": pa.array(RNG.choice(["u", "v"], VALUES.size)).dictionary_encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=7000)
    specs = {"x": ColumnSpec("numeric", EDGES), "c": ColumnSpec("categorical")}
    whole = NumericProfile(edges=EDGES).update(VALUES)
    prof = profile_parquet(io.BytesIO(buf.getvalue()), specs, batch_rows=4096)
    assert prof.rows == 50_000
    assert prof.columns["x"].count == 50_000 and prof.columns["x"].mean == pytest.approx(whole.mean, rel=1e-12)
    np.testing.assert_array_equal(prof.columns["x"].bin_counts, whole.bin_counts)
    assert prof.columns["c"].counts == {k: int(v) for k, v in zip(*np.unique(table["c"].to_numpy(), return_counts=True))}
    # partitions by row range (cutting through row groups and batches) merge to the whole
    cuts = [0, 3000, 7000, 7001, 31_234, 50_000]
    parts = [profile_parquet(io.BytesIO(buf.getvalue()), specs, rows=(a, b), batch_rows=4096)
             for a, b in zip(cuts, cuts[1:])]
    assert [p.rows for p in parts] == [3000, 4000, 1, 24_233, 18_766]
    merged = merge_all(parts)
    rt = DatasetProfile.from_dict(json.loads(json.dumps(merged.to_dict())))
    assert rt.rows == 50_000 and rt.columns["c"].counts == prof.columns["c"].counts
    np.testing.assert_array_equal(rt.columns["x"].bin_counts, whole.bin_counts)
    assert rt.columns["x"].m2 == pytest.approx(whole.m2, rel=1e-9)
    # a seeded Bernoulli sample of a row range, read column by column
    sample = sample_parquet(io.BytesIO(buf.getvalue()), 0.1, rows=(3000, 31_234), columns=["x"], seed=5)
    assert sample.column_names == ["x"] and 2500 < sample.num_rows < 3100
    drawn = sample["x"].to_numpy(zero_copy_only=False)
    assert set(drawn[~np.isnan(drawn)]) <= set(VALUES[3000:31_234])
    again = sample_parquet(io.BytesIO(buf.getvalue()), 0.1, rows=(3000, 31_234), columns=["x"], seed=5)
    np.testing.assert_array_equal(again["x"].to_numpy(zero_copy_only=False), drawn)
    with pytest.raises(ValueError, match="lacks columns"):
        profile_parquet(io.BytesIO(buf.getvalue()), {"nope": ColumnSpec("numeric")})
