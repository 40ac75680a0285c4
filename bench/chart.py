#!/usr/bin/env python3
"""Draws build/bench/chart.png from build/bench/results.json.

    python3 bench/chart.py [results.json] [chart.png]

One panel per workload, one bar per server: its figure relative to
wsserver's in the same run, on a log scale from 1.0 (= wsserver): a bar to
the right is better than wsserver, to the left worse (for "lower is better"
workloads such as memory the ratio is inverted so this still holds). Each
bar is labelled with the absolute figure. Skipped servers
are listed in the panel with their reason, cut short.
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402


def human(value, unit):
    if unit == "bytes/conn":
        return f"{value:.0f} B/conn" if value < 1024 else f"{value / 1024:.1f} KiB/conn"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= div:
            return f"{value / div:.1f}{suffix} {unit}"
    return f"{value:.0f} {unit}"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results.json"
    dst = sys.argv[2] if len(sys.argv) > 2 else "build/bench/chart.png"
    with open(src) as f:
        data = json.load(f)
    servers = [s["name"] for s in data["servers"]]
    workloads = [w for w in data["workloads"] if any(r["workload"] == w["id"] for r in data["results"])]
    if not workloads:
        sys.exit("no results to draw")
    cols = 2
    rows = math.ceil(len(workloads) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.2 + 0.42 * len(servers) * rows), squeeze=False)
    palette = plt.get_cmap("tab10")
    for i, w in enumerate(workloads):
        ax = axes[i // cols][i % cols]
        results = {r["server"]: r for r in data["results"] if r["workload"] == w["id"]}
        ref_name = w.get("reference_server")
        ref = results.get(ref_name, {}).get("value") if ref_name else None
        names, rel, labels, colors = [], [], [], []
        for j, name in enumerate(servers):
            r = results.get(name)
            if r is None:
                continue
            names.append(name)
            colors.append(palette(j % 10))
            if r["status"] != "ok" or not ref or not r.get("value"):
                rel.append(0.0)
                reason = r.get("reason", "no reference")
                labels.append("skipped: " + (reason[:60] + "…" if len(reason) > 60 else reason))
                continue
            ratio = r["value"] / ref
            shown = ratio if w["higher_is_better"] else (1.0 / ratio if ratio > 0 else 0.0)
            rel.append(shown)
            labels.append(f"{shown:.2f}x  ({human(r['value'], w['unit'])})")
        y = list(range(len(names)))
        measured = [v for v in rel if v > 0]
        lo = min(measured + [1.0]) / 3
        hi = max(measured + [1.0]) * 12
        ax.set_xscale("log")
        ax.set_xlim(max(lo, 1e-3), min(hi, 1e4))
        ax.barh(y, [v - 1.0 if v > 0 else 0.0 for v in rel], left=1.0, color=colors)
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", linewidth=0.8)
        for yy, v, lab in zip(y, rel, labels):
            ax.text(max(v, 1.0) * 1.08, yy, lab, va="center", fontsize=7)
        better = "right of 1 is better" if w["higher_is_better"] else "inverted: right of 1 = less memory"
        ax.set_title(f"{w['label']}\n(vs {ref_name or '-'}; {better})", fontsize=8.5)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelsize=7)
    for k in range(len(workloads), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(
        f"wsbench ({data['mode']} mode, commit {data.get('git_commit') or '?'}): "
        "each server relative to wsserver in the same run, 1.0 = wsserver",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
