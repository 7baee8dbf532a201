"""Bulk-loading a DataSketches KLL sketch from values that are already sorted.

Why this exists: ``kll_doubles_sketch.update(array)`` feeds values one at a time through the
sketch's compactors, ~25-45 ns a value, and it was most of driftline's profiling time (20 of
25 ms per million-value column, with the GIL held). The library has no bulk or weighted load.
But on sorted input there is nothing left for the compactors to do: a KLL sketch is a set of
levels, level h holding sorted values that each stand for 2^h input values. Cutting the sorted
values into consecutive blocks of 2^h and keeping each block's middle value is what the
compactors' random halvings approximate, and it is tighter: a rank query falls inside at most
one block, so its error is under half a block, below 1/k of n (the library's own 99% bound for
k=400 is 0.68%; this is <= 0.25%, with no randomness, so the same data gives the same sketch).

The state is written in the library's own serialized layout (datasketches-cpp
``kll_sketch::serialize``, serial version 1) and read back with ``kll_doubles_sketch.deserialize``,
which checks sizes; from then on it is an ordinary sketch that merges and updates as any other.
A self-check at import compares a bulk-loaded sketch against the library's on known data; if
a future version of the library reads the layout differently, ``from_sorted`` falls back to
``update`` (and ``BULK_LOAD`` says so).
"""
from __future__ import annotations

import math
import struct

import numpy as np
from datasketches import kll_doubles_sketch

_PREAMBLE_INTS_FULL = 5
_SERIAL_VERSION_1 = 1
_FAMILY_KLL = 15
_FLAG_LEVEL_ZERO_SORTED = 1 << 1
_M = 8  # the library's minimum level width (DEFAULT_M)
MIN_BULK = 4096  # below this, update() costs microseconds and is exact for n <= k anyway


def _cap_aux(k: int, depth: int) -> int:
    # kll_helper::int_cap_aux_aux: round(k * (2/3)^depth), computed as the library does
    return ((((2 * k) << depth) // 3 ** depth) + 1) >> 1


def level_capacity(k: int, num_levels: int, height: int, m: int = _M) -> int:
    """kll_helper::level_capacity."""
    depth = num_levels - height - 1
    if depth <= 30:
        cap = _cap_aux(k, depth)
    else:
        half = depth // 2
        cap = _cap_aux(_cap_aux(k, half), depth - half)
    return max(m, cap)


def _levels(n: int, k: int, pick) -> list[np.ndarray]:
    """Items per level (level 0 first): the top level takes floor(n / 2^top) <= k blocks of the
    lowest values, each lower level at most one block of what is left (n's binary digits).
    ``pick(ranks)`` gives the values at those 0-based ranks of the sorted input."""
    top = max(0, math.floor(math.log2(n / k))) if n > k else 0
    while (n >> top) > k:
        top += 1
    out, start = [], 0
    for h in range(top, -1, -1):
        w = 1 << h
        count = (n - start) // w
        out.append(pick(np.arange(start + w // 2, start + count * w, w, dtype="int64")))
        start += count * w
    return out[::-1]


def _serialize(n: int, k: int, pick, lo: float, hi: float) -> bytes:
    per_level = _levels(n, k, pick)
    num_levels = len(per_level)
    capacity = sum(level_capacity(k, num_levels, h) for h in range(num_levels))
    retained = sum(a.size for a in per_level)
    offsets = [capacity - retained]
    for a in per_level[:-1]:
        offsets.append(offsets[-1] + a.size)
    head = struct.pack("<BBBBHBB", _PREAMBLE_INTS_FULL, _SERIAL_VERSION_1, _FAMILY_KLL, _FLAG_LEVEL_ZERO_SORTED, k, _M, 0)
    head += struct.pack("<QHBB", n, k, num_levels, 0)
    head += struct.pack(f"<{num_levels}I", *offsets)
    head += struct.pack("<dd", float(lo), float(hi))
    return head + np.concatenate(per_level).astype("<f8", copy=False).tobytes()


def _serialize_sorted(sorted_values: np.ndarray, k: int) -> bytes:
    return _serialize(sorted_values.size, k, sorted_values.__getitem__, sorted_values[0], sorted_values[-1])


def weighted_items(sketch: kll_doubles_sketch) -> tuple[np.ndarray, np.ndarray]:
    """The sketch's retained values and their weights (2^level), read from its serialized
    form. Not ``iter(sketch)``: the library's iterator starts at level 0 and, when level 0 is
    empty (as it can be after a compaction or a merge), reports every item with weight 1."""
    if sketch.is_empty():
        return np.empty(0), np.empty(0)
    b = sketch.serialize()
    flags = b[3]
    if flags & (1 << 2):  # single item: 8-byte preamble, then the item
        return np.frombuffer(b, "<f8", 1, 8).copy(), np.ones(1)
    num_levels = b[18]
    offsets = np.frombuffer(b, "<u4", num_levels, 20).astype("int64")
    at = 20 + 4 * num_levels + 16  # levels, then min and max
    items = np.frombuffer(b, "<f8", offset=at).copy()
    bounds = np.append(offsets - offsets[0], items.size)
    weights = np.repeat(2.0 ** np.arange(num_levels), np.diff(bounds))
    return items, weights


def _self_check() -> bool:
    try:
        values = np.arange(1_000_003, dtype="float64")
        s = kll_doubles_sketch.deserialize(_serialize_sorted(values, 400))
        ref = kll_doubles_sketch(400)
        ref.update(values[::97])
        s.merge(ref)  # a bulk-loaded sketch must take part in the library's own merges
        n = values.size + ref.n
        items, weights = weighted_items(s)
        return (s.n == n and weights.sum() == n and s.get_min_value() == 0 and s.get_max_value() == values[-1]
                and abs(s.get_rank(500_000.0) - 0.5) < 0.01)
    except Exception:  # noqa: BLE001 - any failure means: do not bulk-load, use update()
        return False


BULK_LOAD = _self_check()


def from_sorted(sorted_values: np.ndarray, k: int) -> kll_doubles_sketch:
    """A KLL sketch of float64 values sorted ascending, without NaN (at least one value).

    Deterministic: the library's own ``update`` compacts with random coin flips once it holds
    more than k values, so the same data would give a slightly different sketch (and drift
    statistic) on every run; a run must be reproducible byte for byte."""
    if BULK_LOAD and sorted_values.size > k:
        return kll_doubles_sketch.deserialize(_serialize_sorted(sorted_values, k))
    sketch = kll_doubles_sketch(k)
    sketch.update(sorted_values)
    return sketch


def merge(sketches: list[kll_doubles_sketch], k: int) -> kll_doubles_sketch:
    """One sketch of every value the sketches stand for, deterministically.

    ``kll_doubles_sketch.merge`` compacts with random coin flips (not seedable from Python),
    so merging partitions' profiles gave another sketch on every run. Here the inputs'
    retained items, each weighing 2^level, are pooled and sorted, and the merged sketch is
    bulk-loaded as :func:`from_sorted` would load the values they stand for: each block of
    2^h ranks is represented by the item at its middle rank. Its rank error is at most the
    inputs' plus half a block (<= n/2k): the same order as the library's merge, and the same
    inputs always give the same bytes. Falls back to the library's merge if bulk loading is
    off (see ``BULK_LOAD``)."""
    full = [s for s in sketches if not s.is_empty()]
    if not BULK_LOAD:
        out = kll_doubles_sketch(k)
        for s in full:
            out.merge(s)
        return out
    if not full:
        return kll_doubles_sketch(k)
    pooled = [weighted_items(s) for s in full]
    items = np.concatenate([p[0] for p in pooled])
    weights = np.concatenate([p[1] for p in pooled]).astype("int64")
    n = int(sum(s.n for s in full))
    lo, hi = min(s.get_min_value() for s in full), max(s.get_max_value() for s in full)
    order = np.argsort(items, kind="stable")
    items, cum = items[order], np.cumsum(weights[order])
    if n != int(cum[-1]):  # the sketches' counts and their items' weights disagree: trust the library
        out = kll_doubles_sketch(k)
        for s in full:
            out.merge(s)
        return out
    if n <= k:  # every value is still held exactly
        out = kll_doubles_sketch(k)
        out.update(np.repeat(items, weights[order]))
        return out
    return kll_doubles_sketch.deserialize(_serialize(n, k, lambda ranks: items[np.searchsorted(cum, ranks, side="right")],
                                                     lo, hi))
