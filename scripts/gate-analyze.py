#!/usr/bin/env python3
"""The regression gate's campaign, compared (issue 15): runs `cowbench compare BASE NEW --format json`
on pairs of the runs scripts/gate-campaign.sh made and sums up the exit codes and resolutions.

  gate-analyze.py COWBENCH DIR pairs NAME...        every ordered pair of these identical runs
  gate-analyze.py COWBENCH DIR vs BASE,... NEW,...  each base against each new run
                  [--backend B]                     (the backend whose combined row to show)
"""
import json
import os
import statistics
import subprocess
import sys


def compare(cowbench, d, base, new):
    p = subprocess.run([cowbench, "compare", f"{d}/{base}/results.json", f"{d}/{new}/results.json", "--format", "json"],
                       capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"compare {base} {new} exited {p.returncode}: {p.stderr.strip()}")
    return p.returncode, json.loads(p.stdout)


def wall_rows(j):
    return [r for r in j["rows"] if r["metric"] == "wall_ns"]


def pct(x):
    return "-" if x is None else f"{x * 100:+.0f} %"


def summary(code, j, backend):
    rows = wall_rows(j)
    single = [r["min_detectable_change"] for r in rows if r["workload"] != "*" and r.get("min_detectable_change") is not None]
    combined = {r["backend"]: r for r in rows if r["workload"] == "*"}
    regs = [f'{r["backend"]}/{r["workload"]}/{r["metric"]}' for r in j["rows"] if r["verdict"] == "regression" and r.get("gates")]
    out = {"exit": code, "row_mdc_median": statistics.median(single) if single else None,
           "combined_mdc": [c["min_detectable_change"] for c in combined.values()],
           "combined_change": {b: c["change"] for b, c in combined.items()}, "regressions": regs}
    if backend in combined:
        out["backend_change"] = combined[backend]["change"]
        out["backend_mdc"] = combined[backend]["min_detectable_change"]
    return out


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    cowbench, d, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    backend = "fuse-overlayfs"
    if "--backend" in args:
        i = args.index("--backend")
        backend = args[i + 1]
        del args[i:i + 2]
    if mode == "pairs":
        pairs = [(a, b) for a in args for b in args if a != b]
    elif mode == "vs" and len(args) == 2:
        pairs = [(a, b) for a in args[0].split(",") for b in args[1].split(",")]
    else:
        sys.exit(__doc__)
    results = []
    for a, b in pairs:
        s = summary(*compare(cowbench, d, a, b), backend)
        results.append(s)
        print(f"{a:>6} -> {b:<6} exit {s['exit']}  row MDC median {pct(s['row_mdc_median'])}  "
              f"combined MDC {pct(min(s['combined_mdc']))}..{pct(max(s['combined_mdc']))}  "
              f"{backend} {pct(s.get('backend_change'))} (MDC {pct(s.get('backend_mdc'))})  "
              f"{' '.join(s['regressions'])}")
    fails = sum(1 for s in results if s["exit"] == 1)
    rows = [s["row_mdc_median"] for s in results if s["row_mdc_median"] is not None]
    comb = [m for s in results for m in s["combined_mdc"]]
    changes = [c for s in results for c in s["combined_change"].values()]
    print(f"exit 1 in {fails} of {len(results)} pairs; row MDC median {pct(min(rows))}..{pct(max(rows))} "
          f"(median {pct(statistics.median(rows))}); combined MDC {pct(min(comb))}..{pct(max(comb))} "
          f"(median {pct(statistics.median(comb))}); combined changes {pct(min(changes))}..{pct(max(changes))}")
    bc = [s["backend_change"] for s in results if "backend_change" in s]
    if bc:
        print(f"{backend} combined change median {pct(statistics.median(bc))} ({pct(min(bc))}..{pct(max(bc))}), "
              f"its MDC median {pct(statistics.median([s['backend_mdc'] for s in results if 'backend_mdc' in s]))}")


if __name__ == "__main__":
    main()
