"""The artifact store: one root URL (``file://...`` or ``s3://bucket/prefix``) shared by
every task, reached through fsspec.

driftline never builds an S3 client by hand. Which filesystem serves a URL is decided by
a *resolver*, a callable ``url -> (fsspec filesystem, path)``. The default resolver is
``fsspec.url_to_fs`` (credentials from the environment, as boto does); inside Airflow the
DAG layer passes one built from ``ObjectStoragePath(url, conn_id=...)`` so credentials
come from an Airflow connection.

Layout under the root::

    baselines/<model>/<version>/{statistics.json,constraints.json,expectations.json,...}
    runs/<model>/<interval>/{batch.parquet,quarantine.jsonl,constraint_violations.json,...}
    metrics/<model>/history.parquet
    alerts/<model>/<alert_key>.json
    models/<model>/<version>/...

Writes are atomic: a local file is written beside its target and renamed over it; an
object store PUT is atomic by itself.
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

Resolver = Callable[[str], tuple[fsspec.AbstractFileSystem, str]]


class StoreError(RuntimeError):
    """The store (or a data location) cannot be reached or read."""


def default_resolver(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def as_utc(t: datetime) -> datetime:
    """A plain ``datetime`` in UTC (naive means UTC). Airflow hands tasks pendulum DateTimes,
    whose ``astimezone(timezone.utc)`` cannot be compared with a stdlib aware datetime."""
    u = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=timezone.utc)


def interval_key(start: datetime) -> str:
    """Folder name of a data interval, from its start: '2026-10-04T0000Z' (UTC)."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H%MZ")


def parse_interval_key(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H%MZ").replace(tzinfo=timezone.utc)


def json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, default=json_default, allow_nan=False).encode()


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def atomic_write(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    if _is_local(fs):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        fs.pipe_file(path, data)


class Store:
    """Artifacts of every model under one root URL."""

    def __init__(self, root_url: str, resolver: Resolver | None = None):
        self.url = root_url.rstrip("/")
        self.resolver = resolver or default_resolver
        try:
            self.fs, self.root = self.resolver(self.url)
        except Exception as exc:  # noqa: BLE001 - any backend error means the same to the user
            raise StoreError(f"store {self.url}: cannot open ({type(exc).__name__}: {exc})") from exc
        self.root = self.root.rstrip("/")

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- addresses -------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def uri(self, *parts: str) -> str:
        """Full URL of an artifact, for logs and reports."""
        return posixpath.join(self.url, *parts) if parts else self.url

    @staticmethod
    def run_prefix(model: str, interval_start: datetime) -> str:
        return posixpath.join("runs", model, interval_key(interval_start))

    @staticmethod
    def baseline_prefix(model: str, version: str) -> str:
        return posixpath.join("baselines", model, version)

    # -- primitives ----------------------------------------------------------------
    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FileNotFoundError:
            raise StoreError(f"store {self.url}: {what} failed: no such object") from None
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"store {self.url}: {what} failed ({type(exc).__name__}: {exc})") from exc

    def write_bytes(self, rel: str, data: bytes) -> str:
        self._guard(f"writing {rel}", lambda: atomic_write(self.fs, self.path(rel), data))
        return self.uri(rel)

    def read_bytes(self, rel: str) -> bytes:
        return self._guard(f"reading {rel}", lambda: self.fs.cat_file(self.path(rel)))

    def write_json(self, rel: str, obj: Any) -> str:
        return self.write_bytes(rel, dumps(obj))

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_text(self, rel: str, text: str) -> str:
        return self.write_bytes(rel, text.encode())

    def write_parquet(self, rel: str, table: pa.Table, row_group_size: int | None = None) -> str:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", row_group_size=row_group_size)
        return self.write_bytes(rel, buf.getvalue())

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        def read() -> pa.Table:
            with self.fs.open(self.path(rel), "rb") as f:
                return pq.read_table(f, columns=columns)
        return self._guard(f"reading {rel}", read)

    def exists(self, rel: str) -> bool:
        def check() -> bool:
            p = self.path(rel)
            self.fs.invalidate_cache(posixpath.dirname(p))  # a cached listing may predate the file
            return self.fs.exists(p)
        return bool(self._guard(f"checking {rel}", check))

    def listdir(self, rel: str) -> list[str]:
        """Names (not paths) directly under rel; [] when it does not exist."""
        def ls() -> list[str]:
            p = self.path(rel)
            # s3fs keeps listings without expiry, and Airflow caches the filesystem per connection:
            # a long-lived reader (the API server's driftline page) would never see new runs
            self.fs.invalidate_cache(p)
            if not self.fs.exists(p):
                return []
            return sorted(posixpath.basename(x.rstrip("/")) for x in self.fs.ls(p, detail=False))
        return self._guard(f"listing {rel}", ls)

    def delete(self, rel: str) -> None:
        p = self.path(rel)
        if self._guard(f"checking {rel}", lambda: self.fs.exists(p)):
            self._guard(f"deleting {rel}", lambda: self.fs.rm(p, recursive=True))

    def put_tree(self, local_dir: str, rel: str, suffixes: tuple[str, ...] | None = None) -> str:
        """Copy a local folder (e.g. built Data Docs) into the store, replacing what was there;
        with suffixes, only the files whose names end with one of them."""
        self.delete(rel)
        for dirpath, _, files in os.walk(local_dir):
            for name in files:
                if suffixes and not name.endswith(suffixes):
                    continue
                src = os.path.join(dirpath, name)
                sub = os.path.relpath(src, local_dir).replace(os.sep, "/")
                with open(src, "rb") as f:
                    self.write_bytes(posixpath.join(rel, sub), f.read())
        return self.uri(rel)

    def check_reachable(self) -> None:
        """Fail early, with the store's URL in the message, when the root cannot be reached."""
        def probe() -> None:
            if _is_local(self.fs):
                os.makedirs(self.root, exist_ok=True)
            else:
                self.fs.ls(self.root.split("/")[0], detail=False)
        self._guard("reaching the store", probe)

