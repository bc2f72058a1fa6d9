"""How `xl` reaches the host service: connect to its socket, starting the
service first when none is running for the state directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from xl.paths import LOG, SOCKET, state_dir

START_TIMEOUT_S = 20


class XlError(Exception):
    """One line for the user: what went wrong."""


class Client:
    def __init__(self, home: str):
        self.home = home
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.path.join(home, SOCKET))
        self.stream = self.sock.makefile("rwb")

    def call(self, op: str, **args):
        try:
            self.stream.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
            self.stream.flush()
            line = self.stream.readline()
            answer = json.loads(line) if line else None
        except (OSError, ValueError) as e:
            raise XlError(f"talking to the host service: {e}") from None
        if answer is None:
            raise XlError("the host service closed the connection")
        if not answer.get("ok"):
            raise XlError(answer.get("error", "the host service failed"))
        return answer["result"]

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def connect(home: str | None = None, autostart: bool = True, **start_args) -> Client:
    home = home or state_dir()
    try:
        return Client(home)
    except (FileNotFoundError, ConnectionRefusedError):
        if not autostart:
            raise XlError(f"no host service is running for {home}") from None
    start(home, **start_args)
    return Client(home)


def stop(client: Client, timeout: float = 10.0) -> tuple[int, bool]:
    """Ask the service to stop and wait for its process to go: its pid,
    and whether it went in time (it holds the directory's lock until then)."""
    try:
        pid = client.call("status")["pid"]
        client.call("stop")
    finally:
        client.close()
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return pid, False
        time.sleep(0.05)
    return pid, True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(home: str) -> bool:
    try:
        Client(home).close()
        return True
    except OSError:
        return False


def start(home: str, cpus: int | None = None, memory: int | None = None,
          frozen: bool = False) -> None:
    """Start the service for ``home`` in the background and wait until it
    answers; if it can't start, say why (its own last line)."""
    os.makedirs(home, mode=0o700, exist_ok=True)
    argv = [sys.executable, "-m", "xl.service", home]
    if cpus is not None:
        argv += ["--cpus", str(cpus)]
    if memory is not None:
        argv += ["--memory", str(memory)]
    if frozen:
        argv.append("--frozen")
    log_path = os.path.join(home, LOG)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if running(home):
            return
        if proc.poll() is not None:
            raise XlError(_last_line(log_path) or f"the host service exited ({proc.returncode})")
        time.sleep(0.05)
    raise XlError(f"the host service did not answer within {START_TIMEOUT_S} s (see {log_path})")


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    line = lines[-1] if lines else ""
    return line.removeprefix("xl: ")
