"""Seed a deployment with the demo: scenario and baseline written through the Airflow
connection (MinIO in docker-compose). Skips what is already there, so it is safe to run at
every start: ``python -m driftline_airflow.deploy_demo``."""
from __future__ import annotations

import os
import sys


def main() -> int:
    from driftline.demo import generate_demo
    from driftline.stages.baseline import create_baseline
    from driftline.store import Store
    from driftline.store.baselines import list_versions
    from driftline_airflow.runtime import get_store, load_configs, resolver

    demo_root = os.environ["DRIFTLINE_DEMO_ROOT"]
    res = resolver()
    if Store(demo_root, resolver=res).exists("manifest.json"):
        print(f"demo already in {demo_root}")
    else:
        generate_demo(demo_root, resolver=res)
        print(f"demo written to {demo_root}")
    cfg = load_configs().models["churn"]
    store = get_store()
    if list_versions(store, cfg.name):
        print(f"baseline of {cfg.name} already in {store.uri('baselines', cfg.name)}")
    else:
        print(create_baseline(cfg, store, resolver=res)["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
