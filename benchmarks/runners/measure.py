"""What every runner reports, measured the same way in each tool's own virtualenv.

A runner imports its tool first, calls ``after_imports()``, does the timed work between
``start()`` and ``stop()``, then ``emit()``s one JSON line on stdout:

    {"tool": ..., "seconds": wall seconds of the timed work,
     "peak_rss_mib": the process's peak resident set (getrusage ru_maxrss, imports included),
     "peak_rss_largest_child_mib": the same for its largest child process, if it started any,
     "rss_after_imports_mib": resident set once the tool is imported, before any data is read,
     "drifted": [columns the tool called drifted], ...}

Only the standard library here: this file runs under every runner's interpreter.
"""
from __future__ import annotations

import json
import resource
import sys
import time


def rss_mib() -> float:
    """Current resident set of this process, from /proc/self/status (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmRSS line: the benchmark needs Linux")


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    # ru_maxrss is in KiB on Linux. For RUSAGE_CHILDREN it is the largest single waited-for
    # child's peak, not a sum: worker processes running side by side are added up by the
    # harness, which samples the whole process tree.
    return resource.getrusage(who).ru_maxrss / 1024


class Clock:
    def __init__(self) -> None:
        self.rss_after_imports = rss_mib()
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    def lap(self, name: str) -> float:
        """Seconds since start() or the previous lap, recorded under name."""
        now = time.perf_counter()
        self.laps[name] = now - self._t
        self._t = now
        return self.laps[name]

    def report(self, tool: str, seconds: float, drifted, **extra) -> dict:
        return {
            "tool": tool,
            "seconds": seconds,
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "peak_rss_largest_child_mib": round(peak_rss_mib(resource.RUSAGE_CHILDREN), 1),
            "rss_after_imports_mib": round(self.rss_after_imports, 1),
            "laps": {k: round(v, 4) for k, v in self.laps.items()},
            "drifted": sorted(drifted),
            "python": sys.version.split()[0],
            **extra,
        }


def emit(result: dict) -> None:
    # One line, last on stdout: the harness reads the last line that parses as JSON.
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
