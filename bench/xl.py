"""The `xl` command's own speed, side by side in one run, against a host
service with its virtual clock frozen:

    python bench/xl.py [--runs N] [--domains N] [--quick] [--also PYTHON[=CHECKOUT] ...]

Figures (wall milliseconds, median and 95th percentile of N runs; each
command is a fresh process, as a person at a shell starts it):
  python -c pass, the floor every Python command stands on    (no aim)
  xl list, 10 domains                                         aim < 80 ms
  xl create of a small domain (1 MiB, idle), 10 domains up    (no aim)
  xl list, 1000 domains                                       aim < 300 ms
  xl list, 1000 domains, the clock running at 1x              (no aim)
and, to show where the time goes, `xl --help`, the `list` round trip on an
open connection, and the service's `create` op on one connection.

Runs of `xl` and of `python -c pass` alternate, so that the machine's noise
falls on both alike. The commands run with bytecode caching on (a private
PYTHONPYCACHEPREFIX, warmed first), as an installed command runs; one figure
is also taken with the environment exactly as given, which on a machine with
PYTHONDONTWRITEBYTECODE=1 compiles the project's modules on every run.

--also PYTHON runs this checkout's `xl list` under another interpreter too
(a virtual environment with, say, another typer), in the same turns;
PYTHON=CHECKOUT runs the `xl list` of another checkout (an older commit,
say, unpacked with git archive) under it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import common  # noqa: F401  (puts the repository first on sys.path)

from xl.client import connect  # noqa: E402
from xl.domconfig import domain_config  # noqa: E402
from xl.xlcfg import load_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XL = os.path.join(os.path.dirname(sys.executable), "xl")
PYTHON_PASS = [sys.executable, "-c", "pass"]
# The smallest memory xl.cfg can give (it counts MiB) and the builder takes:
# 256 pages hold the kernel's P2M list, its program and the three special
# pages with room to spare.
SMALL_DOMAIN = 'memory = 1\nworkload = [ "idle" ]\n'


# `xl list` a step at a time, each with the steps before it.
STEPS = (
    ("step: import typer", "import typer"),
    ("step: import xl.cli (typer, the client, the command table)", "import xl.cli"),
    ("... and typer builds the commands (get_command)",
     "import xl.cli, typer.main; typer.main.get_command(xl.cli.app)"),
    ("... and loads its pydantic coercion, as every command does",
     "import xl.cli, typer.main, typer._adapters; typer.main.get_command(xl.cli.app)"),
    ("... and builds a first coercion (a TypeAdapter)",
     "import xl.cli, typer.main, typer._adapters, typer.models; typer.main.get_command(xl.cli.app); "
     "typer._adapters.try_build_adapter(bool, typer.models.OptionInfo())"),
)
# The pydantic steps are there only in typers that have it (0.29 on).
STEPS = tuple(step for step in STEPS
              if "_adapters" not in step[1] or importlib.util.find_spec("typer._adapters"))


class Timing(float):
    """Wall seconds of one command; ``cpu``: the CPU seconds its process
    used, which a busy machine inflates far less than the wall time."""
    cpu: float


def run(argv: list[str], env: dict) -> Timing:
    """One command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = Timing(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed.cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode().strip()}")
    return elapsed


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p95


def alternate(commands: dict, runs: int, env: dict) -> dict[str, list[float]]:
    """Each command ``runs`` times, taking turns. A command is its argv, or
    (argv, variables to add to the environment)."""
    samples = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            argv, extra = command if isinstance(command, tuple) else (command, {})
            samples[name].append(run(argv, {**env, **extra}))
    return samples


def round_trips(home: str, op: str, runs: int) -> list[float]:
    """One request at a time on one open connection: the service's share."""
    client = connect(home, autostart=False)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        client.call(op)
        out.append(time.perf_counter() - start)
    client.close()
    return out


def typer_version(python: str) -> str:
    return subprocess.run([python, "-c", "import typer; print(typer.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def xl_under(spec: str) -> list[str]:
    """`xl list` run by another interpreter, from this checkout or another:
    PYTHON or PYTHON=CHECKOUT."""
    python, _, root = spec.partition("=")
    return [python, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from xl.cli import main; main()", root or ROOT, "list"]


def describe(spec: str) -> str:
    python, _, root = spec.partition("=")
    if root:
        return f"from {root} (typer {typer_version(python)})"
    return f"under typer {typer_version(python)} ({python})"


class Bench:
    def __init__(self, tmp: str, runs: int, also: list[str]):
        self.tmp = tmp
        self.runs = runs
        self.also = also
        self.home = os.path.join(tmp, "home")
        self.env = {**os.environ, "XL_HOME": self.home,
                    "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pycache")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.rows: list[tuple[str, tuple[float, float], float | None, float | None]] = []
        self.notes: list[str] = []

    def xl(self, *args: str) -> float:
        return run([XL, *args], self.env)

    def config_file(self, name: str) -> str:
        path = os.path.join(self.tmp, f"{name}.cfg")
        with open(path, "w") as f:
            f.write(f'name = "{name}"\n{SMALL_DOMAIN}')
        return path

    def row(self, figure: str, samples: list[float], aim_ms: float | None = None,
            floor: list[float] | None = None) -> None:
        median, p95 = summary(samples)
        ratio = median / summary(floor)[0] if floor else None
        cpu = (statistics.median(s.cpu for s in samples) * 1000
               if all(isinstance(s, Timing) for s in samples) else None)
        self.rows.append((figure, (median, p95), cpu, aim_ms, ratio))

    def lists(self, label: str, env: dict | None = None, aim_ms: float | None = None,
              steps: bool = False) -> None:
        """`xl list` and `python -c pass` in turns; with ``steps``, also the
        steps of `xl list` one process each, each with the steps before it,
        to show where its time goes."""
        commands = {"pass": PYTHON_PASS, "list": [XL, "list"]}
        if env is None:
            commands.update((python, xl_under(python)) for python in self.also)
        if steps:
            commands.update((step, [sys.executable, "-c", code]) for step, code in STEPS)
        got = alternate(commands, self.runs, env or self.env)
        self.row(f"python -c pass ({label})", got["pass"])
        self.row(f"xl list, {label}", got["list"], aim_ms, got["pass"])
        for python in self.also if env is None else ():
            self.row(f"  the same {describe(python)}", got[python], aim_ms, got["pass"])
        for step, _ in STEPS if steps else ():
            self.row(f"  {step}", got[step], None, got["pass"])

    def main(self, domains: int) -> None:
        started = time.perf_counter()
        self.xl("host", "start", "--cpus", "4", "--memory", "16G")
        self.notes.append(f"service start (16 GiB, 4 pCPUs): {time.perf_counter() - started:.2f} s")
        self.xl("clock", "freeze")
        for _ in range(3):                                  # fills the bytecode cache
            self.xl("list")
            for python in self.also:
                run(xl_under(python), self.env)
            self.xl("--help")
            run(PYTHON_PASS, self.env)

        creates = [self.xl("create", self.config_file(f"small{i}")) for i in range(1, 11)]
        self.row("xl create, small domain (up to 10 domains)", creates)
        self.lists("10 domains", aim_ms=80, steps=True)
        got = alternate({"pass": PYTHON_PASS, "help": [XL, "--help"],
                         "plain": ([XL, "--help"], {"TYPER_USE_RICH": "0"})}, self.runs, self.env)
        self.row("xl --help", got["help"], None, got["pass"])
        self.row("xl --help, TYPER_USE_RICH=0 (plain help, no rich)", got["plain"], None, got["pass"])
        self.row("list round trip on an open connection, 10 domains",
                 round_trips(self.home, "list", self.runs * 5))
        given = {**os.environ, "XL_HOME": self.home}
        how = ("PYTHONDONTWRITEBYTECODE=1" if given.get("PYTHONDONTWRITEBYTECODE")
               else "bytecode cached as usual")
        self.lists(f"10 domains, environment as given ({how})", env=given)

        self.fill(domains)
        self.lists(f"{domains} domains", aim_ms=300)
        self.row(f"list round trip on an open connection, {domains} domains",
                 round_trips(self.home, "list", self.runs))
        creates = [self.xl("create", self.config_file(f"late{i}")) for i in range(10)]
        self.row(f"xl create, small domain ({domains} domains up)", creates)

        self.xl("clock", "thaw")
        self.lists(f"{domains} domains, clock running at 1x")
        self.xl("clock", "freeze")

        started = time.perf_counter()
        self.xl("host", "stop")
        self.notes.append(f"service stop with {domains + 10} domains (writes the snapshot): "
                          f"{time.perf_counter() - started:.2f} s")

    def fill(self, domains: int) -> None:
        """Up to ``domains`` guests, each the same `create` op `xl create`
        makes, on one connection (a process each would add only startup)."""
        config, _ = domain_config(load_config(self.config_file("template")), "template.cfg")
        client = connect(self.home, autostart=False)
        existing = len(client.call("list")) - 1
        times = []
        for i in range(existing, domains):
            start = time.perf_counter()
            client.call("create", config={**config, "name": f"idle{i}"})
            times.append(time.perf_counter() - start)
        client.close()
        self.row(f"create op on one connection ({existing} to {domains} domains)", times)
        self.notes.append(f"creating {len(times)} domains through one connection: {sum(times):.1f} s")

    def report(self) -> None:
        print(f"xl benchmarks ({platform.machine()}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}; {self.runs} runs; wall milliseconds, and the "
              "command's own CPU milliseconds (median); ratio: median against python -c pass "
              "alongside)")
        print(f"{'figure':<80} {'median':>8} {'p95':>8} {'cpu':>6} {'aim':>6} {'ratio':>6}")
        for figure, (median, p95), cpu, aim, ratio in self.rows:
            aim_text = f"<{aim:g}" if aim else ""
            ratio_text = f"{ratio:.1f}x" if ratio else ""
            cpu_text = f"{cpu:.0f}" if cpu is not None else ""
            print(f"{figure:<80} {median:8.1f} {p95:8.1f} {cpu_text:>6} {aim_text:>6} {ratio_text:>6}")
        for note in self.notes:
            print(f"  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per figure (default 50)")
    parser.add_argument("--domains", type=int, default=1000, help="the large host's domains")
    parser.add_argument("--quick", action="store_true", help="10 runs, 100 domains")
    parser.add_argument("--also", action="append", default=[], metavar="PYTHON[=CHECKOUT]",
                        help="run xl list under this interpreter too")
    args = parser.parse_args()
    runs, domains = (10, 100) if args.quick else (args.runs, args.domains)
    with tempfile.TemporaryDirectory(prefix="xl-bench-") as tmp:
        bench = Bench(tmp, runs, args.also)
        try:
            bench.main(domains)
        finally:
            if os.path.exists(os.path.join(bench.home, "xl.sock")):
                subprocess.run([XL, "host", "stop"], env=bench.env, capture_output=True)
        bench.report()


if __name__ == "__main__":
    main()
