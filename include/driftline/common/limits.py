"""Limits on what input may hold and on what artifacts show of it.

Captured traffic and labels come from systems driftline does not control: one line nested
100,000 levels deep, or one 50 MB category value, must not stop a stage nor be copied into
every report, alert and message. This module is the one place those bounds live; it imports
nothing from driftline, so every layer may use it.

Input (ingest and label ingestion refuse what is past these, with a quarantine reason):

``MAX_JSON_DEPTH``   levels of JSON nesting a line or payload may have (64). Python's decoder
                     recurses once per level and fails with a RecursionError near 1000, so
                     depth is measured *before* decoding (:func:`loads`), without recursion.
                     A SageMaker capture record nests 4 levels, its payloads a few more.
``MAX_LINE_CHARS``   characters of one line (one record) of a text object: 32 Mi. SageMaker
                     real-time payloads are at most 6 MB in and 6 MB out; BASE64 in a capture
                     line makes that ~16 MB, so twice that is headroom, not a limit on real
                     traffic. A CSV row is held to the same.
``MAX_VALUE_CHARS``  characters of one value (or key) of a record: 64 Ki. A longer one is not
                     a category, an id or a label; the record is quarantined (``value_too_long``)
                     with the field, the value's length and its SHA-256.

Output (every artifact: reports, Data Docs, violations, alert records and messages, history,
profiles, quarantine files):

``SHOWN_CHARS``      one value from data (a category, an example, an id) is shown whole up to
                     200 characters, else as a preview plus its length and hash (:func:`shown`):
                     ``'zzzz… [50,000,000 chars, sha256 6127a9d9284880d9]'``. The mapping is
                     deterministic and, through the hash, keeps distinct values distinct, so
                     counting capped values counts the values.
``TEXT_CHARS``       a text composed around such values (a violation's description, an alert
                     message, a quarantine reason) is held to 4000 characters the same way.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
MAX_LINE_CHARS = 32 * 1024 * 1024
MAX_VALUE_CHARS = 64 * 1024
SHOWN_CHARS = 200
TEXT_CHARS = 4000


# -- output ------------------------------------------------------------------------------------
def digest(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``text`` (UTF-8; lone surrogates, which JSON
    text may carry, are hashed as they are)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as text of at most ``limit`` characters: itself when it fits, else its
    first characters followed by ``… [<length> chars, sha256 <16 hex digits>]``. Idempotent
    (a shown text fits its limit), so values capped twice or in different stages agree."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    tail = f"… [{len(text):,} chars, sha256 {digest(text)}]"
    return text[:max(0, limit - len(tail))] + tail


def capped(obj: Any, limit: int = TEXT_CHARS) -> Any:
    """A JSON-like structure with every string (keys included) passed through
    :func:`shown` at ``limit``; other values unchanged. Returns ``obj`` itself when nothing
    is too long, so it is cheap on what it does not change."""
    if isinstance(obj, str):
        return obj if len(obj) <= limit else shown(obj, limit)
    if isinstance(obj, dict):
        items = [(capped(k, limit), capped(v, limit)) for k, v in obj.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, obj.items())):
            return obj
        return dict(items)
    if isinstance(obj, (list, tuple)):
        items = [capped(v, limit) for v in obj]
        if all(v is v0 for v, v0 in zip(items, obj)):
            return obj
        return items if isinstance(obj, list) else tuple(items)
    return obj


def too_long(value: str, field: str, limit: int = MAX_VALUE_CHARS) -> str:
    """The quarantine reason of a value longer than ``limit``: field, length, hash and limit."""
    return (f"{field}: a value of {len(value):,} characters (sha256 {digest(value)}) is longer than the "
            f"{limit:,}-character limit of one value")


# -- input -------------------------------------------------------------------------------------
class TooDeep(ValueError):
    """JSON text nested deeper than the limit (a ValueError, as json's own errors are)."""

    def __init__(self, depth: int, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels (the limit of MAX_JSON_DEPTH)")
        self.depth, self.limit = depth, limit


# a JSON string (escapes included, written so the regex engine does not backtrack), or a bracket
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def nesting_past(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """0 when JSON text nests at most ``limit`` levels, else the depth reached (> limit),
    counted without recursion and without decoding (brackets inside strings do not count).
    Text with at most ``limit`` brackets cannot be deeper: that, every ordinary record, is
    decided by two ``str.count`` calls; the scan stops as soon as the limit is passed."""
    if text.count("[") + text.count("{") <= limit:
        return 0
    depth = 0
    for m in _TOKEN.finditer(text):
        c = m.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return depth
        elif c == "]" or c == "}":
            depth -= 1
    return 0


def loads(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses text nested deeper than ``limit`` with :class:`TooDeep`
    before decoding it (other errors are json's ValueErrors, as before)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    depth = nesting_past(text, limit)
    if depth:
        raise TooDeep(depth, limit)
    return json.loads(text)
