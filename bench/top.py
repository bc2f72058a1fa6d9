"""`xl top`'s cost, against a host service of its own:

    python bench/top.py [--frames N] [--domains N] [--idle-seconds S] [--quick]

Figures (wall milliseconds, median and 95th percentile of N frames):
  a frame with 10 domains: the `top` op's round trip on the open
  connection (what the fetch worker does), then the main screen taking
  the answer until its paint has ended (the widgets' updates, layout,
  and the compositor rendering every line in view at the next tick of
  textual's update timer), headless at 200x50                (no aim)
  the same with 1000 domains                            aim: p95 < 100 ms
  the same with 1000 domains, the clock running at 1x            (no aim)
and the CPU `xl top -d 1` uses while idle with 10 domains, the clock
running at 1x: the real command in a real terminal (tmux, 200x50), its
process's CPU time read from /proc over the last part of the run, after
it has started                               aim: under 5% of one core

The domains are small (1 MiB) and idle, each made by the `create` op.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import common  # noqa: F401  (puts the repository first on sys.path)

from tui.app import TopApp  # noqa: E402
from tui.options import Options  # noqa: E402
from tui.screens.top import Fetched, TopScreen  # noqa: E402
from tui.source import Source  # noqa: E402
from xl.client import connect  # noqa: E402

XL = os.path.join(os.path.dirname(sys.executable), "xl")
SMALL_DOMAIN = {"memory": 1, "workload": ["idle"]}
SIZE = (200, 50)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p95


async def _frames(home: str, count: int) -> dict[str, list[float]]:
    """Each frame as the dashboard makes it: the worker's request, its
    answer posted to the screen, and the time until the screen's paint
    that follows has ended (textual paints at its update timer's tick,
    after handling the message and laying out what changed)."""
    app = TopApp(Source(home), Options(delay=3600))
    got = {"fetch": [], "paint": [], "frame": []}
    async with app.run_test(size=SIZE) as pilot:
        while not (isinstance(app.screen, TopScreen) and app.screen.sample is not None):
            await pilot.pause(0.01)
        screen = app.screen
        painted = asyncio.Event()
        paint = screen._compositor_refresh          # where a screen's paint ends

        def paint_and_tell() -> None:
            paint()
            painted.set()
        screen._compositor_refresh = paint_and_tell
        for _ in range(count):
            await pilot.pause(0.01)                 # the app settles; not timed
            painted.clear()
            start = time.perf_counter()
            node = app.source.call("top")
            fetched = time.perf_counter()
            screen.post_message(Fetched(node))
            await asyncio.wait_for(painted.wait(), 10)
            done = time.perf_counter()
            got["fetch"].append(fetched - start)
            got["paint"].append(done - fetched)
            got["frame"].append(done - start)
    return got


def frames(home: str, count: int) -> dict[str, list[float]]:
    return asyncio.run(_frames(home, count))


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def idle_cpu(home: str, seconds: float, settle: float = 5.0) -> tuple[float, float]:
    """`xl top -d 1` in tmux: the share of one core its process used from
    ``settle`` s after it started until ``seconds`` s after that; and the
    CPU seconds its start took."""
    socket = f"xenlab-bench-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    env = {**os.environ, "XL_HOME": home, "TERM": "xterm-256color"}
    subprocess.run([*tmux, "new-session", "-d", "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-s", "top",
                    XL, "top", "-d", "1"], check=True, env=env)
    try:
        pid = int(subprocess.run([*tmux, "display-message", "-p", "-t", "top", "#{pane_pid}"],
                                 capture_output=True, text=True, check=True, env=env).stdout)
        time.sleep(settle)
        cpu0, wall0 = proc_cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = proc_cpu_seconds(pid), time.monotonic()
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "top"], capture_output=True,
                                text=True, env=env).stdout
        if "VBD_WSECT" not in screen:
            raise SystemExit(f"xl top did not show its table:\n{screen}")
        return (cpu1 - cpu0) / (wall1 - wall0), cpu0
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, env=env)


def fill(home: str, domains: int) -> float:
    client = connect(home, autostart=False)
    existing = len(client.call("list")) - 1
    start = time.perf_counter()
    for i in range(existing, domains):
        client.call("create", config={**SMALL_DOMAIN, "name": f"idle{i}"})
    client.close()
    return time.perf_counter() - start


def clock(home: str, action: str) -> None:
    subprocess.run([XL, "clock", action], env={**os.environ, "XL_HOME": home}, check=True,
                   capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50, help="frames per figure (default 50)")
    parser.add_argument("--domains", type=int, default=1000, help="the large host's domains")
    parser.add_argument("--idle-seconds", type=float, default=20.0,
                        help="how long the idle CPU is read (default 20)")
    parser.add_argument("--quick", action="store_true", help="10 frames, 100 domains, 5 s idle")
    args = parser.parse_args()
    count, domains, idle_s = ((10, 100, 5.0) if args.quick
                              else (args.frames, args.domains, args.idle_seconds))
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="xl-top-bench-") as tmp:
        home = os.path.join(tmp, "home")
        env = {**os.environ, "XL_HOME": home}
        subprocess.run([XL, "host", "start", "--cpus", "4", "--memory", "16G"], env=env, check=True,
                       capture_output=True)
        try:
            fill(home, 10)
            if shutil.which("tmux"):
                share, start_cpu = idle_cpu(home, idle_s)
                rows.append((f"CPU of xl top -d 1, idle, 10 domains ({idle_s:g} s), % of a core",
                             (share * 100, None), 5.0))
                notes.append(f"xl top's start (python, textual, first frames): {start_cpu:.2f} CPU s")
            else:
                notes.append("no tmux: the idle CPU figure was not taken")
            clock(home, "freeze")
            for label, got in (("10 domains", frames(home, count)),):
                for part in ("fetch", "paint", "frame"):
                    rows.append((f"{part}, {label}", summary(got[part]), None))
            notes.append(f"creating {domains - 10} more domains: {fill(home, domains):.1f} s")
            got = frames(home, count)
            for part in ("fetch", "paint", "frame"):
                rows.append((f"{part}, {domains} domains", summary(got[part]),
                             100.0 if part == "frame" else None))
            clock(home, "thaw")
            got = frames(home, count)
            for part in ("fetch", "paint", "frame"):
                rows.append((f"{part}, {domains} domains, clock running at 1x", summary(got[part]),
                             None))
        finally:
            subprocess.run([XL, "host", "stop"], env=env, capture_output=True)
    print(f"xl top benchmarks ({platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {count} frames a figure, headless at {SIZE[0]}x{SIZE[1]}; "
          "wall milliseconds)")
    print(f"{'figure':<62} {'median':>8} {'p95':>8} {'aim':>8} {'met':>4}")
    for figure, (median, p95), aim in rows:
        judged = p95 if p95 is not None else median
        p95_text = f"{p95:8.1f}" if p95 is not None else ""
        aim_text = f"<{aim:g}" if aim else ""
        met = ("yes" if judged < aim else "no") if aim else ""
        print(f"{figure:<62} {median:8.1f} {p95_text:>8} {aim_text:>8} {met:>4}")
    for note in notes:
        print(f"  {note}")


if __name__ == "__main__":
    main()
