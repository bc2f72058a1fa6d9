"""`xl top -b`: xentop's batch mode. Plain text to stdout for scripts, a
table each delay, no summary and no keys, until the iterations are done
or SIGINT or SIGTERM; it loads neither textual nor anything of hv/."""

from __future__ import annotations

import signal
import sys
import threading

from tui.options import Options
from tui.source import Source
from tui.xentop import Sample, table


def run(options: Options, source: Source, out=None) -> int:
    out = out or sys.stdout
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    view = options.view
    left = options.iterations
    sample = None
    try:
        while True:
            sample = Sample(source.call("top", vcpus=view.vcpus), sample)
            out.write("".join(line.text + "\n" for line in table(sample, view)))
            out.flush()
            if left is not None:
                left -= 1
                if not left:
                    return 0
            if stop.wait(options.delay):
                return 0
    except BrokenPipeError:
        return 0            # whoever read it has gone: as good as done
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
