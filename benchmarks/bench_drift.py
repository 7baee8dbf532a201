#!/usr/bin/env python
"""Drift benchmark: driftline, Evidently and NannyML on the same data, side by side in one run.

    .venv/bin/python benchmarks/bench_drift.py [--rows 1M] [--big-rows 10M]
        [--tools driftline,evidently,nannyml] [--repeat N] [--driftline-workers N]

Run on demand, not in CI: the 1M run takes a few minutes (most of it Evidently), the 10M
driftline row a few more, and the first run installs two virtualenvs.

1. Makes the data with shared/bench/make_data.py (reference and current sets of N rows x 25
   features, 7 of them drifted; truth.json says which) under --data-root, reused when present.
2. Creates benchmarks/.venvs/evidently and benchmarks/.venvs/nannyml from the pinned
   requirements-<tool>.txt, on the Python that file's ``# python:`` line names; reused while the
   requirements file and the interpreter are unchanged.
3. Runs each tool's runner (runners/run_<tool>.py) as a subprocess in its virtualenv, --repeat
   times; each stage is a fresh process that imports the tool, then times reading the Parquet
   files and computing drift, and prints one JSON line (seconds, peak RSS, drifted columns).
   driftline runs in the project's own environment (the interpreter running this script).
4. Scores each tool's drifted columns against truth.json and writes results/drift-<rows>.json
   and results/drift-<rows>.md (the table), and prints the table.

What is compared: driftline's ``drift`` of the current set against a stored reference profile;
NannyML's ``calculate`` with a stored fitted calculator; Evidently's DataDriftPreset report, which
has no stored baseline and reads both sets. Baseline steps (driftline ``profile``, NannyML ``fit``)
are timed and reported on their own.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNNERS = HERE / "runners"
TOOLS = ("driftline", "evidently", "nannyml")
# Tracking opt-outs: NannyML and Evidently phone home on import/use; there is no network here
# (NannyML would retry its upload and print errors), and a benchmark should not send anything.
RUNNER_ENV = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
TARGETS = {"evidently": 100.0, "nannyml": 3.0, "memory_ratio": 1.5}


class BenchError(Exception):
    pass


def parse_rows(s: str) -> int:
    t = s.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a row count like 1000000, 100k or 1M") from None


def rows_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def make_data(make_data_py: Path, n: int, root: Path) -> Path:
    if not make_data_py.is_file():
        raise BenchError(f"{make_data_py}: no such file; pass --make-data PATH (shared/bench/make_data.py)")
    log(f"data: {rows_label(n)} rows under {root} (make_data.py reuses existing files)")
    out = subprocess.run([sys.executable, str(make_data_py), str(n), "--root", str(root)],
                         stdout=subprocess.PIPE, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


def warm_page_cache(*paths: Path) -> None:
    # Every tool then reads the files from memory, not from whichever disk state the first one met.
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


# ---------------------------------------------------------------------------------------------
# Virtualenvs
# ---------------------------------------------------------------------------------------------
def wanted_pythons(requirements: Path) -> list[str]:
    """The ``# python: 3.13 3.12`` line of a requirements file: versions in order of preference."""
    for line in requirements.read_text().splitlines():
        if line.startswith("# python:"):
            return line.split(":", 1)[1].split()
    raise BenchError(f"{requirements}: no '# python: X.Y' line saying which interpreter the pins were made on")


def find_python(version: str) -> str | None:
    candidates = [shutil.which(f"python{version}"),
                  *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")), reverse=True),
                  f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for c in candidates:
        if not c or not os.path.exists(c):
            continue
        # pyenv's shims exist for every version but fail unless that version is selected.
        r = subprocess.run([c, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == version:
            return c
    return None


def ensure_venv(tool: str, venvs: Path, python_override: str | None, reinstall: bool) -> tuple[Path, dict]:
    """The venv's python for tool, creating or refreshing the venv; and what was done."""
    requirements = HERE / f"requirements-{tool}.txt"
    if python_override:
        if not (os.path.isfile(python_override) and os.access(python_override, os.X_OK)):
            raise BenchError(f"--python-{tool} {python_override}: not an executable file")
        base = python_override
    else:
        versions = wanted_pythons(requirements)
        base = next((p for v in versions if (p := find_python(v))), None)
        if base is None:
            raise BenchError(f"{tool}: no Python {' or '.join(versions)} found (tried python{versions[0]} on PATH, "
                             f"~/.pyenv/versions, /usr/bin); install one or pass --python-{tool} PATH")
    base_version = subprocess.run([base, "-c", "import sys; print(sys.version.split()[0])"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    venv = venvs / tool
    py = venv / "bin" / "python"
    stamp_file = venv / ".bench-stamp"
    stamp = hashlib.sha256(requirements.read_bytes() + base_version.encode()).hexdigest()
    info = {"venv": str(venv), "python": base_version, "requirements": str(requirements.relative_to(REPO))}
    if not reinstall and py.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return py, {**info, "installed": False}

    log(f"{tool}: creating {venv} on Python {base_version} ({base}) from {requirements.name}")
    shutil.rmtree(venv, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip_log = venvs / f"{tool}-pip.log"
    with open(pip_log, "w") as f:
        r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
                           stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = "".join(pip_log.read_text().splitlines(keepends=True)[-15:])
        raise BenchError(f"{tool}: pip install -r {requirements.name} failed (exit {r.returncode}); "
                         f"full log {pip_log}; last lines:\n{tail}")
    stamp_file.write_text(stamp)
    seconds = time.perf_counter() - t0
    log(f"{tool}: installed in {seconds:.0f}s")
    return py, {**info, "installed": True, "install_seconds": round(seconds, 1)}


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def tree_pss_bytes(root: int) -> int:
    """Proportional set size of a process and all its descendants, summed.

    PSS, not RSS: forked workers share their parent's pages (the imported libraries), and
    summing their RSS would count those pages once per process."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
                parent[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0
    for p in tree:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:")) * 1024
        except (OSError, StopIteration):
            pass
    return total


def machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK  # all but idle and iowait


def run_runner(python: Path | str, tool: str, args: list[str], log_path: Path) -> dict:
    """One runner process: its JSON result, plus what the harness saw from outside.

    Outside view: the whole process tree's memory (PSS), sampled every 50 ms (worker processes
    are in it; getrusage in the runner sees only itself and its largest child), the tree's CPU
    seconds, and the CPU seconds the rest of the machine used meanwhile, this harness's sampling
    left out (other jobs on a shared 2-core machine are the main source of noise in timings)."""
    cmd = [str(python), str(RUNNERS / f"run_{tool}.py"), *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    peak = [0]

    def sample(pid: int, done: threading.Event) -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_pss_bytes(pid))

    def cpu(who: int) -> float:
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    cpu0, self0, busy0 = cpu(resource.RUSAGE_CHILDREN), cpu(resource.RUSAGE_SELF), machine_busy_seconds()
    with open(log_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **RUNNER_ENV})
        done = threading.Event()
        sampler = threading.Thread(target=sample, args=(proc.pid, done), daemon=True)
        sampler.start()
        stdout, _ = proc.communicate()
        done.set()
        sampler.join()
    cpu1, self1, busy1 = cpu(resource.RUSAGE_CHILDREN), cpu(resource.RUSAGE_SELF), machine_busy_seconds()
    if proc.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-20:])
        raise BenchError(f"{tool}: {' '.join(cmd)} exited {proc.returncode}; stderr in {log_path}:\n{tail}")
    result = next((json.loads(line) for line in reversed(stdout.splitlines()) if line.startswith("{")), None)
    if result is None:
        raise BenchError(f"{tool}: {' '.join(cmd)} printed no JSON result line; stderr in {log_path}")
    own, harness = cpu1 - cpu0, self1 - self0
    result["harness"] = {"tree_peak_pss_mib_sampled": round(peak[0] / 2**20, 1), "process_cpu_seconds": round(own, 2),
                         "harness_cpu_seconds": round(harness, 2),
                         "other_cpu_seconds": round(max(0.0, busy1 - busy0 - own - harness), 2)}
    return result


def run_once(tool: str, python: Path | str, data: Path, truth: dict, tag: str, workers: int = 1) -> tuple[dict | None, dict]:
    """One run of a tool on one dataset: its baseline step's result (None for Evidently) and the compared step's."""
    ref, cur = data / "reference.parquet", data / "current.parquet"
    work = data / "work"
    features = ",".join(truth["feature_columns"])
    exclude = ",".join(truth["other_columns"])
    if tool == "driftline":
        profile = work / "driftline-ref-profile.json"
        base = run_runner(python, tool, ["--stage", "profile", "--reference", str(ref), "--profile", str(profile),
                                         "--exclude", exclude], work / f"{tag}-profile.log")
        run = run_runner(python, tool, ["--stage", "drift", "--current", str(cur), "--profile", str(profile),
                                        "--out", str(work / "driftline-drift.json"), "--exclude", exclude,
                                        "--workers", str(workers)], work / f"{tag}-drift.log")
        return base, run
    if tool == "nannyml":
        calc = work / "nannyml-calculator.pkl"
        base = run_runner(python, tool, ["--stage", "fit", "--reference", str(ref), "--calculator", str(calc),
                                         "--features", features], work / f"{tag}-fit.log")
        run = run_runner(python, tool, ["--stage", "calculate", "--current", str(cur), "--calculator", str(calc),
                                        "--features", features], work / f"{tag}-calculate.log")
        return base, run
    return None, run_runner(python, tool, ["--reference", str(ref), "--current", str(cur), "--features", features],
                            work / f"{tag}.log")


def peak_mib(run: dict) -> float:
    """A run's peak memory: getrusage's for one process; the sampled tree's PSS when workers ran beside it."""
    return max(run["peak_rss_mib"], run["harness"]["tree_peak_pss_mib_sampled"])


def score(drifted: list[str], truth: dict) -> dict:
    want, got = set(truth["drifted_columns"]), set(drifted)
    return {"found": sorted(want & got), "missed": sorted(want - got), "false_positives": sorted(got - want)}


WHAT = {"driftline": "drift vs stored profile", "nannyml": "read + calculate (stored fitted calculator)",
        "evidently": "DataDriftPreset report (reads both sets)"}
BASELINE_WHAT = {"driftline": "profile reference", "nannyml": "read + fit + store calculator"}


def summarise(res: dict, truth: dict) -> list[dict]:
    """Table rows for one tool at one size: the compared step, plus NannyML's fit + calculate."""
    runs, base = res["runs"], res["baseline_runs"]
    what = WHAT[res["tool"]] + (f", --workers {res['workers']}" if res["workers"] else "")
    row = {"tool": res["tool"], "rows": res["rows"], "workers": res["workers"], "what": what,
           "seconds": statistics.median(r["seconds"] for r in runs), "seconds_min": min(r["seconds"] for r in runs),
           "seconds_all": [round(r["seconds"], 4) for r in runs],
           "peak_rss_mib": max(peak_mib(r) for r in runs),
           "rss_after_imports_mib": max(r["rss_after_imports_mib"] for r in runs),
           "other_cpu_seconds": [r["harness"]["other_cpu_seconds"] for r in runs],
           "drifted": runs[-1]["drifted"], "same_answer_every_run": len({tuple(r["drifted"]) for r in runs}) == 1,
           **score(runs[-1]["drifted"], truth)}
    if base:
        row["baseline_step"] = {"what": BASELINE_WHAT[res["tool"]],
                                "seconds": statistics.median(r["seconds"] for r in base),
                                "seconds_all": [round(r["seconds"], 4) for r in base],
                                "peak_rss_mib": max(peak_mib(r) for r in base)}
    rows = [row]
    if res["tool"] == "nannyml":
        both = [b["seconds"] + r["seconds"] for b, r in zip(base, runs)]
        rows.append({**{k: v for k, v in row.items() if k != "baseline_step"}, "what": "read + fit + calculate",
                     "seconds": statistics.median(both), "seconds_min": min(both), "seconds_all": [round(x, 4) for x in both],
                     "peak_rss_mib": max(row["peak_rss_mib"], row["baseline_step"]["peak_rss_mib"])})
    return rows


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
            "os": platform.platform(), "python_driftline": platform.python_version()}


def driftline_source() -> dict:
    """Which driftline was measured: the commit, and files under include/ changed since it."""
    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    return {"commit": git("rev-parse", "HEAD") or None,
            "uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "include").splitlines()]}


def times(x: float) -> str:
    """A ratio, with the digits that decide a target like 3x: 2.99x, 67.1x."""
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def driftline_row(rows: list[dict], n: int, workers: int) -> dict | None:
    return next((r for r in rows if r["tool"] == "driftline" and r["rows"] == n and r["workers"] == workers), None)


def markdown(rows: list[dict], workers0: int, repeat: int) -> str:
    out = [f"| tool | rows | what is timed | seconds (median of {repeat}) | min s | peak RSS MiB | drifted found | missed "
           f"| false positives | speed-up vs driftline |",
           "|---|---|---|---:|---:|---:|---|---|---|---:|"]
    for r in rows:
        ref = driftline_row(rows, r["rows"], workers0)
        s = r["seconds"] / ref["seconds"] if ref else None
        n_true = len(r["found"]) + len(r["missed"])
        out.append(f"| {r['tool']} | {rows_label(r['rows'])} | {r['what']} | {r['seconds']:.2f} | {r['seconds_min']:.2f} "
                   f"| {r['peak_rss_mib']:.0f} | {len(r['found'])}/{n_true} | {', '.join(r['missed']) or '-'} "
                   f"| {', '.join(r['false_positives']) or '-'} | {'-' if s is None else times(s)} |")
    base = [r for r in rows if "baseline_step" in r and r["workers"] in (None, workers0)]
    if base:
        out += ["", "Baseline step, made once and not in the comparison:", "",
                f"| tool | rows | what is timed | seconds (median of {repeat}) | peak RSS MiB |", "|---|---|---|---:|---:|"]
        out += [f"| {r['tool']} | {rows_label(r['rows'])} | {r['baseline_step']['what']} | {r['baseline_step']['seconds']:.2f} "
                f"| {r['baseline_step']['peak_rss_mib']:.0f} |" for r in base]
    return "\n".join(out)


def targets(rows: list[dict], small: int, big: int | None, workers0: int) -> list[dict]:
    out = []
    dl = driftline_row(rows, small, workers0)
    for tool, goal in (("evidently", TARGETS["evidently"]), ("nannyml", TARGETS["nannyml"])):
        r = next((r for r in rows if r["tool"] == tool and r["rows"] == small and r["what"] == WHAT[tool]), None)
        if r and dl:
            s = r["seconds"] / dl["seconds"]
            out.append({"target": f"driftline (--workers {workers0}) >= {goal:g}x faster than {tool} at {rows_label(small)}",
                        "value": f"{times(s)} ({r['seconds']:.2f} s / {dl['seconds']:.2f} s)", "met": s >= goal})
    dl_big = driftline_row(rows, big, workers0) if big else None
    if dl and dl_big:
        ratio = dl_big["peak_rss_mib"] / dl["peak_rss_mib"]
        out.append({"target": f"driftline peak RSS at {rows_label(big)} <= {TARGETS['memory_ratio']}x that at {rows_label(small)}",
                    "value": f"{ratio:.2f}x ({dl_big['peak_rss_mib']:.0f} / {dl['peak_rss_mib']:.0f} MiB)",
                    "met": ratio <= TARGETS["memory_ratio"]})
    for r in rows:
        if r["tool"] == "driftline":
            out.append({"target": f"driftline (--workers {r['workers']}) finds every injected drift with no false positive "
                                  f"at {rows_label(r['rows'])}",
                        "value": f"{len(r['found'])} found, missed {', '.join(r['missed']) or 'none'}, "
                                 f"false positives {', '.join(r['false_positives']) or 'none'}",
                        "met": not r["missed"] and not r["false_positives"]})
    return out


def render(doc: dict) -> str:
    """The Markdown of a results document: a header line, the tables, the targets, any errors."""
    host, started = doc["machine"], datetime.fromisoformat(doc["started"])
    head = (f"{started:%Y-%m-%d %H:%M} UTC, {host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB; "
            + ", ".join(f"{t} {v}" for t, v in doc["versions"].items()))
    return "\n".join([head, "", markdown(doc["table"], doc["driftline_workers"][0], doc["repeat"]), "", "Targets:", "",
                      *[f"- [{'x' if g['met'] else ' '}] {g['target']}: {g['value']}" for g in doc["targets"]]]
                     + (["", "Errors:", "", *[f"- {k}: {v}" for k, v in doc["errors"].items()]] if doc["errors"] else []))


def worker_counts(s: str) -> list[int]:
    try:
        counts = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: want worker counts like 1 or 1,2")
    return counts


def write_results(stem: Path, doc: dict, md: str) -> Path:
    """stem.json and stem.md, each written whole then renamed into place; prints the table."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.json.tmp").write_text(json.dumps(doc, indent=2))
    os.replace(f"{stem}.json.tmp", f"{stem}.json")
    Path(f"{stem}.md.tmp").write_text(md + "\n")
    os.replace(f"{stem}.md.tmp", f"{stem}.md")
    print(md)
    return stem


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=parse_rows, default=parse_rows("1M"), help="rows per set for every tool (default 1M)")
    ap.add_argument("--big-rows", default="10M", help="rows per set for driftline alone; 0 to skip (default 10M)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated, from %(default)s")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; median seconds and max peak RSS are reported")
    ap.add_argument("--driftline-workers", type=worker_counts, default=[1],
                    help="driftline drift --workers; a list (1,2) gives a row each, the first is the one compared (default 1)")
    ap.add_argument("--data-root", type=Path, default=Path(os.environ.get("DRIFTLINE_BENCH_DATA", HERE / "data")),
                    help="datasets go to <root>/n<rows>/ (default: DRIFTLINE_BENCH_DATA or %(default)s)")
    ap.add_argument("--make-data", type=Path, default=REPO.parent / "shared" / "bench" / "make_data.py",
                    help="the data generator (default: %(default)s)")
    ap.add_argument("--venvs", type=Path, default=HERE / ".venvs", help="where the tools' virtualenvs go (default: %(default)s)")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where results go (default: %(default)s)")
    ap.add_argument("--reinstall", action="store_true", help="recreate the tools' virtualenvs")
    ap.add_argument("--python-evidently", help="base interpreter for Evidently's venv (default: from its requirements file)")
    ap.add_argument("--python-nannyml", help="base interpreter for NannyML's venv (default: from its requirements file)")
    a = ap.parse_args(argv)
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    if bad := [t for t in tools if t not in TOOLS]:
        ap.error(f"--tools: unknown {', '.join(bad)}; choose from {', '.join(TOOLS)}")
    big = parse_rows(a.big_rows) if a.big_rows not in ("", "0") and "driftline" in tools else None
    workers0 = a.driftline_workers[0]

    started = datetime.now(timezone.utc)
    results, errors, envs = [], {}, {}
    pythons: dict[str, Path | str] = {"driftline": sys.executable}
    for tool in tools:
        if tool == "driftline":
            continue
        try:
            pythons[tool], envs[tool] = ensure_venv(tool, a.venvs, getattr(a, f"python_{tool}"), a.reinstall)
        except (BenchError, subprocess.CalledProcessError) as exc:
            errors[tool] = str(exc)
            log(f"{tool}: SKIPPED: {exc}")

    plan = [(a.rows, [t for t in tools if t in pythons])] + ([(big, ["driftline"])] if big else [])
    truths: dict[int, dict] = {}
    for n, plan_tools in plan:
        data = make_data(a.make_data, n, a.data_root)
        truth = truths[n] = json.loads((data / "truth.json").read_text())
        warm_page_cache(data / "reference.parquet", data / "current.parquet")
        variants = [(t, w) for t in plan_tools for w in (a.driftline_workers if t == "driftline" else [None])]
        runs = {v: {"tool": v[0], "rows": n, "workers": v[1], "runs": [], "baseline_runs": []} for v in variants}
        # Round robin, not one tool after the other: load from other jobs on the machine then
        # falls on every tool alike instead of on whichever ran while it lasted.
        for i in range(a.repeat):
            for tool, workers in variants:
                if f"{tool}@{rows_label(n)}" in errors:
                    continue
                name = f"{tool} {rows_label(n)}" + (f" --workers {workers}" if workers else "")
                try:
                    tag = f"{tool}-{rows_label(n)}" + (f"-w{workers}" if workers else "") + f"-{i + 1}"
                    base, run = run_once(tool, pythons[tool], data, truth, tag, workers)
                except BenchError as exc:
                    errors[f"{tool}@{rows_label(n)}"] = str(exc)
                    log(f"{name}: FAILED: {exc}")
                    continue
                runs[tool, workers]["runs"].append(run)
                if base:
                    runs[tool, workers]["baseline_runs"].append(base)
                log(f"{name} run {i + 1}/{a.repeat}: {run['seconds']:.2f}s, peak {peak_mib(run):.0f} MiB, "
                    f"other jobs {run['harness']['other_cpu_seconds']:.1f} CPU-s, drifted {','.join(run['drifted'])}"
                    + (f"; baseline step {base['seconds']:.2f}s" if base else ""))
        results += [r for r in runs.values() if r["runs"]]

    for res in results:  # per-column detail once per tool, from its last run, keeps the JSON readable
        for run in res["runs"][:-1]:
            run.pop("columns", None)

    rows = [row for res in results for row in summarise(res, truths[res["rows"]])]
    goals = targets(rows, a.rows, big, workers0)
    versions = {r["tool"]: r["runs"][-1].get("version") for r in results}
    doc = {"benchmark": "drift", "started": started.isoformat(timespec="seconds"),
           "command": " ".join(["python", *sys.argv] if argv is None else ["bench_drift.py", *argv]),
           "machine": machine(), "versions": versions, "driftline_source": driftline_source(), "venvs": envs,
           "data": {"rows": a.rows, "big_rows": big, "root": str(a.data_root),
                    "drifted_columns": truths[a.rows]["drifted_columns"] if a.rows in truths else None},
           "repeat": a.repeat, "driftline_workers": a.driftline_workers,
           "table": rows, "targets": goals, "errors": errors, "raw": results}
    stem = write_results(a.results / f"drift-{rows_label(a.rows)}", doc, render(doc))
    print(f"\nwritten: {stem}.json, {stem}.md", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench_drift: {exc}", file=sys.stderr)
        sys.exit(2)
