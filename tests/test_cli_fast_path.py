"""`xl`'s client side stays light. Every `xl` command is a fresh process,
so whatever xl.cli imports at the top, and whatever a plain command such as
`xl list` imports on its way, each of them pays for: the machine (hv/) and
the service belong in the service's process only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from xl.paths import state_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XL = os.path.join(os.path.dirname(sys.executable), "xl")
# Modules the client has no business loading: the machine, and the
# service's side of the toolstack.
HEAVY = ("hv", "xl.service", "xl.toolstack", "xl.dombuild", "xl.xlcfg", "xl.domconfig")

SHOW_MODULES = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def heavy_modules(names: list[str]) -> list[str]:
    return [n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY)]


def modules_after(code: str, env=None) -> list[str]:
    done = subprocess.run([sys.executable, "-c", f"{code}\n{SHOW_MODULES}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_and_the_client_loads_no_machine_and_no_service():
    loaded = modules_after("import xl.cli, xl.client")
    assert "xl.cli" in loaded and "xl.client" in loaded     # the check itself sees imports
    assert heavy_modules(loaded) == []


def test_the_version_is_looked_up_only_when_asked_for():
    assert "importlib.metadata" not in modules_after("import xl.cli")
    done = subprocess.run([XL, "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout == f"xl (xenlab) {version('xenlab')}, modelling Xen 4.17.0-xenlab\n"


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "state"
    yield path
    if (path / "xl.sock").exists():
        subprocess.run([XL, "host", "stop"], env={**os.environ, "XL_HOME": str(path)},
                       capture_output=True, timeout=60)


def test_xl_list_against_a_running_service_loads_no_machine(home):
    """The whole command, not only the imports: parse, connect, ask, print."""
    env = {**os.environ, "XL_HOME": str(home)}
    started = subprocess.run([XL, "host", "start", "--cpus", "1", "--memory", "2G"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    run_list = ("import sys\nfrom xl.cli import main\nsys.argv = ['xl', 'list']\n"
                "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n")
    loaded = modules_after(run_list, env)
    assert "xl.client" in loaded
    assert heavy_modules(loaded) == []


def test_the_state_directory_is_xl_home_else_the_xdg_state_directory():
    assert state_dir({"XL_HOME": "/srv/xl", "XDG_STATE_HOME": "/x"}) == "/srv/xl"
    assert state_dir({"XDG_STATE_HOME": "/var/state"}) == "/var/state/xenlab"
    assert state_dir({}) == os.path.join(os.path.expanduser("~"), ".local", "state", "xenlab")
