"""Numbered versions in the store: ``v1``, ``v2``, ... folders under a prefix, each complete once
its ``manifest.json`` exists. Baselines (``baselines/<model>/vN``) and model versions
(``models/<model>/vN``) are both numbered this way: a version folder is written once, its
manifest last, and a number is never reused (a folder a crash left without a manifest still
takes its number)."""
from __future__ import annotations

import posixpath
import re

from driftline.store import Store

VERSION_RE = re.compile(r"^v(\d+)$")
MANIFEST = "manifest.json"


def numbered(store: Store, prefix: str) -> list[tuple[int, str]]:
    """Every ``vN`` folder under ``prefix``, complete or not, by number."""
    return sorted((int(m.group(1)), n) for n in store.listdir(prefix) if (m := VERSION_RE.match(n)))


def complete(store: Store, prefix: str) -> list[str]:
    """The versions under ``prefix`` that have their manifest, oldest first."""
    return [n for _, n in numbered(store, prefix) if store.exists(posixpath.join(prefix, n, MANIFEST))]


def next_version(store: Store, prefix: str) -> str:
    """The number after every folder there is, complete or not."""
    return f"v{max((i for i, _ in numbered(store, prefix)), default=0) + 1}"
