#!/usr/bin/python3
"""plot.py: charts of one compare run (python3-matplotlib, from Debian).

    /usr/bin/python3 tools/compare/plot.py results/<timestamp>/

Reads results.json there and writes, beside it:
  rps.png  requests/s per model, one panel per scenario
  p99.png  p99 latency per model (the PINGs' in `slow`), one panel per scenario
  cpu.png  the server's CPU (in cores) over time, a line per model, one panel per scenario
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402


def measured(runs, scenario):
    return [r for r in runs if r["scenario"] == scenario and "skipped" not in r]


def focus_p99(run):
    # slow's table shows the PINGs' latency: the first request of the mix
    by_request = run["load"]["by_request"]
    return by_request[0]["latency_ms"]["p99"] if by_request else run["load"]["latency_ms"]["p99"]


def name(run):
    """The short label compare's tables use (01 ... 07, nginx, "03 blocking"), else the binary's name."""
    return run.get("label") or run["model"]


def bars(runs, scenarios, value, ylabel, title, path):
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4 * len(scenarios), 3.8), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        rows = measured(runs, scenario)
        ax.bar(range(len(rows)), [value(r) for r in rows], color="tab:blue")
        ax.set_xticks(range(len(rows)), [name(r) for r in rows], rotation=45, ha="right",
                      fontsize="small" if len(rows) > 8 else None)
        ax.set_title(scenario)
        ax.set_ylabel(ylabel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cpu_lines(runs, scenarios, cpus, path):
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4 * len(scenarios), 3.6), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        for r in measured(runs, scenario):
            timeline = r["server"]["cpu_timeline"]
            ax.plot([t for t, _ in timeline], [c for _, c in timeline], label=name(r))
        ax.axhline(cpus, color="grey", linestyle=":", linewidth=1)  # every core busy
        ax.set_title(scenario)
        ax.set_xlabel("seconds")
        ax.set_ylabel("server CPU (cores)")
        ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize="small")
    fig.suptitle("server CPU over time (dotted: all cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: plot.py RESULTS_DIR (a directory compare wrote)")
    out = Path(sys.argv[1])
    try:
        data = json.loads((out / "results.json").read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"plot.py: cannot read {out / 'results.json'}: {e}")
    runs = data["runs"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in runs if "skipped" not in r))
    if not scenarios:
        sys.exit("plot.py: no measured run to draw")
    bars(runs, scenarios, lambda r: r["load"]["rps"], "requests/s", "throughput (higher is better)", out / "rps.png")
    bars(runs, scenarios, focus_p99, "p99 ms", "p99 latency (lower is better)", out / "p99.png")
    cpu_lines(runs, scenarios, data["machine"]["cpus"], out / "cpu.png")
    print(f"plot.py: {out / 'rps.png'}, {out / 'p99.png'}, {out / 'cpu.png'}")


if __name__ == "__main__":
    main()
