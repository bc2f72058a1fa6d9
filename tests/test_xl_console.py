"""`xl console` attached, on a real pseudo-terminal and through a pipe, and
`xl create -c`: output as it comes, keys into the guest's console ring
(which its kernel echoes), Ctrl-] to leave."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import termios
import time

import pytest

XL = os.path.join(os.path.dirname(sys.executable), "xl")


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "state"
    env = {**os.environ, "XL_HOME": str(path)}
    yield path, env
    subprocess.run([XL, "host", "stop"], env=env, capture_output=True, timeout=60)


def config(tmp_path, lines):
    path = tmp_path / "talker.cfg"
    path.write_text('name = "talker"\nmemory = 32\nworkload = [ %s ]\n'
                    % ", ".join(f'"{line}"' for line in lines))
    return str(path)


def read_until(fd, needle: bytes, timeout=20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_create_c_shows_the_boot_and_what_follows(home, tmp_path):
    _, env = home
    cfg = config(tmp_path, ["echo first words", "sleep 300ms", "echo later words", "idle"])
    result = subprocess.run([XL, "create", "-c", cfg], stdin=subprocess.DEVNULL, capture_output=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("xenlab PV kernel: domain 1, 8192 pages, 1 vCPUs\nfirst words\n")
    assert "later words\n" in out             # came while attached


def test_console_on_a_terminal_takes_keys_raw_and_leaves_on_ctrl_bracket(home, tmp_path):
    _, env = home
    cfg = config(tmp_path, ["echo ready", "idle"])
    subprocess.run([XL, "create", cfg], env=env, capture_output=True, timeout=60, check=True)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([XL, "console", "talker"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    try:
        assert b"ready" in read_until(master, b"ready")
        time.sleep(0.3)                         # raw mode is on
        os.write(master, b"ls -l")              # no Enter: raw mode passes each key at once
        assert b"ls -l" in read_until(master, b"ls -l")
        os.write(master, b"\x1d")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert termios.tcgetattr(slave) == before   # the terminal is as it was
    os.close(master)
    os.close(slave)


def test_console_through_a_pipe_sends_input_then_leaves(home, tmp_path):
    _, env = home
    cfg = config(tmp_path, ["echo ready", "idle"])
    subprocess.run([XL, "create", cfg], env=env, capture_output=True, timeout=60, check=True)
    result = subprocess.run([XL, "console", "talker"], input=b"piped\r", capture_output=True,
                            env=env, timeout=60)
    assert result.returncode == 0
    assert result.stdout == b"xenlab PV kernel: domain 1, 8192 pages, 1 vCPUs\nready\npiped\r"
    gone = subprocess.run([XL, "console", "nosuch"], capture_output=True, env=env, timeout=60)
    assert (gone.returncode, gone.stderr) == (1, b"xl: nosuch is an invalid domain identifier\n")
