"""`xl top`'s command line: xentop's options, parsed with getopt as
xentop's getopt_long parses them (short options run together, `-d1`,
`--delay=1`, long names shortened while they stay unambiguous). Plain
Python: the batch mode reads it without loading textual."""

from __future__ import annotations

import getopt
from dataclasses import dataclass, field

from tui.xentop import View

XENTOP_VERSION = "1.0"
SHORT = "hVnxrvd:bpi:fz"
LONG = ["help", "version", "networks", "vbds", "repeat-header", "vcpus", "delay=", "batch",
        "pcpus", "iterations=", "full-name", "dom0-first"]

USAGE = """\
Usage: xl top [OPTION]
Displays ongoing information about xen vm resources

-h, --help           display this help and exit
-V, --version        output version information and exit
-d, --delay=SECONDS  seconds between updates (default 3)
-n, --networks       output vif network data
-x, --vbds           output vbd block device data
-r, --repeat-header  repeat table header before each domain
-v, --vcpus          output vcpu data
-b, --batch          output in batch mode, no user input accepted
-p, --pcpus          show physical CPU stats
-i, --iterations     number of iterations before exiting
-f, --full-name      output the full domain name (not truncated)
-z, --dom0-first     display dom0 first (ignore sorting)

Interactive keys (either case): D delay, N networks, B block devices,
V vCPUs, R repeat header, S sort order, arrows move, Q or Esc quit;
/ filter by name, A act on the selected domain, C create one from
examples/domains/, Enter its domain screen, X xenstore, O its console,
T its trace."""


class UsageError(Exception):
    """A bad option or value: one line saying which."""


@dataclass
class Options:
    delay: float = 3.0
    batch: bool = False
    iterations: int | None = None       # None: until quit
    view: View = field(default_factory=View)   # what -n -x -v -r -f -z -p turn on
    help: bool = False
    version: bool = False


# The shortest delay: each update asks the service and draws the screen.
MIN_DELAY_S = 0.1


def parse_delay(text: str) -> float:
    """Seconds between updates, from 0.1 (xentop takes whole seconds; a
    fraction is allowed here)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not MIN_DELAY_S <= value <= 86400:
        raise UsageError(f"the delay is a number of seconds from {MIN_DELAY_S:g}, not {text!r}")
    return value


def parse_args(argv: list[str]) -> Options:
    try:
        opts, rest = getopt.gnu_getopt(argv, SHORT, LONG)
    except getopt.GetoptError as e:
        raise UsageError(f"top: {e} (xl top -h lists the options)") from None
    if rest:
        raise UsageError(f"top takes options only, not {rest[0]!r} (xl top -h lists them)")
    o = Options()
    flags = {"-n": "networks", "--networks": "networks", "-x": "vbds", "--vbds": "vbds",
             "-r": "repeat_header", "--repeat-header": "repeat_header", "-v": "vcpus",
             "--vcpus": "vcpus", "-b": "batch", "--batch": "batch", "-p": "pcpus",
             "--pcpus": "pcpus", "-f": "full_name", "--full-name": "full_name",
             "-z": "dom0_first", "--dom0-first": "dom0_first", "-h": "help", "--help": "help",
             "-V": "version", "--version": "version"}
    for name, value in opts:
        if name in flags:
            setattr(o.view if hasattr(o.view, flags[name]) else o, flags[name], True)
        elif name in ("-d", "--delay"):
            o.delay = parse_delay(value)
        elif name in ("-i", "--iterations"):
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"the iterations are a whole number above 0, not {value!r}")
            o.iterations = int(value)
    return o
