"""The ``driftline`` command: the library's stages from a shell, without Airflow.

    driftline validate [FILE ...]                 check model files (default: every file in the monitors folder)
    driftline demo [--root URL] [--days N]        write the demo scenario (training data, model, capture, labels)
    driftline baseline --model NAME [--if-missing] [--absorb-feedback]
                                                  build a new baseline version from the training data
                                                  (absorbing the answers to drift alerts, if asked)
    driftline baseline-import --model NAME --statistics URI --constraints URI
                                                  import a SageMaker Model Monitor baseline
    driftline monitor --model NAME --start T --end T
                                                  run ingest, data quality, drift and model quality over every
                                                  interval in [start, end)
    driftline labels --model NAME [--since T] [--force]
                                                  ingest the labels that arrived (by arrival day)
    driftline reevaluate --model NAME [--as-of T]  re-evaluate the model quality of intervals whose labels changed
    driftline alerts --model NAME [--since T]     the alert history: every message raised, where it was delivered
    driftline history --model NAME [--since T] [--until T]   the history view, written to metrics/<model>/history.html
    driftline feedback --model NAME --alert ID --kind false_positive|expected|acknowledged --by WHO [--comment C]
                                                  answer an alert; false positive / expected suppress the check a while
    driftline models --model NAME                 list the registered model versions; mark the champion and its baseline
    driftline rollback --model NAME --to vN       make an earlier model version (and its baseline) the champion again
    driftline retrain --model NAME [--end T] [--window 14d] [--as-of T] [--dry-run]
                                                  train a challenger on recent labelled traffic, compare it with the
                                                  champion on the latest rows, promote it if it is better
    driftline profile --data FILE --out FILE       profile a dataset once (a reference for `drift`)
    driftline drift --baseline REF --current FILE  drift between two datasets: JSON out

The store is ``--store`` or ``DRIFTLINE_STORE_URL`` (default ``file://<project>/data/store``);
``s3://`` locations take credentials from the environment, as boto does (AWS_* variables,
``AWS_ENDPOINT_URL`` for MinIO). Exit status: 0 ok, 1 findings (``monitor`` with violations),
2 bad input or configuration, 3 store unreachable. ``drift`` exits 1 when it finds drift.

Bad input exits 2 with a message naming the argument and its value, before any work is done:
times are ISO dates/times from 1970-01-01 to before 2200-01-01 (driftline.config.EARLIEST /
LATEST), durations are like 36h, 2d, 90m, 1w; versions are vN; ``monitor`` covers at most
MAX_MONITOR_INTERVALS intervals of the model's schedule at once.
"""
from __future__ import annotations

import argparse
import math
import os
import posixpath
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from driftline.config import (
    EARLIEST,
    LATEST,
    MODEL_NAME_RE,
    ConfigError,
    ModelConfig,
    default_demo_root,
    default_monitors_dir,
    default_store_url,
    load_all,
    load_model_config,
    parse_duration,
    time_range_problem,
)
from driftline.store import Store, StoreError, interval_key

#: ``monitor`` refuses a range of more intervals than this (an hourly year is 8760): a typo in
#: --end (9999-12-31) must not start millions of runs.
MAX_MONITOR_INTERVALS = 10_000
_VERSION_RE = re.compile(r"^v\d+$")


class ArgumentError(ValueError):
    """A command-line argument is wrong in a way only the command can tell (a range of dates
    against the model's schedule); the message names the argument and its value."""


# -- argument types: argparse reports their errors as "argument --x: <message>", exit 2 --------
def _time(s: str) -> datetime:
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an ISO date/time like 2026-10-01 or 2026-10-01T06:00Z") \
            from None
    t = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    if problem := time_range_problem(t):
        raise argparse.ArgumentTypeError(f"{s!r}: {problem}")
    return t


def _duration(s: str) -> timedelta:
    try:
        d = parse_duration(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except OverflowError:
        d = timedelta.max
    if not timedelta(0) < d <= LATEST - EARLIEST:
        raise argparse.ArgumentTypeError(f"{s!r}: a duration must be positive and at most "
                                         f"{(LATEST - EARLIEST).days} days")
    return d


def _version(s: str) -> str:
    if not _VERSION_RE.match(s):
        raise argparse.ArgumentTypeError(f"{s!r} is not a version like v3 (see `driftline models` / the baselines)")
    return s


def _model_name(s: str) -> str:
    if not re.match(MODEL_NAME_RE, s):
        raise argparse.ArgumentTypeError(f"{s!r} is not a model name (a letter, then letters, digits, _ or -)")
    return s


def _count(least: int):
    def parse(s: str) -> int:
        try:
            n = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a whole number") from None
        if n < least:
            raise argparse.ArgumentTypeError(f"{s!r}: must be at least {least}")
        return n
    return parse


def _number(low: float, high: float, *, low_open: bool = False):
    def parse(s: str) -> float:
        try:
            x = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
        if not (math.isfinite(x) and (x > low if low_open else x >= low) and x <= high):
            raise argparse.ArgumentTypeError(f"{s!r}: must lie in {'(' if low_open else '['}{low:g}, {high:g}]")
        return x
    return parse


def _source(s: str) -> str:
    """A data location: a URL is taken as it is (checked when read), a local path must exist."""
    if "://" not in s and not Path(s).exists():
        raise argparse.ArgumentTypeError(f"{s!r}: no such file or folder")
    return s


def _out(s: str) -> str:
    """A file to write: its folder must exist (found out before the work, not after it)."""
    if not Path(s).resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"{s!r}: folder {str(Path(s).resolve().parent)!r} does not exist")
    if Path(s).is_dir():
        raise argparse.ArgumentTypeError(f"{s!r} is a folder, not a file")
    return s


def _nonblank(s: str) -> str:
    if not s.strip():
        raise argparse.ArgumentTypeError(f"{s!r}: must not be blank")
    return s


def _store(args) -> Store:
    """The store of --store, with a scheme fsspec knows (an unknown one is bad input, exit 2,
    not an unreachable store, exit 3). Checked here, not at parse time, so that a bad
    DRIFTLINE_STORE_URL does not stop the commands that use no store."""
    _known_scheme("--store", args.store)
    return Store(args.store)


def _known_scheme(arg: str, url: str) -> None:
    import fsspec

    scheme = url.split("://", 1)[0] if "://" in url else "file"
    if scheme not in fsspec.available_protocols():
        raise ArgumentError(f"argument {arg}: {url!r}: unknown scheme {scheme!r} (file://, s3://, ...)")


def _monitors(args) -> Path:
    folder = Path(args.monitors)
    if not folder.is_dir():
        raise ArgumentError(f"argument --monitors: {args.monitors!r} is not a folder (of model files)")
    return folder


def _model(args) -> ModelConfig:
    if args.config:
        return load_model_config(args.config)
    loaded = load_all(_monitors(args))
    if args.model not in loaded.models:
        bad = [str(e) for e in loaded.errors.values()]
        raise ConfigError(str(args.monitors), [f"--model: no valid model named {args.model!r} "
                                               f"(found {sorted(loaded.models)})", *bad])
    return loaded.models[args.model]


def cmd_validate(args) -> int:
    files = [Path(f) for f in args.files] or sorted(_monitors(args).glob("*.y*ml"))
    if not files:
        print(f"no model files in {args.monitors}", file=sys.stderr)
        return 2
    bad = 0
    for f in files:
        try:
            cfg = load_model_config(f)
            print(f"ok    {f}: model {cfg.name} ({cfg.problem_type}, {len(cfg.features)} features, {cfg.schedule})")
        except ConfigError as exc:
            bad += 1
            print(f"ERROR {exc}")
    return 2 if bad else 0


def cmd_demo(args) -> int:
    from driftline.demo import generate_demo

    root = args.root or default_demo_root()
    _known_scheme("--root", root)
    manifest = generate_demo(root, days=args.days, seed=args.seed, rows_per_hour=args.rows_per_hour,
                             label_delay=timedelta(hours=args.label_delay_hours))
    starts = manifest.get("interval_starts", [])
    print(f"demo scenario written to {root}: {args.days} days from {starts[0] if starts else '?'}; "
          f"drift from {manifest.get('drift_day')}; manifest: {root.rstrip('/')}/manifest.json")
    return 0


def cmd_baseline(args) -> int:
    from driftline.stages.baseline import create_baseline
    from driftline.store.baselines import list_versions

    cfg, store = _model(args), _store(args)
    if args.if_missing and (versions := list_versions(store, cfg.name)):
        print(f"baseline {cfg.name}/{versions[-1]} exists; nothing to do (drop --if-missing for a new version)")
        return 0
    out = create_baseline(cfg, store, training_data=args.training_data, absorb_feedback=args.absorb_feedback)
    print(out["summary"])
    return 0


def cmd_baseline_import(args) -> int:
    from driftline.stages.baseline import import_sagemaker_baseline

    out = import_sagemaker_baseline(_model(args), _store(args), args.statistics, args.constraints)
    print(out["summary"])
    return 0


def interval_starts(cfg: ModelConfig, start: datetime, end: datetime,
                    limit: int | None = None) -> list[tuple[datetime, datetime]]:
    """The schedule's data intervals that lie within [start, end); at most limit + 1 of them
    (the caller tells "too many" without listing millions)."""
    from croniter import croniter  # the cron library Airflow itself schedules with

    out = []
    ticks = croniter(cfg.cron, start - timedelta(seconds=1))
    t = ticks.get_next(datetime)
    while (e := ticks.get_next(datetime)) <= end and (limit is None or len(out) <= limit):
        out.append((t, e))
        t = e
    return out


def cmd_monitor(args) -> int:
    from driftline.pipeline.interval import monitor_interval
    from driftline.pipeline.summary import interval_summary_lines, next_step, summary_block

    if args.end <= args.start:
        raise ArgumentError(f"argument --end: {interval_key(args.end)} is not after --start {interval_key(args.start)}")
    cfg = _model(args)
    intervals = interval_starts(cfg, args.start, args.end, limit=MAX_MONITOR_INTERVALS)
    if not intervals:
        raise ArgumentError(f"arguments --start/--end: no complete {cfg.schedule} interval of {cfg.name} in "
                            f"[{interval_key(args.start)}, {interval_key(args.end)})")
    if len(intervals) > MAX_MONITOR_INTERVALS:
        raise ArgumentError(f"arguments --start/--end: [{interval_key(args.start)}, {interval_key(args.end)}) holds "
                            f"more than {MAX_MONITOR_INTERVALS} {cfg.schedule} intervals of {cfg.name} (the most one "
                            f"`driftline monitor` runs); give a shorter range")
    store = _store(args)
    worst = 0
    for a, b in intervals:
        out = monitor_interval(cfg, store, a, b, baseline=args.baseline,
                               by=f"{os.environ.get('USER') or 'unknown'} (driftline monitor --baseline)")
        lines = []
        for stage, res in out["stages"].items():
            lines += interval_summary_lines(stage, res)
        print(summary_block(f"{cfg.name} {out['interval']}: {out['status'].upper()}", lines, out["artifacts"],
                            next_step=next_step("run", out, cfg.name), report=out.get("report")))
        worst = max(worst, 1 if out["violations"] else 0)
    return worst


def cmd_labels(args) -> int:
    from driftline.stages.labels import sync_labels

    cfg = _model(args)
    if cfg.labels is None:
        print(f"driftline: model {cfg.name} has no labels section", file=sys.stderr)
        return 2
    out = sync_labels(cfg, _store(args), since=args.since, force=args.force)
    print(out["summary"])
    return 0


def cmd_reevaluate(args) -> int:
    from driftline.pipeline.reevaluate import reevaluate
    from driftline.stages.labels import sync_labels

    cfg = _model(args)
    store = _store(args)
    now = args.as_of
    if cfg.labels is not None:
        print(sync_labels(cfg, store, now=now)["summary"])
    out = reevaluate(cfg, store, now=now)
    print(out["summary"])
    return 0


def cmd_models(args) -> int:
    from driftline.store.registry import baseline_of, champion, list_model_versions

    cfg, store = _model(args), _store(args)
    versions = list_model_versions(store, cfg.name)
    if not versions:
        print(f"{cfg.name}: no registered model versions in {store.uri('models', cfg.name)} (the first "
              f"`driftline retrain` registers baseline.model as v1)")
        return 0
    record = champion(store, cfg.name) or {}
    metric = cfg.retrain_metric
    print(f"{cfg.name}: {len(versions)} model version(s); champion {record.get('version', '-')} with baseline "
          f"{record.get('baseline') or '-'} (* = champion; {metric} on its retraining holdout)")

    def score(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    rows = [("", "version", "created", "origin", metric, "vs champion", "baseline", "parent", "run")]
    for m in reversed(versions):
        held = (m.get("scores") or {}).get("holdout") or {}
        is_champion = m["version"] == record.get("version")
        rows.append(("*" if is_champion else "", m["version"], m.get("created_at", "-"), m.get("origin", "-"),
                     score(held.get("challenger")), score(held.get("champion")),
                     (record.get("baseline") if is_champion else baseline_of(store, cfg.name, m["version"])) or "-",
                     m.get("parent") or "-", m.get("run_id") or "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_alerts(args) -> int:
    """The alert history: every message raised, oldest first, with where it was delivered."""
    from driftline.stages.alerts import read_events

    cfg, store = _model(args), _store(args)
    since = interval_key(args.since) if args.since else None  # keys like 2026-10-04T0000Z sort as times do
    events = [e for e in read_events(store, cfg.name) if since is None or str(e["interval"]) >= since]
    if not events:
        print(f"{cfg.name}: no alerts in {store.uri('alerts', cfg.name)}")
        return 0
    for e in events:
        routes = ", ".join(sorted(d["route"] for d in e.get("deliveries", []))) or "log only"
        print(f"{e['interval']}  {e['event'].upper():<8} {e['severity']:<8} {e['check']}: {e['text']}  [{routes}]"
              f"  id {e['incident_key']}")
    print(f"{len(events)} message(s): {sum(e['event'] == 'firing' for e in events)} firing, "
          f"{sum(e['event'] == 'resolved' for e in events)} resolved")
    return 0


def cmd_history(args) -> int:
    """Write the history view of a model (over a range) as one page in the store."""
    from driftline.render.history import load_history, render_history

    if args.since and args.until and args.until <= args.since:
        raise ArgumentError(f"argument --until: {interval_key(args.until)} is not after --since "
                            f"{interval_key(args.since)}")
    cfg, store = _model(args), _store(args)
    data = load_history(store, cfg.name, since=args.since, until=args.until)
    uri = store.write_text(posixpath.join("metrics", cfg.name, "history.html"), render_history(data))
    first = data.get("first") or {}
    print(f"{cfg.name}: {len(data['intervals'])} interval(s); first drift {first.get('drift') or '-'}, first "
          f"violations {first.get('violations') or '-'}; {len(data['incidents'])} incident(s) -> {uri}")
    for p in data.get("problems", []):
        print(f"  note: {p}")
    return 0


def cmd_feedback(args) -> int:
    """A person's answer to an alert incident (see driftline.stages.feedback)."""
    from driftline.stages import answers, feedback

    cfg, store = _model(args), _store(args)
    if not args.alert:
        for r in answers.read_all(store, cfg.name):
            print(f"{r['at'][:19]}  {r['incident_key']}  {answers.note(r)}")
        return 0
    done = feedback.record(cfg, store, args.alert, args.kind, args.by, args.comment or "")  # FeedbackError: exit 2
    rec = done.record
    if not done.new:  # the same answer again: nothing recorded, and not an error (a retried command)
        print(f"{rec['incident_key']}: already answered, nothing new recorded: {answers.note(rec)}")
    else:
        print(f"{rec['incident_key']}: {'answer changed: ' if done.replaced else ''}{answers.note(rec)}")
    return 0


def cmd_rollback(args) -> int:
    from driftline.store.registry import rollback

    cfg = _model(args)
    print(rollback(_store(args), cfg.name, args.to, actor="cli")["summary"])
    return 0


def cmd_retrain(args) -> int:
    from driftline.stages.labels import sync_labels
    from driftline.stages.retrain import RetrainError, evaluate, prepare, promote, run_prefix, train

    cfg, store = _model(args), _store(args)
    now = datetime.now(timezone.utc)
    end = args.end or now
    window = args.window
    as_of = args.as_of
    run_id = args.run_id or f"cli__{now.strftime('%Y%m%dT%H%M%SZ')}"
    try:
        run_prefix(cfg.name, run_id)  # before the labels are synced: a bad id is found at once
    except RetrainError as exc:
        raise ArgumentError(f"argument --run-id: {exc}") from None
    if cfg.labels is not None:
        print(sync_labels(cfg, store, now=as_of)["summary"])
    print(prepare(cfg, store, run_id, end, window=window, as_of=as_of)["summary"])
    print(train(cfg, store, run_id)["summary"])
    decision = evaluate(cfg, store, run_id)
    print(decision["summary"])
    if decision["promote"]:
        print("dry run: nothing promoted" if args.dry_run else promote(cfg, store, run_id, actor="cli")["summary"])
    return 0


def _columns(args, schema_kinds: dict[str, str]) -> dict[str, str]:
    """Column -> feature type: the model file's features, else the data's schema, then
    --features/--exclude."""
    if args.config or args.model:
        cfg = _model(args)
        kinds = cfg.feature_types
    else:
        kinds = schema_kinds
    if args.features:
        wanted = [c.strip() for c in args.features.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in kinds]
        if unknown:
            raise ConfigError("--features", [f"{unknown} are not columns of the data (it has {sorted(kinds)})"])
        kinds = {c: kinds[c] for c in wanted}
    if args.exclude:
        drop = {c.strip() for c in args.exclude.split(",") if c.strip()}
        unknown = sorted(drop - set(kinds))
        if unknown:  # a misspelt column would otherwise be compared after all
            raise ConfigError("--exclude", [f"{unknown} are not columns of the data (it has {sorted(kinds)})"])
        kinds = {c: t for c, t in kinds.items() if c not in drop}
    if not kinds:
        raise ConfigError("--features", ["no columns left to compare"])
    return kinds


def _settings(args):
    from driftline.config import DriftSettings

    base = _model(args).drift if (args.config or args.model) else DriftSettings()
    changes = {k: v for k, v in (("small_sample", getattr(args, "small_sample", None)),
                                 ("drift_share", getattr(args, "drift_share", None)),
                                 ("multivariate", False if getattr(args, "no_multivariate", False) else None))
               if v is not None}
    return base.model_copy(update=changes) if changes else base


def _write_out(doc: dict, out: str | None) -> None:
    from driftline.store import dumps

    data = dumps(doc)
    if out:
        Path(out).write_bytes(data)
    else:
        sys.stdout.write(data.decode() + "\n")


def cmd_profile(args) -> int:
    from driftline.stages.drift import open_source, reference_document, reference_from_source

    data, schema_kinds = open_source(args.data)
    kinds = _columns(args, schema_kinds)
    settings = _settings(args)
    ref = reference_from_source(data, kinds, bins=settings.bins, sample_rows=0)
    _write_out(reference_document(ref), args.out)
    if args.out:
        print(f"profiled {ref.profile.rows} rows x {len(kinds)} columns of {args.data} -> {args.out}", file=sys.stderr)
    return 0


def _load_reference(path: str):
    """--baseline: a `driftline profile` JSON, a baseline version folder, or a data file."""
    import json

    import pyarrow.parquet as pq

    from driftline.stages.drift import reference_from_document

    p = Path(path)
    if p.is_dir() and (p / "profile.json").exists():
        sample = pq.read_table(p / "reference_sample.parquet").to_pandas() if (p / "reference_sample.parquet").exists() else None
        ref = reference_from_document(json.loads((p / "profile.json").read_text()), sample)
        for name, attr in (("importance.json", "importance"), ("multivariate.json", "multivariate")):
            if (p / name).exists():
                doc = json.loads((p / name).read_text())
                setattr(ref, attr, doc["importance"] if attr == "importance" else doc)
        if ref.importance:
            ref.importance_source = "permutation importance (baseline)"
        return ref
    if p.suffix == ".json":
        return reference_from_document(json.loads(p.read_text()))
    return None


def cmd_drift(args) -> int:
    from driftline.stages.drift import detect_drift, findings, open_source

    settings = _settings(args)
    ref = _load_reference(args.baseline)
    if ref is not None:
        kinds = _columns(args, ref.kinds)
        ref.kinds = kinds
    else:
        ref, schema_kinds = open_source(args.baseline)
        kinds = _columns(args, schema_kinds)
    overrides = {f.name: f.drift for f in _model(args).features} if (args.config or args.model) else None
    result = detect_drift(ref, args.current, kinds=kinds, settings=settings, overrides=overrides, workers=args.workers)
    _write_out({"baseline": args.baseline, "current": args.current, **result}, args.out)
    if args.out:
        print(result["summary"], file=sys.stderr)
        for line in findings(result):
            print(f"  - {line}", file=sys.stderr)
    return 1 if result.get("dataset", {}) and result["dataset"]["drifted"] else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driftline", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=default_store_url(), help="artifact store root URL (default: %(default)s)")
    p.add_argument("--monitors", default=str(default_monitors_dir()), help="folder of model files (default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check model files")
    v.add_argument("files", nargs="*")
    v.set_defaults(fn=cmd_validate)

    d = sub.add_parser("demo", help="write the demo scenario")
    d.add_argument("--root", help="where to write it (default: DRIFTLINE_DEMO_ROOT or <project>/data/demo)")
    d.add_argument("--days", type=_count(1), default=7)
    d.add_argument("--seed", type=_count(0), default=7)
    d.add_argument("--rows-per-hour", type=_count(1), default=120)
    d.add_argument("--label-delay-hours", type=_number(0, 24 * 365), default=48.0)
    d.set_defaults(fn=cmd_demo)

    def model_args(sp):
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--model", type=_model_name, help="model name (a file in the monitors folder)")
        g.add_argument("--config", type=_source, help="path of a model file")

    b = sub.add_parser("baseline", help="build a new baseline version")
    model_args(b)
    b.add_argument("--training-data", type=_source, help="override the model file's baseline.training_data")
    b.add_argument("--if-missing", action="store_true", help="do nothing when the model already has a baseline")
    b.add_argument("--absorb-feedback", action="store_true",
                   help="absorb the answers to drift alerts given since the baseline in use was made: 'expected' "
                        "intervals become the feature's reference, 'false positive' widens its threshold")
    b.set_defaults(fn=cmd_baseline)

    bi = sub.add_parser("baseline-import", help="import a SageMaker Model Monitor baseline")
    model_args(bi)
    bi.add_argument("--statistics", required=True, type=_source)
    bi.add_argument("--constraints", required=True, type=_source)
    bi.set_defaults(fn=cmd_baseline_import)

    m = sub.add_parser("monitor", help="every stage over the intervals in [start, end)")
    model_args(m)
    m.add_argument("--start", required=True, type=_time)
    m.add_argument("--end", required=True, type=_time)
    m.add_argument("--baseline", metavar="vN", type=_version,
                   help="judge the intervals against this baseline version instead of the one pinned when each was "
                        "first evaluated (recorded in the interval's baseline.json; default: keep the pin)")
    m.set_defaults(fn=cmd_monitor)

    lb = sub.add_parser("labels", help="ingest the labels that arrived")
    model_args(lb)
    lb.add_argument("--since", type=_time, help="first arrival day to look at (default: the model's start date - labels.lookback)")
    lb.add_argument("--force", action="store_true", help="read every arrival day again, even those whose objects did not change")
    lb.set_defaults(fn=cmd_labels)

    re_ = sub.add_parser("reevaluate", help="re-evaluate intervals whose labels changed")
    model_args(re_)
    re_.add_argument("--as-of", type=_time, help="evaluate with the labels arrived by this time (default: now)")
    re_.set_defaults(fn=cmd_reevaluate)

    mo = sub.add_parser("models", help="list the registered model versions")
    model_args(mo)
    mo.set_defaults(fn=cmd_models)

    al = sub.add_parser("alerts", help="the alert history: every message raised and where it went")
    model_args(al)
    al.add_argument("--since", type=_time, help="only intervals from this one on (e.g. 2026-10-04)")
    al.set_defaults(fn=cmd_alerts)

    hi = sub.add_parser("history", help="write the history view (drift, quality, alerts over time) as one page")
    model_args(hi)
    hi.add_argument("--since", type=_time, help="first interval start to show (e.g. 2026-10-01)")
    hi.add_argument("--until", type=_time, help="show intervals starting before this (e.g. 2026-10-08)")
    hi.set_defaults(fn=cmd_history)

    fb = sub.add_parser("feedback", help="answer an alert: acknowledged, false_positive or expected")
    model_args(fb)
    fb.add_argument("--alert", type=_nonblank, help="the alert's id or incident key (see `driftline alerts`); none: list the answers")
    fb.add_argument("--kind", choices=["acknowledged", "false_positive", "expected"], default="acknowledged")
    fb.add_argument("--by", default=os.environ.get("USER", ""), help="who answers (default: $USER)")
    fb.add_argument("--comment", help="why, e.g. 'summer promotion, expected until the 15th'")
    fb.set_defaults(fn=cmd_feedback)

    rb = sub.add_parser("rollback", help="make an earlier model version the champion again")
    model_args(rb)
    rb.add_argument("--to", required=True, metavar="vN", type=_version, help="the model version to serve (see `driftline models`)")
    rb.set_defaults(fn=cmd_rollback)

    rt = sub.add_parser("retrain", help="train a challenger and promote it if it beats the champion")
    model_args(rt)
    rt.add_argument("--end", type=_time, help="end of the recent window (default: now)")
    rt.add_argument("--window", type=_duration, help="recent labelled traffic to use, e.g. 14d (default: retraining.window)")
    rt.add_argument("--as-of", type=_time, help="use the labels arrived by this time (default: now)")
    rt.add_argument("--run-id", help="name of the run's folder under models/<model>/retraining (default: cli__<now>)")
    rt.add_argument("--dry-run", action="store_true", help="decide, but promote nothing")
    rt.set_defaults(fn=cmd_retrain)

    def column_args(sp):
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--model", type=_model_name,
                       help="take column types and drift settings from this model (monitors folder)")
        g.add_argument("--config", type=_source, help="take column types and drift settings from this model file")
        sp.add_argument("--features", help="comma-separated columns to compare (default: all)")
        sp.add_argument("--exclude", help="comma-separated columns to leave out (e.g. label,pred_proba)")

    pr = sub.add_parser("profile", help="profile a dataset once, as a reference for `drift`")
    pr.add_argument("--data", required=True, type=_source, help="Parquet or CSV file (path or URL)")
    pr.add_argument("--out", type=_out, help="where to write the profile JSON (default: stdout)")
    column_args(pr)
    pr.set_defaults(fn=cmd_profile)

    dr = sub.add_parser("drift", help="drift between a reference and a current dataset")
    dr.add_argument("--baseline", required=True, type=_source,
                    help="reference: a `driftline profile` JSON, a baseline version folder, or a Parquet/CSV file")
    dr.add_argument("--current", required=True, type=_source, help="current data: Parquet or CSV file (path or URL)")
    dr.add_argument("--out", type=_out, help="where to write drift JSON (default: stdout)")
    dr.add_argument("--workers", type=_count(1), default=1, help="processes profiling a large Parquet file (default 1)")
    dr.add_argument("--small-sample", type=_count(1), help="tests at or below this many values, distances above (1000)")
    dr.add_argument("--drift-share", type=_number(0, 1, low_open=True), help="share of drifted features that is dataset drift (0.5)")
    dr.add_argument("--no-multivariate", action="store_true", help="skip the multivariate checks")
    column_args(dr)
    dr.set_defaults(fn=cmd_drift)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on a bad argument (its message is printed), 0 on --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return args.fn(args)
    except ArgumentError as exc:
        print(f"driftline {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"driftline: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - one readable line, not a traceback, for known failures
        from driftline.stages.retrain import RetrainError
        from driftline.store.baselines import BaselineError
        from driftline.store.registry import RegistryError

        if isinstance(exc, (BaselineError, RegistryError, RetrainError, FileNotFoundError, ValueError)):
            print(f"driftline: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
