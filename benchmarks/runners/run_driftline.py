"""driftline's CLI, called in-process, on the benchmark data, in two stages.

    python runners/run_driftline.py --stage profile --reference R.parquet --profile P.json --exclude label,...
    python runners/run_driftline.py --stage drift --current C.parquet --profile P.json --out D.json --exclude label,... [--workers N]

``profile`` is ``driftline profile`` of the reference set: the stored baseline, made once and
timed on its own. ``drift`` is ``driftline drift`` of the current set against that profile: read,
profile and every drift measure, written to D.json. Each stage runs in a fresh process, so the
drift step's peak memory is its own. The CLI is imported before the clock, as the other tools are.
"""
from __future__ import annotations

import argparse
import importlib
import json
from importlib.metadata import version

import pyarrow.parquet  # noqa: F401
from measure import Clock, emit

import driftline.cli

# The subcommands import their engine lazily; import it here so the clock leaves it out, as it
# leaves out `import evidently` and `import nannyml`. (The multivariate module, scikit-learn, is
# imported only when those checks run, so it stays in the clock when they do.)
for _name in ("driftline.stages.drift", "driftline.stats.measures", "driftline.stats.profile"):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=["profile", "drift"], required=True)
    ap.add_argument("--reference")
    ap.add_argument("--current")
    ap.add_argument("--profile", required=True, help="the reference profile (written by --stage profile)")
    ap.add_argument("--out", help="drift result (--stage drift)")
    ap.add_argument("--exclude", default="", help="comma-separated columns that are not features")
    ap.add_argument("--workers", type=int)
    a = ap.parse_args()
    exclude = ["--exclude", a.exclude] if a.exclude else []

    if a.stage == "profile":
        argv = ["profile", "--data", a.reference, "--out", a.profile, *exclude]
    else:
        argv = ["drift", "--baseline", a.profile, "--current", a.current, "--out", a.out, *exclude]
        if a.workers:
            argv += ["--workers", str(a.workers)]

    clock = Clock()
    clock.start()
    rc = driftline.cli.main(argv)
    clock.lap(a.stage)
    # drift may exit 1 for "drift found" (findings), as `monitor` does for violations.
    if rc not in (0, 1):
        raise SystemExit(f"driftline {' '.join(argv)} exited {rc}")
    seconds = clock.laps[a.stage]

    extra = {"stage": a.stage, "version": version("driftline"), "argv": argv, "exit_status": rc}
    drifted = []
    if a.stage == "drift":
        with open(a.out) as f:
            doc = json.load(f)
        features = doc["features"]
        extra["multivariate"] = doc.get("multivariate")
        extra["columns"] = {name: {k: v for k, v in res.items() if k in ("method", "statistic", "threshold", "pvalue", "drifted")}
                            for name, res in features.items()}
        drifted = [name for name, res in features.items() if res.get("drifted")]
    emit(clock.report("driftline", seconds, drifted, **extra))


if __name__ == "__main__":
    main()
