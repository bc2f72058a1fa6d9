"""`make demo`: a host of its own running a domain from every example in
examples/domains/, shown live in `xl top`; as `xl list` when there is no
terminal to show it in, or no `xl top` to show it with.

It can be run again and again: its state lives apart from the user's own
host, in $XENLAB_DEMO_HOME or else xenlab-demo under the XDG state
directory. Each run stops the demo host an earlier run left, empties that
directory and starts from nothing. A disk an example names by a relative
path is a sparse raw image made there, where the host service opens it.
The host keeps running afterwards, for `xl` (with XL_HOME set to the
demo's directory) to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from xl.client import XlError, connect, start, stop
from xl.paths import state_dir

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "domains"
SUFFIXES = (".cfg", ".yaml", ".yml", ".toml")
# What marks a directory as the demo's own, to be emptied on the next run.
MARKER = ".xenlab-demo"
IMAGE_SIZE = 64 << 20
# Long enough for the guests to boot and their first pings to be answered
# before the list is taken.
SETTLE_S = 1.0
STOP_TIMEOUT_S = 10


def demo_home(env=None) -> str:
    env = os.environ if env is None else env
    if env.get("XENLAB_DEMO_HOME"):
        return os.path.abspath(env["XENLAB_DEMO_HOME"])
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "xenlab-demo")


def load_examples(directory: Path = EXAMPLES) -> list[tuple[Path, dict]]:
    """Every example's config, a domain that serves others' devices before
    them (a device's backend must exist when the device is made), else by
    file name."""
    from xl.domconfig import ConfigError, domain_config
    from xl.xlcfg import XlCfgError, load_config
    paths = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES) \
        if directory.is_dir() else []
    if not paths:
        raise XlError(f"no example domains in {directory}")
    loaded = []
    for path in paths:
        try:
            config, warnings = domain_config(load_config(path), str(path))
        except (XlCfgError, ConfigError) as e:
            raise XlError(str(e)) from None
        for warning in warnings:
            print(f"demo: warning: {warning}", file=sys.stderr)
        loaded.append((path, config))
    backends = {name for _, config in loaded for name in backend_names(config)}
    return sorted(loaded, key=lambda item: (item[1]["name"] not in backends, item[0].name))


def backend_names(config: dict) -> set[str]:
    from xl.devspec import parse_disk, parse_vif, parse_vtpm
    names = {parse_disk(spec).backend_domname for spec in config["disk"]}
    names |= {parse_vif(spec).backend_domname for spec in config["vif"]}
    names |= {parse_vtpm(spec).backend_domname for spec in config["vtpm"]}
    return {name for name in names if name}


def disk_images(config: dict) -> list[str]:
    """The images a config names by relative paths: the demo's to make."""
    from xl.devspec import parse_disk
    paths = (parse_disk(spec).pdev_path for spec in config["disk"])
    return [p for p in paths if p and not os.path.isabs(p)]


def stop_earlier(home: str) -> None:
    """Stop the demo host a previous run left running, and wait until it
    has gone (it holds the directory's lock until then)."""
    try:
        client = connect(home, autostart=False)
    except (XlError, OSError):
        return
    pid, stopped = stop(client, STOP_TIMEOUT_S)
    if not stopped:
        raise XlError(f"the earlier demo host (pid {pid}) did not stop")


def check_directory(home: str) -> None:
    """Refuse a directory that isn't the demo's: the demo stops its host
    and empties it."""
    if os.path.abspath(home) == os.path.abspath(state_dir()):
        raise XlError(f"{home} is the host's own state directory ($XL_HOME); "
                      "give the demo another (XENLAB_DEMO_HOME)")
    if os.path.isdir(home) and os.listdir(home) and not os.path.exists(os.path.join(home, MARKER)):
        raise XlError(f"{home} is not empty and not a demo's directory; "
                      "give the demo another (XENLAB_DEMO_HOME)")


def fresh_directory(home: str) -> None:
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home, mode=0o700)
    Path(home, MARKER).touch()


def has_command(name: str) -> bool:
    """Whether `xl NAME` exists: a command or a group in xl's table."""
    from xl.cli import app
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups}
    return name in names


def main(out=None) -> int:
    out = out or sys.stdout
    home = demo_home()
    try:
        examples = load_examples()
        check_directory(home)
        stop_earlier(home)
        fresh_directory(home)
        for _, config in examples:
            for image in disk_images(config):
                with open(os.path.join(home, image), "wb") as f:
                    f.truncate(IMAGE_SIZE)
        print(f"demo: a new host in {home}", file=sys.stderr)
        start(home)
        client = connect(home, autostart=False)
        for path, config in examples:
            domid = client.call("create", config=config)["domid"]
            print(f"demo: {config['name']} is domain {domid} ({path.name})", file=sys.stderr)
        time.sleep(SETTLE_S)
        show_top = out.isatty() and has_command("top")
        if not show_top:
            from xl.cli import render_list
            print(render_list(client.call("list")), file=out, flush=True)
        client.close()
    except XlError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    print(f"demo: the host keeps running; look with `XL_HOME={home} xl list` (or top, console "
          f"--dump NAME, trace, sched-credit ...), stop it with `XL_HOME={home} xl host stop`",
          file=sys.stderr)
    if show_top:
        env = {**os.environ, "XL_HOME": home}
        return subprocess.call([sys.executable, "-m", "xl.cli", "top"], env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
