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
object store PUT is atomic by itself. No file is ever deleted and then written again: a
reader sees the old bytes or the new ones, never nothing in between. ``delete`` removes and
ignores "already gone", so two runs clearing the same folder do not fail each other.

``read_versioned`` / ``write_if`` are the one compare-and-swap the store offers (the lease of
an interval's run, ``driftline.store.lease``, is built on it): create-if-absent and
replace-if-unchanged, on S3 with conditional PUTs (``If-None-Match: *``, ``If-Match: <etag>``:
AWS S3, MinIO and moto honour them), on a local store with a hard link (create) and a file
lock around compare-and-rename (replace).

This module is the store itself (``Store``: atomic writes, compare-and-swap, interval keys).
Beside it, the records kept in the store: ``lease`` (one run at a time per interval),
``versions`` (numbered ``vN`` folders), ``baselines`` (baseline versions and interval pins),
``registry`` and ``models`` (model versions, the champion, loading a model),
``violations`` (per-stage violations and failure records), ``history`` (the metrics history).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import shutil
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


class NotJSON(StoreError, ValueError):
    """A value that JSON cannot hold (a non-finite number) was to be written; names the file."""


class NoSuchObject(StoreError, FileNotFoundError):
    """The object is not in the store: a reader that can do without it catches FileNotFoundError."""


class CorruptObject(StoreError, ValueError):
    """The object is there but its bytes do not parse (truncated in transit, or half-written by
    a tool that does not write atomically). A ValueError too, as json's own error was."""


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


def _is_s3(fs: fsspec.AbstractFileSystem) -> bool:
    return "s3" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _local_write_if(path: str, data: bytes, version: str | None) -> bool:
    """Compare-and-swap of a local file. Create: the bytes go to a temporary file that is then
    hard-linked to the name, which fails if the name exists (O_CREAT|O_EXCL would show a reader
    an empty file until the bytes are written). Replace: under an exclusive lock of a file
    beside it, compare the current bytes' hash and rename over."""
    import fcntl

    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if version is None:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                with open(path, "rb") as f:
                    current = hashlib.sha256(f.read()).hexdigest()
            except FileNotFoundError:
                return False
            if current != version:
                return False
            os.replace(tmp, path)
            return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
        # one PUT (or, past s3fs's block size, one multipart upload completed at once): the
        # object appears whole or not at all
        fs.pipe_file(path, data)


def _remove_local(path: str) -> None:
    """Remove a file or a folder; what is already gone (another run removed it first) is fine."""
    def gone_is_fine(func, p, exc_info):
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except (IsADirectoryError, PermissionError):  # a folder (Linux says EISDIR, macOS EPERM)
        if not os.path.isdir(path):
            raise
        shutil.rmtree(path, onerror=gone_is_fine)


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
        except StoreError:
            raise
        except FileNotFoundError:
            raise NoSuchObject(f"store {self.url}: {what} failed: no such object") from None
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"store {self.url}: {what} failed ({type(exc).__name__}: {exc})") from exc

    def write_bytes(self, rel: str, data: bytes) -> str:
        self._guard(f"writing {rel}", lambda: atomic_write(self.fs, self.path(rel), data))
        return self.uri(rel)

    def read_bytes(self, rel: str) -> bytes:
        return self._guard(f"reading {rel}", lambda: self.fs.cat_file(self.path(rel)))

    def write_json(self, rel: str, obj: Any) -> str:
        try:
            data = dumps(obj)
        except ValueError as exc:  # a non-finite number: name the file, not only the value
            raise NotJSON(f"store {self.url}: writing {rel} failed: {exc} (a non-finite number reached it; "
                             f"the stage that wrote it should have counted it as a bad value)") from exc
        return self.write_bytes(rel, data)

    def read_json(self, rel: str) -> Any:
        data = self.read_bytes(rel)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise CorruptObject(f"store {self.url}: reading {rel} failed: not valid JSON ({exc}; {len(data)} bytes "
                                f"read): the object is truncated or corrupt; re-run the stage that writes it") from None

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

    @contextlib.contextmanager
    def reading(self, rel: str):
        """An open file of the store for reading (a Parquet footer, row ranges): any failure
        inside the block, opening or reading, is a StoreError naming the object."""
        try:
            with self.fs.open(self.path(rel), "rb") as f:
                yield f
        except StoreError:
            raise
        except FileNotFoundError:
            raise NoSuchObject(f"store {self.url}: reading {rel} failed: no such object") from None
        except Exception as exc:  # noqa: BLE001 - any backend or parser error names the object
            raise StoreError(f"store {self.url}: reading {rel} failed ({type(exc).__name__}: {exc})") from exc

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
        """Remove an object or a folder. Idempotent: what is already gone -- never there, or
        removed by another run meanwhile -- is not an error (checking first and then removing
        raced: the second of two runs failed with 'no such object')."""
        p = self.path(rel)

        def rm() -> None:
            if _is_local(self.fs):
                _remove_local(p)
                return
            try:
                self.fs.rm(p, recursive=True)
            except FileNotFoundError:
                pass
            self.fs.invalidate_cache(posixpath.dirname(p))
        self._guard(f"deleting {rel}", rm)

    def put_tree(self, local_dir: str, rel: str, suffixes: tuple[str, ...] | None = None) -> str:
        """Copy a local folder (e.g. built Data Docs) into the store, replacing what was there;
        with suffixes, only the files whose names end with one of them. Each file is replaced
        in place and only then are the files the new tree lacks removed, so a reader never
        finds the folder emptied half-way."""
        written = set()
        for dirpath, _, files in os.walk(local_dir):
            for name in files:
                if suffixes and not name.endswith(suffixes):
                    continue
                src = os.path.join(dirpath, name)
                sub = os.path.relpath(src, local_dir).replace(os.sep, "/")
                with open(src, "rb") as f:
                    self.write_bytes(posixpath.join(rel, sub), f.read())
                written.add(sub)
        for sub in self.files_under(rel):
            if sub not in written:
                self.delete(posixpath.join(rel, sub))
        return self.uri(rel)

    def files_under(self, rel: str) -> list[str]:
        """Paths (relative to rel) of every file below rel; [] when it does not exist."""
        def find() -> list[str]:
            p = self.path(rel)
            self.fs.invalidate_cache(p)
            if not self.fs.exists(p):
                return []
            base = p.rstrip("/") + "/"
            return sorted(x[len(base):] for x in self.fs.find(p) if x.startswith(base))
        return self._guard(f"listing {rel}", find)

    # -- compare-and-swap ------------------------------------------------------------
    def read_versioned(self, rel: str) -> tuple[bytes, str] | None:
        """The object's bytes and a version token for ``write_if``; None when it is absent.
        The token is S3's ETag of exactly these bytes (one GET returns both), or locally a hash
        of them."""
        p = self.path(rel)

        def read() -> tuple[bytes, str] | None:
            if _is_local(self.fs):
                try:
                    with open(p, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    return None
                return data, hashlib.sha256(data).hexdigest()
            return self._s3_get_with_etag(p)
        return self._guard(f"reading {rel}", read)

    def write_if(self, rel: str, data: bytes, version: str | None) -> bool:
        """Write only if the object is unchanged: absent when ``version`` is None, else still
        at ``version`` (from ``read_versioned``). False when another writer got there first --
        read again and decide again."""
        p = self.path(rel)

        def write() -> bool:
            if _is_local(self.fs):
                return _local_write_if(p, data, version)
            if not _is_s3(self.fs):
                raise StoreError(f"store {self.url}: conditional writes need a file:// or s3:// store")
            bucket, key, _ = self.fs.split_path(p)
            cond = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}
            try:
                self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **cond)
            except FileNotFoundError:
                return False  # If-Match on an object removed meanwhile (AWS: 404 NoSuchKey)
            except OSError as exc:
                # s3fs turns the 412 into FileExistsError or a bare OSError(EINVAL); its cause
                # keeps S3's code. 409 ConditionalRequestConflict: another conditional write of
                # the key is in flight -- read again, as S3's documentation says
                cause = getattr(exc.__cause__, "response", None) or {}
                if isinstance(exc, FileExistsError) or cause.get("Error", {}).get("Code") in (
                        "PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
            finally:
                self.fs.invalidate_cache(posixpath.dirname(p))
            return True
        return self._guard(f"writing {rel}", write)

    def _s3_get_with_etag(self, p: str) -> tuple[bytes, str] | None:
        from fsspec.asyn import sync

        bucket, key, _ = self.fs.split_path(p)

        async def get() -> tuple[bytes, str]:
            # s3fs's own client session (credentials and endpoint from the connection) and its
            # retries; one GET, so the ETag is that of the bytes read
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            try:
                body = await resp["Body"].read()
            finally:
                resp["Body"].close()
            return body, resp["ETag"]
        try:
            return sync(self.fs.loop, get)
        except FileNotFoundError:
            return None

    def check_reachable(self) -> None:
        """Fail early, with the store's URL in the message, when the root cannot be reached."""
        def probe() -> None:
            if _is_local(self.fs):
                os.makedirs(self.root, exist_ok=True)
            else:
                self.fs.ls(self.root.split("/")[0], detail=False)
        self._guard("reaching the store", probe)

