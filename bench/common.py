"""What the benchmark scripts share: repeated runs and the table they print."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def repeat(fn, n, times: int) -> tuple[float, float, float]:
    """Median, lowest and highest of ``times`` runs of ``fn(n)``: a shared
    machine's noise shows as spread, and the median stands against it. Each
    run starts with the machines of the runs before it collected: they are
    cyclic garbage, and left in place every collection during the next run
    would walk them."""
    results = []
    for _ in range(times):
        gc.collect()
        results.append(fn(n))
    return statistics.median(results), min(results), max(results)


def print_table(title: str, runs: int, rows) -> None:
    """rows: (figure, (median, low, high), aim or None, ">=" or "<=")."""
    print(f"{title}  ({platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; median of {runs} runs, [low-high])")
    print(f"{'figure':<46} {'measured':>10} {'range':>21} {'aim':>10} {'ratio':>6}")
    for name, (value, low, high), aim, sense in rows:
        spread = f"[{low:,.2f}-{high:,.2f}]" if low != high else ""
        if min(value, low) >= 10:
            spread = f"[{low:,.0f}-{high:,.0f}]" if low != high else ""
        shown = f"{value:,.0f}" if value >= 10 else f"{value:,.3f}"
        if aim is None:
            print(f"{name:<46} {shown:>10} {spread:>21}")
            continue
        ratio = value / aim if sense == ">=" else aim / value
        print(f"{name:<46} {shown:>10} {spread:>21} {sense + format(aim, ','):>10} "
              f"{ratio:>5.2f}x")
