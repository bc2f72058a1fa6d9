"""The host service: `xl host start|stop|status` over a real process and
its owner-only sockets, a stale socket or lock left by a killed service,
and a service that can't start saying why."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

XL = os.path.join(os.path.dirname(sys.executable), "xl")


def xl(home, *args, check=False):
    env = {**os.environ, "XL_HOME": str(home)}
    return subprocess.run([XL, *args], capture_output=True, text=True, env=env, timeout=60,
                          check=check)


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "state"
    yield path
    if (path / "xl.sock").exists():
        xl(path, "host", "stop")


def status(home) -> dict:
    return json.loads(xl(home, "host", "status", "--json", check=True).stdout)


def kill_service(home) -> int:
    pid = status(home)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return pid


def test_status_with_no_service_is_one_line_and_an_error(home):
    result = xl(home, "host", "status")
    assert result.returncode == 1
    assert result.stderr == f"xl: no host service is running for {home}\n"


def test_start_status_and_stop(home):
    started = xl(home, "host", "start", "--cpus", "2", "--memory", "2G")
    assert started.returncode == 0, started.stderr
    first = status(home)
    assert first["state_dir"] == str(home)
    assert first["cpus"] == 2 and first["memory_bytes"] == 2 << 30
    assert first["xenstore_socket"] == str(home / "xenstored.sock")
    for sock in ("xl.sock", "xenstored.sock"):
        mode = os.stat(home / sock).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    time.sleep(0.2)
    assert status(home)["clock"]["now_ns"] > first["clock"]["now_ns"]     # time runs
    again = xl(home, "host", "start")
    assert again.returncode == 1 and "already running" in again.stderr
    text = xl(home, "host", "status", check=True).stdout
    assert f"pid              {first['pid']}" in text and "2 pCPUs, 2048 MiB" in text
    assert xl(home, "host", "stop", check=True).stdout == "host service stopped\n"
    with pytest.raises(ProcessLookupError):
        os.kill(first["pid"], 0)
    assert not (home / "xl.sock").exists() and not (home / "xenstored.sock").exists()
    assert xl(home, "host", "status").returncode == 1


def test_its_xenstore_socket_speaks_to_xens_own_clients(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    from tests.xswire import WireClient
    from hv.public.io.xs_wire import XS_READ
    client = WireClient(str(home / "xenstored.sock"))
    try:
        reply = client.request(XS_READ, b"/local/domain/0/name\0")
        assert (reply.type, reply.payload) == (XS_READ, b"Domain-0")
    finally:
        client.close()


def test_a_killed_services_socket_and_lock_are_recovered_from(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    pid = kill_service(home)
    assert (home / "xl.sock").exists()                     # left behind
    assert xl(home, "host", "status").returncode == 1
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    assert status(home)["pid"] != pid


def test_a_service_that_cannot_start_says_why(home):
    result = xl(home, "host", "start", "--memory", "512M")
    assert result.returncode == 1
    assert result.stderr.startswith("xl: the host service could not start: a host needs")
    assert result.stderr.count("\n") == 1


def test_network_capture_writes_a_bridges_pcap_and_stops(home, tmp_path):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    pcap = tmp_path / "xenbr0.pcap"
    started = xl(home, "network-capture", "xenbr0", str(pcap), check=True)
    assert started.stdout == f"xenbr0: capturing to {pcap}\n"
    header = pcap.read_bytes()
    assert len(header) == 24 and header[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    assert xl(home, "network-capture", "xenbr0", "--stop", check=True).stdout == "xenbr0: capture stopped\n"
    bad = xl(home, "network-capture", "xenbr0", str(pcap), "--domain", "7")
    assert bad.returncode == 1 and bad.stderr == "xl: domain 7 runs no kernel with bridges\n"
    both = xl(home, "network-capture", "xenbr0")
    assert both.returncode == 1 and "BRIDGE FILE, or BRIDGE --stop" in both.stderr


def test_xl_list_starts_the_service_on_first_use_and_prints_xls_table(home):
    result = xl(home, "list", check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    assert lines[1].startswith("Domain-0                                     0  1024     4     ")
    assert (home / "xl.sock").exists()
    listed = json.loads(xl(home, "list", "--json", check=True).stdout)
    assert [(d["domid"], d["name"], d["mem_mib"], d["vcpus"]) for d in listed] == [
        (0, "Domain-0", 1024, 4)]
    assert set(listed[0]) >= {"domid", "name", "mem_mib", "vcpus", "state", "cpu_time_s"}



def test_what_the_service_acknowledged_survives_kill_9(home, tmp_path):
    from xl.client import connect
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(1 << 20))
    client = connect(str(home), autostart=False)
    created = client.call("create", config={
        "name": "keeper", "memory": 32, "workload": ["dd write xvda 64k", "idle"],
        "disk": [f"{disk},raw,xvda,rw"],
        "vif": ["mac=00:16:3e:00:00:07,ip=10.0.0.7,bridge=xenbr0"]})
    client.call("create", config={"name": "gone", "memory": 16})
    client.call("destroy", domain="gone")
    before = {d["name"]: d for d in client.call("list")}
    client.close()
    assert set(before) == {"Domain-0", "keeper"}
    old = kill_service(home)
    after = {d["name"]: d for d in json.loads(xl(home, "list", "--json", check=True).stdout)}
    assert status(home)["pid"] != old
    assert set(after) == {"Domain-0", "keeper"}
    assert after["keeper"]["domid"] == created["domid"] == before["keeper"]["domid"]
    assert after["keeper"]["mem_mib"] == 32
    # Its devices came back too: the disk holds what the guest wrote.
    from hv.guest.blkfront import pattern
    time.sleep(0.5)
    assert disk.read_bytes()[:512] == pattern("keeper", 0)


def test_a_bad_request_is_refused_and_changes_nothing(home):
    from xl.client import XlError, connect
    client = connect(str(home))
    with pytest.raises(XlError, match="a domain named 'twin' already exists"):
        client.call("create", config={"name": "twin", "memory": 16})
        client.call("create", config={"name": "twin", "memory": 16})
    with pytest.raises(XlError, match="nosuch is an invalid domain identifier"):
        client.call("destroy", domain="nosuch")
    with pytest.raises(XlError, match="unknown request 'frobnicate'"):
        client.call("frobnicate")
    assert [d["name"] for d in client.call("list")] == ["Domain-0", "twin"]
    client.close()
    result = xl(home, "destroy", "nosuch")
    assert result.returncode == 1 and result.stderr == "xl: nosuch is an invalid domain identifier\n"


def test_clock_pause_console_and_names(home):
    from xl.client import connect
    assert xl(home, "clock", "freeze", check=True).stdout.endswith("frozen\n")
    client = connect(str(home), autostart=False)
    client.call("create", config={"name": "talker", "memory": 16,
                                  "workload": ["echo hello from talker", "idle"]})
    start = status(home)["clock"]["now_ns"]
    ran = xl(home, "clock", "run", "250ms", check=True).stdout
    assert ran == f"{(start + 250_000_000) / 1e9:.6f} s, frozen\n"
    assert status(home)["clock"]["now_ns"] == start + 250_000_000     # frozen: no drift
    assert "hello from talker" in xl(home, "console", "--dump", "talker", check=True).stdout
    domid = int(xl(home, "domid", "talker", check=True).stdout)
    assert xl(home, "domname", str(domid), check=True).stdout == "talker\n"
    xl(home, "pause", "talker", check=True)
    rows = {d["name"]: d for d in client.call("list")}
    assert rows["talker"]["state"][2] == "p"
    xl(home, "unpause", str(domid), check=True)
    assert {d["name"]: d for d in client.call("list")}["talker"]["state"][2] == "-"
    assert "(XEN) " in xl(home, "dmesg", check=True).stdout
    bad = xl(home, "clock", "run", "2x")
    assert bad.returncode == 1 and bad.stderr.startswith("xl: clock run: '2x' is not a duration")
    assert xl(home, "domid", "nobody").returncode == 1
    thawed = xl(home, "clock", "thaw", check=True).stdout
    assert thawed.endswith("running at 1x\n")
    client.close()


def test_the_clocks_state_survives_kill_9_and_a_stop(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    xl(home, "clock", "freeze", check=True)
    xl(home, "clock", "run", "300ms", check=True)
    xl(home, "clock", "speed", "3", check=True)
    before = status(home)["clock"]
    kill_service(home)
    xl(home, "list", check=True)                   # the next command starts it again
    assert status(home)["clock"] == before
    assert (before["speed"], before["frozen"]) == (3.0, True)
    xl(home, "host", "stop", check=True)
    xl(home, "host", "start", check=True)
    assert status(home)["clock"] == before


def test_xenstore_watch_prints_what_xenstore_watch_prints(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    env = {**os.environ, "XL_HOME": str(home), "XENSTORED_PATH": str(home / "xenstored.sock")}
    ours = subprocess.Popen([XL, "xenstore", "watch", "/local/domain/0/data", "-n", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    theirs = None
    if shutil.which("xenstore-watch"):
        theirs = subprocess.Popen(["xenstore-watch", "-n", "3", "/local/domain/0/data"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(1.0)                     # both watches are in place
    xl(home, "xenstore", "write", "/local/domain/0/data/a", "1", check=True)
    xl(home, "xenstore", "write", "/local/domain/0/data/b/c", "2", check=True)
    out, err = ours.communicate(timeout=30)
    assert (ours.returncode, err) == (0, "")
    assert out.splitlines() == ["/local/domain/0/data", "/local/domain/0/data/a", "/local/domain/0/data/b/c"]
    if theirs is not None:
        assert theirs.communicate(timeout=30)[0] == out
    bad = xl(home, "xenstore", "watch", "no//such", "-n", "1")
    assert (bad.returncode, bad.stderr) == (1, "xl: can't watch no//such: EINVAL\n")


def test_outside_xenstore_clients_changes_survive_kill_9(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    from tests.xswire import WireClient
    from hv.public.io.xs_wire import (
        XS_CONTROL, XS_ERROR, XS_MKDIR, XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_WRITE,
    )
    client = WireClient(str(home / "xenstored.sock"))
    try:
        assert client.request(XS_WRITE, b"/tool/plain\0one").type == XS_WRITE
        assert client.request(XS_MKDIR, b"/tool/dir\0").type == XS_MKDIR
        assert client.request(XS_SET_PERMS, b"/tool/dir\0n0\0r3\0").type == XS_SET_PERMS
        kept = int(client.request(XS_TRANSACTION_START, b"\0").payload.rstrip(b"\0"))
        client.request(XS_WRITE, b"/tool/in-tx\0committed", tx_id=kept)
        assert client.request(XS_TRANSACTION_END, b"T\0", tx_id=kept).type == XS_TRANSACTION_END
        dropped = int(client.request(XS_TRANSACTION_START, b"\0").payload.rstrip(b"\0"))
        client.request(XS_WRITE, b"/tool/aborted\0never", tx_id=dropped)
        client.request(XS_TRANSACTION_END, b"F\0", tx_id=dropped)
        assert client.request(XS_WRITE, b"no-slash-at-all//\0x").type == XS_ERROR
        assert client.request(XS_CONTROL, b"quota\x00set\x00nodes\x0077\x00").type == XS_CONTROL
    finally:
        client.close()
    kill_service(home)
    assert xl(home, "xenstore", "read", "/tool/plain", check=True).stdout == "one\n"
    assert xl(home, "xenstore", "read", "/tool/in-tx", check=True).stdout == "committed\n"
    assert xl(home, "xenstore", "read", "/tool/aborted").returncode == 1
    ls = xl(home, "xenstore", "ls", "/tool", check=True).stdout
    assert sorted(ls.splitlines()) == ['dir = ""', 'in-tx = "committed"', 'plain = "one"',
                                       'xenstored = ""']
    perms = subprocess.run(["xenstore-ls", "-p", "/tool"], capture_output=True, text=True,
                           env={**os.environ, "XENSTORED_PATH": str(home / "xenstored.sock")})
    if perms.returncode == 0:
        line = next(line for line in perms.stdout.splitlines() if line.startswith('dir = ""'))
        assert line.endswith("(n0,r3)")
    client = WireClient(str(home / "xenstored.sock"))
    try:
        quotas = client.request(XS_CONTROL, b"quota\0").payload.decode()
    finally:
        client.close()
    assert "nodes            :       77 Nodes per domain" in quotas.splitlines()


def test_a_clock_run_that_crosses_restarts_replays_to_the_same_machine(home, tmp_path):
    cfg = tmp_path / "phoenix.cfg"
    cfg.write_text('name = "phoenix"\nmemory = 16\non_crash = "restart"\n'
                   'workload = [ "sleep 1s", "crash" ]\n')
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    xl(home, "clock", "freeze", check=True)
    xl(home, "create", str(cfg), check=True)
    first = json.loads(xl(home, "list", "phoenix", "--json", check=True).stdout)[0]["domid"]
    xl(home, "clock", "run", "3500ms", check=True)
    before = (status(home)["clock"], json.loads(xl(home, "list", "--json", check=True).stdout))
    # Restarted once a second, acting as each crash came, not at the end.
    assert before[1][-1]["domid"] == first + 3
    kill_service(home)
    xl(home, "list", check=True)
    after = (status(home)["clock"], json.loads(xl(home, "list", "--json", check=True).stdout))
    assert after == before


def test_a_freeze_stops_time_even_at_high_speed(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    xl(home, "clock", "speed", "100000", check=True)
    time.sleep(0.3)
    frozen = xl(home, "clock", "freeze", check=True).stdout
    at = status(home)["clock"]["now_ns"]
    time.sleep(0.5)
    assert status(home)["clock"]["now_ns"] == at
    assert frozen.startswith(f"{at / 1e9:.6f} s")


def test_a_host_started_frozen_is_where_every_such_host_is(home, tmp_path):
    other = tmp_path / "other"
    try:
        for where in (home, other):
            xl(where, "host", "start", "--cpus", "2", "--memory", "2G", "--frozen", check=True)
            time.sleep(0.2)             # wall time that a later freeze would have let in
        first, second = status(home)["clock"], status(other)["clock"]
        assert first["frozen"] and first == second
    finally:
        xl(other, "host", "stop")


def test_requests_with_arguments_of_the_wrong_sort_get_one_line_each(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    from xl.client import connect
    from xl.client import XlError
    client = connect(str(home), autostart=False)
    try:
        for op, args in (("trigger", {"domain": 0, "name": "nmi", "vcpu": -1}),
                         ("dmesg", {"clear": "no"}), ("console_write", {"domid": 0, "data": 5}),
                         ("create", {"config": {"name": "w", "memory": 16, "cpu_weight": -5}}),
                         ("vcpu_set", {"domain": 0, "count": -1})):
            with pytest.raises(XlError) as caught:
                client.call(op, **args)
            assert "\n" not in str(caught.value) and str(caught.value)
        import socket
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(home / "xl.sock"))
            raw.sendall(b'{"op": "list", "args": [1, 2]}\n')
            answer = json.loads(raw.makefile("rb").readline())
        assert answer == {"ok": False, "error": "bad arguments for list: they are a JSON object"}
        assert [d["name"] for d in client.call("list")] == ["Domain-0"]
        # The refused vcpu-set wrote nothing.
        assert xl(home, "xenstore", "read", "/local/domain/0/cpu/0/availability").returncode == 1
    finally:
        client.close()


def test_a_cleared_console_ring_stays_cleared_after_kill_9(home):
    xl(home, "host", "start", "--cpus", "2", "--memory", "2G", check=True)
    xl(home, "debug-keys", "h", check=True)
    assert "'h' pressed" in xl(home, "dmesg", "-c", check=True).stdout
    kill_service(home)
    assert xl(home, "dmesg", check=True).stdout == ""
