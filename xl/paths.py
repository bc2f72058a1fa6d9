"""Where a host service lives: its state directory and the names of what it
keeps there. Shared by the service and by `xl`'s client side, which must
stay light: this module imports nothing but os."""

from __future__ import annotations

import os

SOCKET = "xl.sock"
XENSTORED_SOCKET = "xenstored.sock"
LOCK = "lock"
LOG = "service.log"


def state_dir(env=None) -> str:
    """$XL_HOME, else the XDG state directory's xenlab."""
    env = os.environ if env is None else env
    if env.get("XL_HOME"):
        return env["XL_HOME"]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "xenlab")
