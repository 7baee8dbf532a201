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
