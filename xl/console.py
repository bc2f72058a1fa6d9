"""`xl console`: attached to a domain's console as xenconsole is. What the
domain writes appears as it comes; what is typed goes to its console ring;
Ctrl-] detaches. On a terminal the keys go through raw, as to a serial
line; otherwise standard input is sent until it ends, and the output that
follows for a moment after."""

from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty

from xl.client import Client, XlError

ESCAPE = b"\x1d"                # Ctrl-], as xenconsole
POLL_S = 0.05
# Without a terminal: how long output is still shown after input ended.
SETTLE_S = 0.5


def attach(client: Client, domain, stdin=None, stdout=None) -> None:
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    first = client.call("console_read", domain=domain, offset=0)
    domid, offset = first["domid"], first["offset"]
    out = stdout.buffer if hasattr(stdout, "buffer") else None

    def show(text: str) -> None:
        data = text.encode(errors="surrogateescape")
        if out is not None:
            out.write(data)
            out.flush()
        else:
            stdout.write(data.decode(errors="replace"))
            stdout.flush()

    show(first["data"])
    fd = stdin.fileno()
    terminal = os.isatty(fd)
    saved = termios.tcgetattr(fd) if terminal else None
    if terminal:
        tty.setraw(fd)
    ended_at = None
    try:
        while ended_at is None or time.monotonic() - ended_at < SETTLE_S:
            if ended_at is None:
                ready = select.select([fd], [], [], POLL_S)[0]
            else:
                time.sleep(POLL_S)
                ready = []
            if ready:
                typed = os.read(fd, 1024)
                if not typed:
                    ended_at = time.monotonic()
                else:
                    keys, escaped, _ = typed.partition(ESCAPE)
                    if keys:
                        try:
                            client.call("console_write", domid=domid,
                                        data=keys.decode(errors="surrogateescape"))
                        except XlError:
                            return      # the domain is gone: so is its console
                    if escaped:
                        return
            try:
                got = client.call("console_read", domain=domid, offset=offset)
            except XlError:
                return                  # the domain is gone: so is its console
            show(got["data"])
            offset = got["offset"]
    finally:
        if terminal:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
