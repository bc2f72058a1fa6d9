"""The host service: one process per state directory owns the machine, as a
terminal multiplexer's server owns its sessions. `xl` commands, the
dashboard and Xen's own xenstore clients all reach the same live host.

It holds an exclusive lock on the directory's `lock` file for as long as it
lives (a second service for the same directory refuses to start, and a lock
left by a dead one is simply free again), serves the toolstack on
`xl.sock` and xenstore's wire protocol on `xenstored.sock`, both
owner-only, and runs the machine's virtual time at wall pace times a speed
factor, or not at all while frozen.

Every request that changes the machine is written to the directory's
journal, with the virtual time it was applied at, before it is answered;
the machine itself is written to `snapshot` when the service starts and
stops. A service started after a crash (kill -9 included) restores the
snapshot and applies the journal's requests again at their times: the
machine is deterministic, so it comes back as it was when it last
answered.

Requests are one JSON object per line (`{"op": ..., "args": {...}}`); each
answer is one line, `{"ok": true, "result": ...}` or `{"ok": false,
"error": "one line saying what went wrong"}`.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import pickle
import socket
import sys
import threading
import time

from hv.public.io.xs_wire import (
    XS_CONTROL, XS_ERROR, XS_INTRODUCE, XS_MKDIR, XS_RELEASE, XS_RESUME, XS_RM, XS_SET_PERMS, XS_SET_TARGET,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_WRITE,
)
from hv.guest.workload import parse_duration
from hv.xenstore.protocol import Message
from hv.host import DEFAULT_DOM0_MEMORY, Host
from xl.paths import LOCK, SOCKET, XENSTORED_SOCKET
from xl.toolstack import Toolstack, ToolstackError
from xl import xstree
from xl import xenstat
from xl import introspect

# How often the pacing thread lets virtual time catch up with the wall.
PACE_S = 0.01
# How much virtual time passes between looks for shutdowns to act on.
REAP_SLICE_NS = 10_000_000


class ServiceError(Exception):
    """What a request asked that can't be done: its message is the answer."""


class Clock:
    """Virtual time paced by the wall: ``speed`` virtual seconds a wall
    second, or none while frozen. The machine itself knows no wall clock."""

    def __init__(self, host: Host, speed: float = 1.0, frozen: bool = False):
        self.host = host
        self.speed = speed
        self.frozen = frozen
        self._wall = time.monotonic()
        self._virtual = host.now

    def target(self) -> int:
        if self.frozen:
            return self.host.now
        return self._virtual + int((time.monotonic() - self._wall) * self.speed * 1e9)

    def rebase(self) -> None:
        self._wall = time.monotonic()
        self._virtual = self.host.now

    def describe(self) -> dict:
        return {"now_ns": self.host.now, "speed": self.speed, "frozen": self.frozen}


# What an outside xenstore client may change the store with.
XS_SOCKET_CHANGES = frozenset((XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_TRANSACTION_START,
                               XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE, XS_RESUME,
                               XS_SET_TARGET, XS_CONTROL))
# Journal entries that are not requests anyone may make.
REPLAY_ONLY = frozenset(("xs_socket",))
JOURNAL = "journal"
SNAPSHOT = "snapshot"
# Requests that change the machine: journaled, and applied again on restart.
CHANGES = ("create", "destroy", "network_capture", "pause", "unpause", "shutdown", "on_shutdown",
           "sched_credit_set", "vcpu_pin", "vcpu_set", "sysrq", "trigger", "console_write", "dmesg_clear", "rename", "debug_keys", "mem_set", "mem_max",
           "device_attach", "device_detach", "detach_finish", "step", "xs_write", "xs_rm",
           "xs_chmod", "save", "restore")


class Journal:
    """Acknowledged changes, one JSON line each, on disk before the answer."""

    def __init__(self, path: str):
        self.path = path
        self.seq = 0

    def entries(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                break           # a torn last line: that request was never answered
        return out

    def append(self, entry: dict) -> None:
        self.seq += 1
        with open(self.path, "ab") as f:
            f.write(json.dumps({"seq": self.seq, **entry}).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())


def _write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Service:
    def __init__(self, home: str, cpus: int, memory: int, frozen: bool = False):
        self.home = home
        self.replaying = False
        self.journal = Journal(os.path.join(home, JOURNAL))
        self.host = self._recover(cpus, memory)
        # A fault in one modelled kernel crashes its domain, not the service.
        self.host.xen.contain_guest_faults = True
        # Frozen from the start, a host is where the same commands leave
        # it every time: no wall time slips in before a freeze could.
        self.clock = Clock(self.host, **{**self.saved_clock, **({"frozen": True} if frozen else {})})
        self.stopping = threading.Event()
        self.xenstore_path = os.path.join(home, XENSTORED_SOCKET)
        self.toolstack = Toolstack(self.host)
        self._socket_conns: dict[int, object] = {}
        self._socket_tx: dict[tuple[int, int], int] = {}
        self._replay()
        for conn in self._socket_conns.values():
            self.host.xenstored.disconnect(conn)
        # Outside clients come only now: nothing they do can fall among the
        # changes being replayed, and all of it is journaled.
        self.host.serve_xenstore(self.xenstore_path, on_request=self._journal_socket_request)
        self.checkpoint()
        self.clock.rebase()

    # ------------------------------------------------------------ durability
    def _recover(self, cpus: int, memory: int) -> Host:
        try:
            with open(os.path.join(self.home, SNAPSHOT), "rb") as f:
                saved = pickle.load(f)
        except FileNotFoundError:
            self.replay_from = 0
            self.saved_clock = {}
            return Host(cpus=cpus, memory=memory)
        self.replay_from = saved["seq"]
        self.saved_clock = saved.get("clock", {})
        return Host.restore(saved["host"])

    def _replay(self) -> None:
        """The journal's changes since the snapshot, each at its time."""
        self.replaying = True
        try:
            for entry in self.journal.entries():
                self.journal.seq = entry["seq"]
                if entry["seq"] <= self.replay_from:
                    continue
                if entry["t"] > self.host.now:
                    self.host.run(until=entry["t"])
                getattr(self, f"op_{entry['op']}")(**entry["args"])
        finally:
            self.replaying = False

    def _journal_socket_request(self, client: int, msg, answer: tuple[int, bytes]) -> None:
        """A request from an outside xenstore client that changed the store
        (or ended a transaction, either way) is journaled before its
        answer goes out, like the service's own changes."""
        reply_type, reply = answer
        if msg.type not in XS_SOCKET_CHANGES or (reply_type == XS_ERROR
                                                 and msg.type != XS_TRANSACTION_END):
            return
        self.journal.append({"t": self.host.now, "op": "xs_socket", "args": {
            "client": client, "type": msg.type, "tx": msg.tx_id,
            "payload": msg.payload.decode("latin-1"), "reply": reply.decode("latin-1"),
            "failed": reply_type == XS_ERROR}})

    def op_xs_socket(self, client: int, type: int, tx: int, payload: str, reply: str = "",
                     failed: bool = False) -> None:
        """Replay an outside client's change on a connection standing in
        for it; its transactions get the ids this store gives them now."""
        if tx and (client, tx) not in self._socket_tx:
            return                  # a transaction begun before the snapshot: it did not outlive it
        conn = self._socket_conns.get(client)
        if conn is None:
            conn = self._socket_conns[client] = self.host.xenstored.connect("socket")
        data = payload.encode("latin-1")
        if type == XS_TRANSACTION_END and failed:
            data = b"F\0"                 # it did not commit then: it does not now
        tx_now = self._socket_tx.get((client, tx), 0) if tx else 0
        reply_type, answer = self.host.xenstored.process(conn, Message(type, 0, tx_now, data))
        conn.clear_output()
        if type == XS_TRANSACTION_START and reply_type != XS_ERROR:
            self._socket_tx[(client, int(reply.rstrip("\0")))] = int(answer.rstrip(b"\0"))

    def checkpoint(self) -> None:
        """The whole machine to disk; the journal starts again after it."""
        with self.host.lock:
            data = pickle.dumps({"seq": self.journal.seq, "host": self.host.snapshot(),
                                 "clock": {"speed": self.clock.speed, "frozen": self.clock.frozen}},
                                protocol=pickle.HIGHEST_PROTOCOL)
            _write_atomically(os.path.join(self.home, SNAPSHOT), data)
            with open(self.journal.path, "wb"):
                pass
    # ------------------------------------------------------------ requests
    def handle(self, request: dict) -> dict:
        op = request.get("op")
        served = isinstance(op, str) and op not in REPLAY_ONLY
        handler = getattr(self, f"op_{op}", None) if served else None
        if handler is None:
            return {"ok": False, "error": f"unknown request {op!r}"}
        args = request.get("args") or {}
        if not isinstance(args, dict):
            return {"ok": False, "error": f"bad arguments for {op}: they are a JSON object"}
        try:
            with self.host.lock:
                result = self.change(op, args) if op in CHANGES else handler(**args)
                self.reap()
                return {"ok": True, "result": result}
        except (ServiceError, ToolstackError) as e:
            return {"ok": False, "error": str(e)}
        except (TypeError, ValueError, OverflowError, AttributeError) as e:
            # What a request with arguments of the wrong sort runs into: said
            # in one line, and the service goes on.
            return {"ok": False, "error": f"bad arguments for {op}: {e}"}

    def change(self, op: str, args: dict):
        """Apply a change and journal it, with the time it was applied at."""
        at = self.host.now
        result = getattr(self, f"op_{op}")(**args)
        self.record(op, args, at)
        return result

    def record(self, op: str, args: dict, at: int) -> None:
        """Journal a change (a replay is applying the journal: not again)."""
        if not self.replaying:
            self.journal.append({"t": at, "op": op, "args": args})

    def op_status(self) -> dict:
        xen = self.host.xen
        return {"state_dir": self.home, "pid": os.getpid(), "socket": os.path.join(self.home, SOCKET),
                "xenstore_socket": self.xenstore_path, "clock": self.clock.describe(),
                "cpus": xen.nr_cpus, "memory_bytes": xen.ram.nr_frames * 4096,
                "domains": len(list(xen.domains))}

    def op_list(self, domain=None) -> list[dict]:
        rows = self.toolstack.list_domains()
        if domain is None:
            return rows
        domid = self.toolstack.domid_of(domain, rows)     # one walk of the domains, not two
        return [d for d in rows if d["domid"] == domid]

    def op_list_long(self, domain=None) -> list[dict]:
        return self.toolstack.list_long(domain)

    def op_create(self, config: dict) -> dict:
        # Made here, so that the journal carries it.
        config.setdefault("uuid", self.toolstack.new_uuid(config.get("name", "")))
        domid = self.toolstack.create(config)
        return {"domid": domid, "name": config["name"]}

    def op_destroy(self, domain) -> dict:
        return {"domid": self.toolstack.destroy(domain)}

    def op_save(self, domain, path: str, checkpoint: bool = False, paused: bool = False,
                config: dict | None = None) -> dict:
        """Replayed, a save does to the machine what it did, and leaves the
        file it wrote then alone."""
        return self.toolstack.save(domain, None if self.replaying else path, checkpoint, paused,
                                   config)

    def op_restore(self, image: str, paused: bool = False, config: dict | None = None,
                   source: str = "the save file") -> dict:
        """``image`` is the save file's bytes in base64: the journal keeps
        them, so a replayed restore does not need the file any more."""
        try:
            data = base64.b64decode(image, validate=True)
        except (ValueError, TypeError):
            raise ServiceError("restore: the image is not base64") from None
        return self.toolstack.restore(data, paused, config, source)

    def op_vcpu_list(self, domain=None) -> list[dict]:
        return self.toolstack.vcpu_list(domain)

    def op_shutdown(self, domain, reboot: bool = False) -> dict:
        return {"domid": self.toolstack.shutdown(domain, reboot)}

    def op_on_shutdown(self, domid: int, action: str) -> dict:
        return self.toolstack.on_shutdown(domid, action)

    def reap(self) -> None:
        """What each domain that shut down asks for (its on_* setting),
        journaled like any other change: on restart the journal, not this,
        says when it happened."""
        for domid, action in self.toolstack.pending_actions():
            self.change("on_shutdown", {"domid": domid, "action": action})
        for domid, devclass, devid in self.toolstack.pending_detaches():
            self.change("detach_finish", {"domid": domid, "devclass": devclass, "devid": devid})

    def op_sched_credit(self, domain=None) -> list[dict]:
        return self.toolstack.sched_credit(domain)

    def op_sched_credit_set(self, domain, weight=None, cap=None) -> list[dict]:
        return self.toolstack.sched_credit(domain, weight, cap)

    def op_vcpu_pin(self, domain, vcpu: int, hard: int) -> None:
        self.toolstack.vcpu_pin(domain, vcpu, hard)

    def op_vcpu_set(self, domain, count: int, check_host: bool = True) -> int:
        return self.toolstack.vcpu_set(domain, count, check_host)

    def op_sysrq(self, domain, key: str) -> int:
        return self.toolstack.sysrq(domain, key)

    def op_trigger(self, domain, name: str, vcpu: int = 0) -> int:
        return self.toolstack.trigger(domain, name, vcpu)

    def op_rename(self, domain, new_name: str) -> dict:
        return {"domid": self.toolstack.rename(domain, new_name)}

    def op_debug_keys(self, keys: str) -> None:
        self.toolstack.debug_keys(keys)

    def op_mem_set(self, domain, kib: int) -> dict:
        return {"domid": self.toolstack.mem_set(domain, kib)}

    def op_mem_max(self, domain, kib: int) -> dict:
        return {"domid": self.toolstack.mem_max(domain, kib)}

    def op_device_list(self, domain, devclass: str) -> list[dict]:
        return self.toolstack.device_list(domain, devclass)

    def op_device_attach(self, domain, devclass: str, spec: str) -> dict:
        return self.toolstack.attach(domain, devclass, spec)

    def op_device_detach(self, domain, devclass: str, devid: int) -> dict:
        return self.toolstack.detach(domain, devclass, devid)

    def op_detach_finish(self, domid: int, devclass: str, devid: int) -> None:
        self.toolstack.finish_detach(domid, devclass, devid)

    def op_step(self, domain, count: int = 1, vcpu: int = 0) -> list[str]:
        return self.toolstack.step(domain, count, vcpu)

    def op_trace(self, domain=None, since: int = 0, limit: int = 200) -> dict:
        return self.toolstack.trace(domain, since, limit)

    def op_domain_detail(self, domain, cells: int = introspect.TIMELINE_CELLS,
                         cell_ns: int = introspect.TIMELINE_CELL_NS) -> dict:
        """One domain laid open (xl/introspect.py), and the clock it was
        read by; nothing in the machine or its trace changes."""
        return {**introspect.domain_detail(self.toolstack, domain, cells, cell_ns),
                "clock": self.clock.describe()}

    def op_xs_read(self, path: str) -> str:
        return self.toolstack.xs_read(path)

    def op_xs_write(self, path: str, value: str) -> None:
        self.toolstack.xs_write(path, value)

    def op_xs_rm(self, path: str) -> None:
        self.toolstack.xs_rm(path)

    def op_xs_list(self, path: str) -> list[str]:
        return self.toolstack.xs_list(path)

    def op_xs_chmod(self, path: str, perms: list[str]) -> None:
        self.toolstack.xs_chmod(path, perms)

    def op_xs_ls(self, path: str) -> list:
        return self.toolstack.xs_ls(path)

    def op_xs_tree(self, path: str) -> dict:
        """One node of the tree and its children, for a browser."""
        return xstree.open_node(self.toolstack.xs, path)

    def op_pause(self, domain) -> dict:
        return {"domid": self.toolstack.pause(domain)}

    def op_unpause(self, domain) -> dict:
        return {"domid": self.toolstack.unpause(domain)}

    def op_domid(self, name: str) -> int:
        return self.toolstack.domid_by_name(name)

    def op_domname(self, domid: int) -> str:
        return self.toolstack.domname(domid)

    def op_console(self, domain) -> str:
        return self.toolstack.console_output(domain)

    def op_console_read(self, domain, offset: int = 0) -> dict:
        return self.toolstack.console_read(domain, offset)

    def op_console_write(self, domid: int, data: str) -> int:
        return self.toolstack.console_write(domid, data)

    def op_dmesg(self) -> str:
        return self.toolstack.dmesg(False)

    def op_dmesg_clear(self) -> str:
        """`xl dmesg -c`: read, then clear (a change, so journaled)."""
        return self.toolstack.dmesg(True)

    def op_info(self, numa: bool = False) -> dict:
        return self.toolstack.info(numa)

    def op_uptime(self, domains=()) -> dict:
        return self.toolstack.uptime(domains)

    def op_top(self, vcpus: bool = True) -> dict:
        """What xentop shows (xl/xenstat.py), and the clock it was read by."""
        return {**xenstat.node(self.toolstack, vcpus), "clock": self.clock.describe()}

    def op_clock(self, action: str, value: float = 0.0) -> dict:
        """freeze, thaw, speed FACTOR, run SECONDS (of frozen time)."""
        clock = self.clock
        if action == "freeze":
            clock.frozen = True
        elif action == "thaw":
            clock.frozen = False
        elif action == "speed":
            if not 0 < value <= 1e6:
                raise ServiceError(f"speed must be above 0 and at most 1000000, not {value:g}")
            clock.speed = value
        elif action == "run":
            if isinstance(value, str):          # a duration as people write it: 10ms, 2s
                try:
                    value = parse_duration(value) / 1e9
                except ValueError as e:
                    raise ServiceError(f"clock run: {e}") from None
            if not clock.frozen:
                raise ServiceError("the clock is running: freeze it first (xl clock freeze)")
            if value <= 0:
                raise ServiceError(f"run takes a duration above 0, not {value:g}")
            self._run_for(int(value * 1e9))
        elif action == "run_to":
            self.host.run(until=int(value))       # a stretch of a run, as journaled
        else:
            raise ServiceError(f"unknown clock action {action!r}")
        if action in ("freeze", "thaw", "speed"):
            self.record("clock", {"action": action, "value": value}, self.host.now)
        clock.rebase()
        return clock.describe()

    def _run_for(self, ns: int) -> None:
        """Run frozen time on, acting on shutdowns as they come, as pacing
        does. The journal gets the run in stretches, each ended where the
        toolstack acted, so that a replay acts at the same moments."""
        target = self.host.now + ns
        start = self.host.now
        while self.host.now < target:
            self.host.run(until=min(target, self.host.now + REAP_SLICE_NS))
            if self.toolstack.reactions_due():
                self.record("clock", {"action": "run_to", "value": self.host.now}, start)
                start = self.host.now
                self.reap()
        self.record("clock", {"action": "run_to", "value": target}, start)

    def op_network_capture(self, bridge: str, path: str | None, domid: int = 0) -> dict:
        try:
            self.host.network_capture(bridge, path, domid)
        except (ValueError, OSError) as e:
            raise ServiceError(str(e)) from None
        return {"bridge": bridge, "path": path, "domid": domid}

    def op_stop(self) -> dict:
        self.stopping.set()
        return {"stopping": True}

    # ------------------------------------------------------------ time
    def pace(self) -> None:
        """Let virtual time follow the wall until the service stops, a
        short stretch at a time, each under the lock: a freeze or a new
        speed takes effect from the next stretch."""
        while not self.stopping.wait(PACE_S):
            while not self.stopping.is_set():
                with self.host.lock:
                    target = self.clock.target()
                    if target <= self.host.now:
                        break
                    self.host.run(until=min(target, self.host.now + REAP_SLICE_NS))
                    try:
                        self.reap()
                    except ToolstackError as e:
                        print(f"xl: acting on a shutdown: {e}", file=sys.stderr, flush=True)
                time.sleep(0)           # let a waiting request have the lock

    # ------------------------------------------------------------ serving
    def serve(self, listener: socket.socket) -> None:
        threading.Thread(target=self.pace, daemon=True).start()
        listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                except ValueError as e:
                    answer = {"ok": False, "error": f"malformed request: {e}"}
                else:
                    answer = self.handle(request)
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()

    def close(self) -> None:
        self.host.close()


def _listen(path: str) -> socket.socket:
    if os.path.exists(path):
        os.unlink(path)         # ours to replace: we hold the directory's lock
    old = os.umask(0o177)
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    listener.listen(16)
    return listener


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="xl-service")
    parser.add_argument("home")
    parser.add_argument("--cpus", type=int, default=4)
    parser.add_argument("--memory", type=int, default=16 << 30)
    parser.add_argument("--frozen", action="store_true")
    args = parser.parse_args(argv)
    args.home = os.path.abspath(args.home)
    os.makedirs(args.home, mode=0o700, exist_ok=True)
    # A relative path in a request (a disk's target=, say) means a file in
    # the state directory, wherever the service happened to be started
    # from, and means the same file again when the journal is replayed.
    os.chdir(args.home)
    lock = open(os.path.join(args.home, LOCK), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"xl: a host service is already running for {args.home}", file=sys.stderr)
        return 1
    if args.cpus < 1 or args.memory <= DEFAULT_DOM0_MEMORY:
        print(f"xl: the host service could not start: a host needs at least one pCPU and more "
              f"than dom0's {DEFAULT_DOM0_MEMORY >> 20} MiB of memory", file=sys.stderr)
        return 1
    try:
        service = Service(args.home, args.cpus, args.memory, args.frozen)
        listener = _listen(os.path.join(args.home, SOCKET))
    except (OSError, ValueError) as e:
        print(f"xl: the host service could not start: {e}", file=sys.stderr)
        return 1
    try:
        service.serve(listener)
    finally:
        listener.close()
        os.unlink(os.path.join(args.home, SOCKET))
        service.checkpoint()
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
