"""A host service for the dashboard's tests: frozen, so every screen can be
compared with a snapshot taken before; the same domains, created by the
same commands at the same virtual times, so every figure is the same each
run. Use `frozen_home` (module-scoped) and read `XL_HOME` from it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

XL = os.path.join(os.path.dirname(sys.executable), "xl")
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples", "domains")
# Created in this order, so each gets the same id every run.
DOMAINS = ("ping-b.yaml", "ping-a.cfg", "disk-writer.cfg", "vtpm-pcr.toml", "minimal.cfg")


def xl(home, *args, check=True):
    env = {**os.environ, "XL_HOME": str(home)}
    return subprocess.run([XL, *args], capture_output=True, text=True, env=env, timeout=120,
                          check=check)


def make_frozen_host(home) -> None:
    """Start a service in ``home`` with the clock frozen from its first
    instant (frozen any later, wall time would have moved it), create the
    domains, run 2 s of virtual time, and leave `minimal` paused."""
    xl(home, "host", "start", "--cpus", "4", "--memory", "4G", "--frozen")
    with open(os.path.join(home, "disk-writer.img"), "wb") as f:
        f.truncate(64 << 20)
    for name in DOMAINS:
        xl(home, "create", *(["-p"] if name == "minimal.cfg" else []), os.path.join(EXAMPLES, name))
    xl(home, "clock", "run", "2s")


def frozen_host(tmp_path_factory, name: str = "tui"):
    """A frozen host in a new directory, for a fixture to yield; stopped
    after."""
    home = tmp_path_factory.mktemp(name) / "state"
    os.makedirs(home)
    make_frozen_host(home)
    yield home
    xl(home, "host", "stop", check=False)


@pytest.fixture(scope="module")
def frozen_home(tmp_path_factory):
    yield from frozen_host(tmp_path_factory)
