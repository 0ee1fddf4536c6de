"""Print the benchmark results as the Markdown table of the README's "Performance" section.

``python benchmarks/report.py [--smoke]`` reads ``benchmarks/results/*.json`` (the full run's
files, or the smoke run's with ``--smoke``) and prints one table: each figure, the baseline it is
compared with (measured in the same run), their ratio, the target and whether it was met, plus
the machine and the load average while the benchmarks ran.
"""

from __future__ import annotations

import argparse
import calendar
import json
import sys
import time
from typing import Any

from _common import RESULTS, fmt, machine

ORDER = [
    "publish",
    "checkpoint",
    "throughput",
    "catchup",
    "latency",
    "fanout",
    "backend_down",
    "otel_exporter_down",
    "load",
    "storage",
    "redis",
]


def load(smoke: bool) -> list[dict[str, Any]]:
    """The result files in the benchmarks' order."""
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        is_smoke = path.name.endswith(".smoke.json")
        if is_smoke != smoke:
            continue
        data = json.loads(path.read_text())
        if "rows" in data:
            found.append(data)
    found.sort(key=lambda d: ORDER.index(d["benchmark"]) if d["benchmark"] in ORDER else 99)
    return found


def _started(results: list[dict[str, Any]]) -> str:
    """When the first of these benchmarks started."""
    starts = [
        calendar.timegm(time.strptime(r["when"], "%Y-%m-%dT%H:%M:%SZ")) - r.get("seconds", 0)
        for r in results
    ]
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(starts)))


def main() -> int:
    """Print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="report the smoke run's files")
    args = p.parse_args()
    results = load(args.smoke)
    if not results:
        print("no results yet: run `make bench`", file=sys.stderr)
        return 1
    m = results[0]["machine"]
    loads = [r["machine"]["loadavg_start"][0] for r in results] + [
        r["machine"]["loadavg"][0] for r in results
    ]
    print(
        f"Measured on {m['nproc']} cores ({m['cpu_model']}), Python {m['python']}, "
        f"load average {min(loads):.2f}-{max(loads):.2f} during the run "
        f"({_started(results)} to {max(r['when'] for r in results)} UTC). "
        "Each ratio compares with a "
        "baseline measured in the same run."
    )
    print()
    print("| Benchmark | Figure | Value | Baseline (same run) | Ratio | Target | Met |")
    print("|---|---|---:|---|---:|---|:-:|")
    for r in results:
        for row in r["rows"]:
            base = ""
            if row["baseline"] is not None:
                base = f"{row['baseline_name']}: {fmt(row['baseline'], row['unit'])}"
            ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
            met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
            print(
                f"| {r['benchmark']} | {row['figure']} | {fmt(row['value'], row['unit'])} | "
                f"{base} | {ratio} | {row['target'] or ''} | {met} |"
            )
    failures = [f"{r['benchmark']}: {f}" for r in results for f in r["failures"]]
    if failures:
        print()
        print("Correctness failures:")
        for f in failures:
            print(f"- {f}")
    now = machine()
    print()
    print(f"(load average now: {now['loadavg'][0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
