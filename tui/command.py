"""`xl top [OPTION]`: xentop's options, then the batch mode or the
dashboard. textual is loaded only for the dashboard."""

from __future__ import annotations

import sys

from xl.client import XlError
from tui.options import USAGE, XENTOP_VERSION, UsageError, parse_args
from tui.source import Source


def top_command(argv: list[str], home: str | None = None) -> int:
    """Run `xl top` with these arguments; a bad one raises XlError."""
    try:
        options = parse_args(argv)
    except UsageError as e:
        raise XlError(str(e)) from None
    if options.help:
        print(USAGE)
        return 0
    if options.version:
        from xl import __version__
        print(f"xl top (xenlab) {__version__}, after xentop {XENTOP_VERSION}")
        return 0
    source = Source(home)
    try:
        if options.batch:
            from tui.batch import run
            return run(options, source)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise XlError("top needs a terminal; -b prints plain text instead")
        from tui.app import run
        return run(options, source)
    finally:
        source.close()
