import os
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from driftline.store import Store, StoreError, interval_key, parse_interval_key


def test_interval_key_round_trip():
    t = datetime(2026, 10, 4, 6, tzinfo=timezone.utc)
    assert interval_key(t) == "2026-10-04T0600Z"
    assert parse_interval_key("2026-10-04T0600Z") == t
    assert Store.run_prefix("churn", t) == "runs/churn/2026-10-04T0600Z"


def test_write_read_and_atomic_replace(tmp_path):
    store = Store(f"file://{tmp_path}/root")
    uri = store.write_json("runs/m/x/a.json", {"v": 1})
    assert uri == f"file://{tmp_path}/root/runs/m/x/a.json"
    store.write_json("runs/m/x/a.json", {"v": 2})
    assert store.read_json("runs/m/x/a.json") == {"v": 2}
    # no temporary files left behind by the write-then-rename
    assert os.listdir(tmp_path / "root/runs/m/x") == ["a.json"]
    t = pa.table({"a": [1, 2]})
    store.write_parquet("p/t.parquet", t)
    assert store.read_parquet("p/t.parquet").equals(t)
    assert store.listdir("runs/m") == ["x"] and store.listdir("nothing/here") == []
    store.delete("runs/m")
    assert not store.exists("runs/m/x/a.json")


def test_json_refuses_nan(tmp_path):
    # NaN is not JSON: artifacts must say null instead, so a bad value fails loudly here.
    store = Store(f"file://{tmp_path}")
    with pytest.raises(ValueError, match="not JSON compliant"):
        store.write_json("x.json", {"v": float("nan")})


def test_unreachable_store_names_the_url(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = Store(f"file://{blocker}/store")
    with pytest.raises(StoreError, match=str(blocker)):
        store.check_reachable()
    with pytest.raises(StoreError, match="unknown protocol|cannot open"):
        Store("nosuchproto://bucket/x")


def test_put_tree_replaces(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.html").write_text("a")
    store = Store(f"file://{tmp_path}/root")
    store.write_text("docs/stale.html", "old")
    store.put_tree(str(src), "docs")
    assert store.listdir("docs") == ["sub"] and store.read_bytes("docs/sub/a.html") == b"a"


def test_s3_store_with_endpoint_down_names_the_url():
    import socket

    import s3fs

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def resolver(url):
        fs = s3fs.S3FileSystem(key="k", secret="s", endpoint_url=f"http://127.0.0.1:{port}", skip_instance_cache=True,
                               config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1, "read_timeout": 1})
        return fs, url.removeprefix("s3://")

    store = Store("s3://driftline/store", resolver=resolver)
    with pytest.raises(StoreError, match="store s3://driftline/store: reaching the store failed"):
        store.check_reachable()
    with pytest.raises(StoreError, match="store s3://driftline/store: writing runs/x.json failed"):
        store.write_json("runs/x.json", {"a": 1})


def test_delete_is_idempotent_and_survives_a_concurrent_delete(tmp_path):
    import threading

    store = Store(f"file://{tmp_path}/root")
    store.delete("never/there")  # nothing to remove: not an error
    for i in range(200):
        store.write_json(f"runs/m/x/violations/s{i}.json", {"i": i})
    errors = []

    def clear():
        try:
            store.delete("runs/m/x/violations")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    # two runs clearing the same folder at once: whichever removes a file first, neither fails
    threads = [threading.Thread(target=clear) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and not store.exists("runs/m/x/violations/s0.json")
    store.write_json("runs/m/x/a.json", {})
    store.delete("runs/m/x/a.json")
    store.delete("runs/m/x/a.json")
    assert store.listdir("runs/m/x") == []


def test_put_tree_never_empties_the_folder(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.html").write_text("new")
    store = Store(f"file://{tmp_path}/root")
    store.write_text("docs/index.html", "old")
    store.write_text("docs/gone.html", "stale")
    seen = []
    write = store.write_bytes

    def spy(rel, data):  # what a reader finds at each write
        seen.append(store.exists("docs/index.html"))
        return write(rel, data)

    monkeypatch.setattr(store, "write_bytes", spy)
    store.put_tree(str(src), "docs")
    assert seen == [True]  # replaced in place, never removed first
    assert store.files_under("docs") == ["index.html"] and store.read_bytes("docs/index.html") == b"new"


def test_a_corrupt_json_object_is_named(tmp_path):
    from driftline.store import CorruptObject, NoSuchObject

    store = Store(f"file://{tmp_path}/root")
    store.write_bytes("runs/m/x/drift.json", b'{"checked": tr')
    with pytest.raises(CorruptObject, match=r"reading runs/m/x/drift.json failed: not valid JSON .*14 bytes read"):
        store.read_json("runs/m/x/drift.json")
    with pytest.raises(ValueError):  # callers that caught json's ValueError still do
        store.read_json("runs/m/x/drift.json")
    with pytest.raises(NoSuchObject, match="reading runs/m/x/nope.json failed: no such object"):
        store.read_json("runs/m/x/nope.json")
    with pytest.raises(FileNotFoundError):
        store.read_json("runs/m/x/nope.json")


def _compare_and_swap(store: Store) -> None:
    import threading

    assert store.read_versioned("l/lease.json") is None
    assert store.write_if("l/lease.json", b"a", None)
    assert not store.write_if("l/lease.json", b"b", None)  # exists: create refused
    data, version = store.read_versioned("l/lease.json")
    assert data == b"a"
    assert store.write_if("l/lease.json", b"c", version)
    assert not store.write_if("l/lease.json", b"d", version)  # changed since: replace refused
    assert store.read_bytes("l/lease.json") == b"c"
    # many writers racing on one version: exactly one wins
    _, version = store.read_versioned("l/lease.json")
    won, barrier = [], threading.Barrier(6)

    def race(i):
        barrier.wait(timeout=10)
        if store.write_if("l/lease.json", f"w{i}".encode(), version):
            won.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(won) == 1 and store.read_bytes("l/lease.json") == f"w{won[0]}".encode()
    # and racing creators of a new object: one wins
    won.clear()
    barrier = threading.Barrier(6)

    def create(i):
        barrier.wait(timeout=10)
        if store.write_if("l/other.json", f"c{i}".encode(), None):
            won.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(won) == 1 and store.read_bytes("l/other.json") == f"c{won[0]}".encode()


def test_compare_and_swap_on_a_local_store(tmp_path):
    _compare_and_swap(Store(f"file://{tmp_path}/root"))
    assert not [n for n in os.listdir(tmp_path / "root/l") if ".tmp-" in n]


@pytest.mark.s3
def test_compare_and_swap_on_s3(s3_server):
    import s3fs

    endpoint, bucket = s3_server

    def resolver(url):
        fs = s3fs.S3FileSystem(key="k", secret="s", endpoint_url=endpoint, skip_instance_cache=True)
        return fs, url.removeprefix("s3://")

    store = Store(f"s3://{bucket}/store", resolver=resolver)
    _compare_and_swap(store)
    assert store.files_under("l") == ["lease.json", "other.json"]
    store.delete("l")
    store.delete("l")  # already gone: fine
    assert store.files_under("l") == []


@pytest.mark.s3
def test_put_tree_and_delete_on_s3(s3_server, tmp_path):
    import s3fs

    endpoint, bucket = s3_server
    store = Store(f"s3://{bucket}/store", resolver=lambda url: (
        s3fs.S3FileSystem(key="k", secret="s", endpoint_url=endpoint, skip_instance_cache=True),
        url.removeprefix("s3://")))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.html").write_text("a")
    store.write_text("docs/stale.html", "old")
    store.write_text("docs/sub/a.html", "older")
    store.put_tree(str(src), "docs")
    assert store.files_under("docs") == ["sub/a.html"] and store.read_bytes("docs/sub/a.html") == b"a"
