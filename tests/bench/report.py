#!/usr/bin/env python3
"""The table of tests/bench/run.sh: ops/s per workload and pair, the ratios of
the performance targets with PASS/FAIL, host memory, and a chart.

    report.py --results results.jsonl [--node-ref classic|memory|best]
              [--chart out.png] [--check-complete] [--expect-idle] [--expect-tls]

Reads the JSON lines of run.sh (`many-level bench`, node-bench.js,
idle-guests.js, and run.sh's own "metric" lines). With several rounds of the
same pair it takes the best one (highest ops/s) per workload, and the highest
RSS. --node-ref picks the Node reference pair of the C++/Node ratios:
node-guest x node-host on classic-level (default: a persistent store, like
SQLite), on memory-level, or the faster of the two per workload. The TLS
pair (the C++ pair over tls://) is compared with the C++ pair over plain TCP
of the same run: TLS may cost at most 20% on W2, W4 and W6.

Exit status: 1 with --check-complete when an expected line is missing (a
target missed is reported, never an error: benchmarks are not tests), else 0.
Python 3 standard library only; the chart needs matplotlib (python3-matplotlib)
and falls back to an SVG of the same bars without it.
"""

import argparse
import json
import math
import os
import sys
from collections import defaultdict

WORKLOADS = [
    "W1 sequential put",
    "W2 pipelined put",
    "W3 sequential get",
    "W4 pipelined get",
    "W5 batch",
    "W6 iterate all",
    "W7 getMany",
]
PING_PONG = "ping-pong 30 bytes"

CPP = "cpp-guest/cpp-host-sqlite"
NODE_MEMORY = "node-guest/node-host-memory"
NODE_CLASSIC = "node-guest/node-host-classic"
NODE_ON_CPP = "node-guest/cpp-host-sqlite"
CPP_ON_NODE = "cpp-guest/node-host-classic"
CPP_TLS = "cpp-guest/cpp-host-sqlite-tls"
IN_PROCESS = "sqlite-in-process"
LOOPBACK = "loopback"

PAIRS = [NODE_MEMORY, NODE_CLASSIC, CPP, NODE_ON_CPP, CPP_ON_NODE]
COLUMNS = PAIRS + [CPP_TLS, IN_PROCESS]
SHORT = {
    NODE_MEMORY: "node/node-mem",
    NODE_CLASSIC: "node/node-classic",
    CPP: "cpp/cpp-sqlite",
    NODE_ON_CPP: "node/cpp-sqlite",
    CPP_ON_NODE: "cpp/node-classic",
    CPP_TLS: "cpp/cpp-sqlite tls",
    IN_PROCESS: "sqlite in-process",
}
COLORS = ["#9ecae1", "#3182bd", "#e6550d", "#fdae6b", "#31a354", "#a63603", "#777777"]  # one per column

# C++/Node: at least 5x on these, 2x on the others.
FIVE_X = {"W2 pipelined put", "W4 pipelined get", "W6 iterate all"}
# TLS over plain TCP, C++ guest and host: at least this much on these.
TLS_KEEPS = 0.80
TLS_TARGETED = ["W2 pipelined put", "W4 pipelined get", "W6 iterate all"]
MIB = 1024  # kB in a MiB
HOST_PEAK_LIMIT_MIB = 50
IDLE_LIMIT_MIB = 100


def load(path):
    ops = defaultdict(list)  # (impl, workload) -> [ops_per_s, ...]
    rss = defaultdict(list)  # impl -> [vmhwm_kb, ...]
    before_idle = []
    idle = []
    loads = []
    machine = None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                print(f"report.py: {path}:{number}: not JSON: {line[:80]}", file=sys.stderr)
                continue
            metric = record.get("metric")
            if "workload" in record:
                ops[(record["impl"], record["workload"])].append(float(record["ops_per_s"]))
            elif metric == "host peak rss":
                rss[record["impl"]].append((int(record["vmhwm_kb"]), int(record.get("idle_guests", 0))))
            elif metric == "host peak rss before idle guests":
                before_idle.append(int(record["vmhwm_kb"]))
            elif metric == "idle guests":
                idle.append(record)
            elif metric == "load":
                loads.append(record)
            elif metric == "machine":
                machine = record
    return ops, rss, before_idle, idle, loads, machine


def best(ops, impl, workload):
    values = ops.get((impl, workload))
    return max(values) if values else None


def node_reference(ops, workload, which):
    memory = best(ops, NODE_MEMORY, workload)
    classic = best(ops, NODE_CLASSIC, workload)
    if which == "memory":
        return memory
    if which == "classic":
        return classic
    present = [v for v in (memory, classic) if v is not None]
    return max(present) if present else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ops(value):
    return "-" if value is None else f"{value:,.0f}"


def fmt_spread(values):
    if not values:
        return "-"
    if len(values) == 1:
        return fmt_ops(values[0])
    return f"{fmt_ops(max(values))} ({fmt_ops(min(values))})"


def fmt_ratio(value, percent=False):
    if value is None:
        return "-"
    return f"{value * 100:.0f}%" if percent else f"{value:.2f}x"


def table(headers, rows, align=None):
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    align = align or ["l"] + ["r"] * (len(headers) - 1)

    def line(cells):
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.ljust(widths[i]) if align[i] == "l" else cell.rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":" if a == "r" else ":" + "-" * (w + 1)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def targets(ops, rss, before_idle, idle, node_ref):
    """[(name, measured text, target text, measured/target or None, passed or None)]"""
    out = []
    ref_name = {"classic": "node/node-classic", "memory": "node/node-mem", "best": "best Node pair"}[node_ref]
    for w in WORKLOADS:
        want = 5.0 if w in FIVE_X else 2.0
        r = ratio(best(ops, CPP, w), node_reference(ops, w, node_ref))
        out.append((f"{w[:2]} C++/Node ({ref_name})", fmt_ratio(r), f">= {want:.0f}x", r, None if r is None else r >= want))
    floor = ratio(best(ops, CPP, "W3 sequential get"), best(ops, LOOPBACK, PING_PONG))
    out.append(("W3 / ping-pong floor", fmt_ratio(floor, True), ">= 70%", floor, None if floor is None else floor >= 0.70))
    w5 = ratio(best(ops, CPP, "W5 batch"), best(ops, IN_PROCESS, "W5 batch"))
    out.append(("W5 / in-process SQLite batch", fmt_ratio(w5, True), ">= 70%", w5, None if w5 is None else w5 >= 0.70))
    w6 = ratio(best(ops, CPP, "W6 iterate all"), best(ops, IN_PROCESS, "W6 iterate all"))
    out.append(("W6 / in-process SQLite scan", fmt_ratio(w6, True), ">= 30%", w6, None if w6 is None else w6 >= 0.30))
    for w in WORKLOADS:
        r = ratio(best(ops, NODE_ON_CPP, w), node_reference(ops, w, node_ref))
        out.append((f"{w[:2]} Node guest: C++ host / Node host", fmt_ratio(r), ">= 1.00x", r, None if r is None else r >= 1.0))
    for w in TLS_TARGETED:
        r = ratio(best(ops, CPP_TLS, w), best(ops, CPP, w))
        out.append((f"{w[:2]} C++ over TLS / over TCP", fmt_ratio(r, True), f">= {TLS_KEEPS * 100:.0f}%",
                    r, None if r is None else r >= TLS_KEEPS))
    # The peak through the workloads: hosts that had no idle guests, and the
    # one that had, as it was before they connected.
    workload_peaks = [kb for impl in (CPP, NODE_ON_CPP) for kb, idle_count in rss.get(impl, []) if not idle_count]
    workload_peaks += before_idle
    peak = max(workload_peaks) if workload_peaks else None
    out.append(("C++ host peak RSS, workloads", "-" if peak is None else f"{peak / MIB:.1f} MiB",
                f"< {HOST_PEAK_LIMIT_MIB} MiB", None if peak is None else peak / (HOST_PEAK_LIMIT_MIB * MIB),
                None if peak is None else peak < HOST_PEAK_LIMIT_MIB * MIB))
    if idle:
        worst = max(idle, key=lambda r: r["vmrss_kb"])
        rss_kb = worst["vmrss_kb"]
        out.append((f"C++ host RSS, {worst['guests']} idle guests", f"{rss_kb / MIB:.1f} MiB",
                    f"< {IDLE_LIMIT_MIB} MiB", rss_kb / (IDLE_LIMIT_MIB * MIB), rss_kb < IDLE_LIMIT_MIB * MIB))
    else:
        out.append(("C++ host RSS, idle guests", "-", f"< {IDLE_LIMIT_MIB} MiB", None, None))
    return out


def chart(path, ops, target_rows, node_ref):
    rounds = max((len(v) for v in ops.values()), default=0)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        svg = os.path.splitext(path)[0] + ".svg"
        chart_svg(svg, ops)
        print(f"report.py: matplotlib not found (apt-get install python3-matplotlib): wrote {svg} instead", file=sys.stderr)
        return svg

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 9), gridspec_kw={"height_ratios": [3, 2]})
    width = 0.8 / len(COLUMNS)
    xs = range(len(WORKLOADS))
    for k, impl in enumerate(COLUMNS):
        values = [best(ops, impl, w) or 0 for w in WORKLOADS]
        top.bar([x + (k - (len(COLUMNS) - 1) / 2) * width for x in xs], values, width, label=SHORT[impl], color=COLORS[k])
    floor = best(ops, LOOPBACK, PING_PONG)
    if floor:
        top.axhline(floor, color="black", linestyle=":", linewidth=1)
        top.text(-0.45, floor, "loopback ping-pong floor", va="bottom", ha="left", fontsize=8)
    top.set_yscale("log")
    top.set_ylabel("ops/s (log scale)")
    top.set_xticks(list(xs))
    top.set_xticklabels([w.replace(" ", "\n", 1) for w in WORKLOADS], fontsize=8)
    top.legend(fontsize=8, ncol=3)
    top.set_title("many-level: operations per second by workload (guest/host)" +
                  (f", best of {rounds} rounds" if rounds > 1 else ""))
    top.grid(axis="y", alpha=0.3)

    rows = [r for r in target_rows if r[3] is not None]
    labels = [r[0] for r in rows]
    # For RSS, lower is better: show how much of the limit is left as a score.
    scores = []
    for name, _, want, value, _ in rows:
        if "RSS" in name:
            scores.append(1 / value if value else 0)
        elif want.endswith("%"):
            scores.append(value / (float(want.strip(">= %")) / 100))
        else:
            scores.append(value / float(want.strip(">= x")))
    bar_colors = ["#31a354" if s >= 1 else "#de2d26" for s in scores]
    bottom.barh(range(len(rows)), scores, color=bar_colors)
    bottom.axvline(1.0, color="black", linewidth=1)
    bottom.set_yticks(range(len(rows)))
    bottom.set_yticklabels(labels, fontsize=7)
    bottom.invert_yaxis()
    bottom.set_xscale("log")
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16) if min(scores + [1]) / 2 <= t <= max(scores + [1]) * 2]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([f"{t:g}" for t in ticks])
    bottom.minorticks_off()
    bottom.set_xlabel("measured / target (>= 1 meets it; RSS: limit / measured)")
    bottom.set_title(f"targets (Node reference: {node_ref})", fontsize=10)
    bottom.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def chart_svg(path, ops):
    """The top panel of the chart as a plain SVG (log scale), without matplotlib."""
    width, height, left, bottom_margin, top_margin = 900, 420, 70, 60, 30
    plot_w, plot_h = width - left - 20, height - bottom_margin - top_margin
    values = [v for impl in COLUMNS for w in WORKLOADS for v in [best(ops, impl, w)] if v]
    lo = 10 ** math.floor(math.log10(min(values))) if values else 1
    hi = 10 ** math.ceil(math.log10(max(values))) if values else 10
    span = math.log10(hi) - math.log10(lo) or 1

    def y(v):
        return top_margin + plot_h * (1 - (math.log10(max(v, lo)) - math.log10(lo)) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    decade = lo
    while decade <= hi:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 5}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:,.0f}</text>')
        decade *= 10
    group = plot_w / len(WORKLOADS)
    bar = group * 0.8 / len(COLUMNS)
    for i, w in enumerate(WORKLOADS):
        for k, impl in enumerate(COLUMNS):
            v = best(ops, impl, w)
            if not v:
                continue
            x = left + i * group + group * 0.1 + k * bar
            parts.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar - 1:.1f}" height="{top_margin + plot_h - y(v):.1f}" fill="{COLORS[k]}"/>')
        parts.append(f'<text x="{left + (i + 0.5) * group:.1f}" y="{top_margin + plot_h + 15}" text-anchor="middle">{w}</text>')
    for k, impl in enumerate(COLUMNS):
        parts.append(f'<rect x="{left + k * 115}" y="{height - 25}" width="10" height="10" fill="{COLORS[k]}"/>')
        parts.append(f'<text x="{left + k * 115 + 14}" y="{height - 16}">{SHORT[impl]}</text>')
    parts.append(f'<text x="{left}" y="18">ops/s by workload (log scale)</text></svg>')
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--node-ref", choices=["classic", "memory", "best"], default="classic")
    parser.add_argument("--chart")
    parser.add_argument("--check-complete", action="store_true")
    parser.add_argument("--expect-idle", action="store_true")
    parser.add_argument("--expect-tls", action="store_true")
    args = parser.parse_args()

    ops, rss, before_idle, idle, loads, machine = load(args.results)

    if machine:
        print(f"machine: {machine.get('nproc')} x {machine.get('cpu')}, {machine.get('mem_kb', 0) / MIB / 1024:.1f} GiB, "
              f"{machine.get('kernel')}, {machine.get('gxx')}, node {machine.get('node')}, SQLite {machine.get('sqlite')}; "
              f"scale {machine.get('scale')}, {machine.get('repeat')} round(s), commit {machine.get('commit', '?')}, {machine.get('date', '')}")
    if loads:
        values = [float(r["loadavg"].split()[0]) for r in loads]
        print(f"load average (1 min) before the steps: min {min(values):.2f}, max {max(values):.2f} "
              f"(on {machine.get('nproc') if machine else '?'} cores)")
    print()

    rounds = max((len(v) for v in ops.values()), default=0)
    if rounds > 1:
        print(f"ops/s, best of {rounds} rounds (worst in brackets); columns are guest/host")
    else:
        print("ops/s; columns are guest/host")
    rows = []
    for w in WORKLOADS:
        rows.append([w] + [fmt_spread(ops.get((impl, w))) for impl in COLUMNS])
    print(table(["workload"] + [SHORT[c] for c in COLUMNS], rows))
    print(f"loopback ping-pong floor ({PING_PONG}): {fmt_spread(ops.get((LOOPBACK, PING_PONG)))} round trips/s")
    print()

    print("ratios per workload")
    rows = []
    for w in WORKLOADS:
        cpp = best(ops, CPP, w)
        rows.append([
            w,
            fmt_ratio(ratio(cpp, best(ops, NODE_CLASSIC, w))),
            fmt_ratio(ratio(cpp, best(ops, NODE_MEMORY, w))),
            fmt_ratio(ratio(best(ops, NODE_ON_CPP, w), best(ops, NODE_CLASSIC, w))),
            fmt_ratio(ratio(best(ops, NODE_ON_CPP, w), best(ops, NODE_MEMORY, w))),
            fmt_ratio(ratio(best(ops, CPP_ON_NODE, w), best(ops, NODE_CLASSIC, w))),
            fmt_ratio(ratio(cpp, best(ops, IN_PROCESS, w)), True),
            fmt_ratio(ratio(best(ops, CPP_TLS, w), cpp), True),
        ])
    print(table(["workload", "cpp/cpp vs node/classic", "cpp/cpp vs node/mem", "node/cpp vs node/classic",
                 "node/cpp vs node/mem", "cpp/classic vs node/classic", "cpp/cpp of in-process",
                 "tls of tcp (cpp/cpp)"], rows))
    print()

    print(f"targets (Node reference: {args.node_ref})")
    target_rows = targets(ops, rss, before_idle, idle, args.node_ref)
    rows = [[name, measured, want, "-" if ok is None else ("PASS" if ok else "FAIL")]
            for name, measured, want, _, ok in target_rows]
    print(table(["target", "measured", "wanted", "result"], rows, ["l", "r", "r", "l"]))
    passed = sum(1 for r in target_rows if r[4])
    failed = sum(1 for r in target_rows if r[4] is False)
    print(f"targets: {passed} met, {failed} not met, {len(target_rows) - passed - failed} not measured")
    print()

    print("host memory (VmHWM: peak RSS of the host process over its whole life)")
    rows = []
    for impl in PAIRS + [CPP_TLS]:
        if rss.get(impl):
            peak, idle_count = max(rss[impl])
            rows.append([impl + (f" (incl. {idle_count} idle guests)" if idle_count else ""), f"{peak / MIB:.1f} MiB"])
    if before_idle:
        rows.append([f"{CPP} before idle guests", f"{max(before_idle) / MIB:.1f} MiB"])
    for record in idle:
        rows.append([f"{record['impl']} with {record['guests']} idle guests (VmRSS)",
                     f"{record['vmrss_kb'] / MIB:.1f} MiB (was {record.get('vmrss_before_kb', 0) / MIB:.1f} MiB)"])
    print(table(["host", "peak RSS"], rows, ["l", "r"]))

    if args.chart:
        written = chart(args.chart, ops, target_rows, args.node_ref)
        print(f"\nchart: {written}")

    if args.check_complete:
        missing = []
        hosts = PAIRS + ([CPP_TLS] if args.expect_tls else [])
        for impl in hosts + [IN_PROCESS]:
            for w in WORKLOADS:
                if (impl, w) not in ops:
                    missing.append(f"{impl}: {w}")
        if (LOOPBACK, PING_PONG) not in ops:
            missing.append(f"{LOOPBACK}: {PING_PONG}")
        for impl in hosts:
            if impl not in rss:
                missing.append(f"{impl}: host peak rss")
        if args.expect_idle and not idle:
            missing.append("idle guests")
        if missing:
            print("\nreport.py: missing lines:\n  " + "\n  ".join(missing), file=sys.stderr)
            return 1
        print(f"\nreport.py: all {len(hosts) * len(WORKLOADS) + len(WORKLOADS) + 1} workload lines, "
              f"{len(hosts)} host memory lines{' and the idle guests line' if args.expect_idle else ''} present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
