"""The example domains (examples/domains/): each is a real config that
Xen's own parser (libxlutil, from Debian's libxen-dev) or the YAML and
TOML readers take without a warning, and each lesson does what its
comment says to watch for, created the way `xl create` creates it
(load_config, domain_config, the toolstack) on a host like the service's.
And `make demo`'s entry point, without a terminal."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import pathlib
import pty
import re
import subprocess
import sys

import pytest

from hv.guest.blkfront import pattern
from hv.public.grant_table import GnttabCopy, GnttabTransfer
from hv.public.io.blkif import SECTOR_SIZE
from hv.public.io.xenbus import XenbusStateConnected
from hv.xen.hypervisor import MiB
from tests.conftest import make_host
from xl.cli import render_list
from xl.domconfig import domain_config, libxl_json
from xl.toolstack import Toolstack, ToolstackError
from xl.xlcfg import load_config

ROOT = pathlib.Path(__file__).parent.parent
DIRECTORY = ROOT / "examples" / "domains"
EXAMPLES = sorted(DIRECTORY.glob("*.cfg"))
EVERY_EXAMPLE = sorted(p for p in DIRECTORY.iterdir() if p.suffix in (".cfg", ".yaml", ".toml"))
LESSONS = {
    "ping": ("ping-a", "ping-b"),
    "disk": ("disk-writer",),
    "vtpm": ("vtpm-pcr",),
    "cpu": ("cpu-heavy", "cpu-light", "cpu-capped"),
    "balloon": ("balloon",),
    "driver domain": ("drv-netback", "drv-pinger", "drv-target"),
    "crash": ("crash-restart",),
    "copy and flip": ("rx-copy", "rx-flip"),
}
NS = 1_000_000_000


def _libxlutil():
    name = ctypes.util.find_library("xlutil")
    if name is None:
        pytest.skip("libxlutil (Debian libxen-dev) is not installed")
    lib = ctypes.CDLL(name)
    lib.xlu_cfg_init.restype = ctypes.c_void_p
    lib.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_readfile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_get_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                       ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.xlu_cfg_get_long.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_long), ctypes.c_int]
    lib.xlu_cfg_destroy.argtypes = [ctypes.c_void_p]
    return lib


def test_there_are_examples_in_each_syntax():
    suffixes = {p.suffix for p in EVERY_EXAMPLE}
    assert suffixes == {".cfg", ".yaml", ".toml"}
    assert {name for names in LESSONS.values() for name in names} < {p.stem for p in EVERY_EXAMPLE}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_libxlutil_reads_each_example(path):
    lib = _libxlutil()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    report = libc.fopen(b"/dev/null", b"w")
    cfg = lib.xlu_cfg_init(report, str(path).encode())
    try:
        assert lib.xlu_cfg_readfile(cfg, str(path).encode()) == 0
        name = ctypes.c_char_p()
        assert lib.xlu_cfg_get_string(cfg, b"name", ctypes.byref(name), 0) == 0
        assert name.value.decode() == path.stem
        memory = ctypes.c_long()
        assert lib.xlu_cfg_get_long(cfg, b"memory", ctypes.byref(memory), 0) == 0
        assert memory.value > 0
    finally:
        lib.xlu_cfg_destroy(cfg)


@pytest.mark.parametrize("path", EVERY_EXAMPLE, ids=lambda p: p.name)
def test_each_example_loads_without_a_warning_and_says_what_to_watch(path):
    config, warnings = domain_config(load_config(path), str(path))
    assert warnings == []
    assert config["name"] == path.stem
    comment = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert "What to watch:" in comment
    # Every command a comment offers is one xl has.
    from xl.demo import has_command
    for command in re.findall(r"`xl ([a-z-]+)", comment):
        assert has_command(command), f"{path.name} mentions `xl {command}`"


# ---------------------------------------------------------------- lessons

class Lesson:
    """A host like the service's (4 pCPUs), its domains created from the
    example files as `xl create` creates them, and virtual time run as the
    service runs it: carrying out each shutdown's on_* setting as it
    comes."""

    def __init__(self, *names: str):
        self.host = make_host(cpus=4, memory=4096 * MiB, dom0_memory=512 * MiB,
                              dom0_workload=("idle",))
        self.ts = Toolstack(self.host)
        self.domid = {}
        for name in names:
            self.domid[name] = self.create(name)

    def create(self, name: str) -> int:
        (path,) = [p for p in EVERY_EXAMPLE if p.stem == name]
        config, _ = domain_config(load_config(path), str(path))
        return self.ts.create(config)

    def run(self, seconds: float, step_ms: int = 10) -> None:
        end = self.host.now + int(seconds * NS)
        while self.host.now < end:
            self.host.run(until=min(end, self.host.now + step_ms * 1_000_000))
            for domid, action in self.ts.pending_actions():
                self.ts.on_shutdown(domid, action)

    def row(self, name: str) -> dict:
        (row,) = [d for d in self.ts.list_domains() if d["name"] == name]
        return row

    def console(self, name: str) -> str:
        return self.ts.console_output(name)

    def hypercalls(self, name: str, domid: int | None = None) -> list:
        return [r for r in self.host.xen.trace
                if r.kind == "hypercall" and r.name == name and (domid is None or r.domid == domid)]


def _ops(record) -> tuple:
    """The batch of structures a grant_table_op record carries."""
    batch = record.args[-1]
    return batch if isinstance(batch, tuple) else (batch,)


def test_two_guests_ping_over_dom0s_bridge():
    lesson = Lesson(*LESSONS["ping"])
    lesson.run(4)
    out = lesson.console("ping-a")
    assert "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data." in out
    assert [int(n) for n in re.findall(r"64 bytes from 10\.0\.0\.2: icmp_seq=(\d+)", out)] == [1, 2, 3, 4]
    assert "4 packets transmitted, 4 received, 0% packet loss" in out
    for name in LESSONS["ping"]:
        backend = f"/local/domain/0/backend/vif/{lesson.domid[name]}/0"
        assert int(lesson.ts.xs_read(f"{backend}/state")) == XenbusStateConnected
        assert lesson.ts.xs_read(f"{backend}/bridge") == "xenbr0"


def test_the_disk_writer_writes_its_image_and_flushes(tmp_path, monkeypatch):
    # The service opens a relative target= in its state directory, where
    # the demo makes the image; here the test's directory stands for it.
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "disk-writer.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    lesson = Lesson(*LESSONS["disk"])
    lesson.run(4)
    out = lesson.console("disk-writer")
    assert out.count("verify ok") >= 2 and out.count("flush xvda: ok") >= 2
    data = image.read_bytes()
    for sector in (0, 1, 4095, 8191):                       # the first 4 MiB, ends included
        assert data[sector * SECTOR_SIZE:(sector + 1) * SECTOR_SIZE] == pattern("disk-writer", sector)
    assert data[4 << 20:] == bytes(len(data) - (4 << 20))
    assert os.stat(image).st_blocks * 512 < 16 << 20         # still sparse beyond what was written
    flushes = [r for r in lesson.host.xen.trace
               if r.kind == "guest" and r.name == "dev" and r.args[:2] == ("blk", "flush") and r.result == "done"]
    backend = lesson.host.dom0.guest.buses[1].devices[f"backend/vbd/{lesson.domid['disk-writer']}/51712"]
    assert len(flushes) >= 2 and backend.stats["f_req"] == len(flushes)


def test_the_vtpm_extends_a_pcr_by_sha1_chaining():
    lesson = Lesson(*LESSONS["vtpm"])
    lesson.run(11)
    out = lesson.console("vtpm-pcr")
    extends = re.findall(r"tpm extend 10: ([0-9a-f]{40})", out)
    reads = re.findall(r"PCR-10: ([0-9a-f]{40})", out)
    value, chain = bytes(20), []
    for _ in extends:
        value = hashlib.sha1(value + hashlib.sha1(b"hello").digest()).digest()
        chain.append(value.hex())
    assert len(extends) == 3 and extends == chain and reads == chain
    uuid = lesson.ts.device_list("vtpm-pcr", "vtpm")[0]["uuid"]
    assert uuid == "6c9b0b8e-0f4d-4d8e-9a3c-2b1e5f7a9c01"


def test_cpu_time_follows_the_weights_and_the_cap_holds():
    lesson = Lesson(*LESSONS["cpu"])
    weights = {r["name"]: (r["weight"], r["cap"]) for r in lesson.ts.sched_credit()}
    assert (weights["cpu-heavy"], weights["cpu-light"], weights["cpu-capped"]) == ((512, 0), (256, 0), (256, 25))
    lesson.run(1, step_ms=100)
    before = {name: lesson.row(name)["cpu_time_s"] for name in LESSONS["cpu"]}
    seconds = 6
    lesson.run(seconds, step_ms=100)
    used = {name: lesson.row(name)["cpu_time_s"] - before[name] for name in LESSONS["cpu"]}
    # Nine vCPUs that never block on four pCPUs: every pCPU busy all along.
    assert sum(used.values()) == pytest.approx(4 * seconds, rel=0.02)
    assert used["cpu-heavy"] / used["cpu-light"] == pytest.approx(512 / 256, rel=0.1)
    assert 0.2 * seconds < used["cpu-capped"] <= 0.25 * seconds * 1.02


def test_the_balloon_guest_gives_memory_back_and_takes_it_again():
    lesson = Lesson(*LESSONS["balloon"])
    seen = []
    for _ in range(18):
        row = lesson.row("balloon")
        if not seen or seen[-1] != row["mem_mib"]:
            seen.append(row["mem_mib"])
        lesson.run(0.5, step_ms=100)
    assert seen[:5] == [128, 48, 128, 48, 128]
    shown = render_list([lesson.row("balloon")]).splitlines()[1]
    assert re.match(r"balloon +\d+ +(128|48) +1 ", shown)


def test_netback_runs_in_the_driver_domain():
    lesson = Lesson(*LESSONS["driver domain"])
    lesson.run(4)
    dd, pinger, target = (lesson.domid[n] for n in LESSONS["driver domain"])
    assert "4 packets transmitted, 4 received, 0% packet loss" in lesson.console("drv-pinger")
    assert sorted(lesson.ts.xs_list(f"/local/domain/{dd}/backend/vif")) == sorted([str(pinger), str(target)])
    try:
        in_dom0 = lesson.ts.xs_list("/local/domain/0/backend/vif")
    except ToolstackError:
        in_dom0 = []
    assert not {str(pinger), str(target)} & set(in_dom0)
    for client in (pinger, target):
        front = f"/local/domain/{client}/device/vif/0"
        assert lesson.ts.xs_read(f"{front}/backend-id") == str(dd)
        assert lesson.ts.xs_read(f"{front}/backend") == f"/local/domain/{dd}/backend/vif/{client}/0"
    assert {"libxl", "device-model"} <= set(lesson.ts.xs_list(f"/local/domain/{dd}"))
    # The frames crossed the driver domain: it copied them, dom0 did not.
    clients = {pinger, target}

    def touches(record):
        return any({op.source.domid, op.dest.domid} & clients for op in _ops(record))
    copies = lesson.hypercalls("grant_table_op:copy")
    assert any(touches(r) for r in copies if r.domid == dd)
    assert not any(touches(r) for r in copies if r.domid == 0)


def test_a_driver_domain_named_as_backend_must_exist():
    lesson = Lesson()
    with pytest.raises(ToolstackError, match="backend domain 'drv-netback' does not exist"):
        lesson.create("drv-pinger")
    assert [d["name"] for d in lesson.ts.list_domains()] == ["Domain-0"]


def test_the_crashing_guest_comes_back_with_a_new_domid():
    lesson = Lesson(*LESSONS["crash"])
    first = lesson.domid["crash-restart"]
    lesson.run(5.5)
    again = lesson.row("crash-restart")
    assert again["domid"] != first and again["state"][3] != "s"
    crashed = [r for r in lesson.host.xen.trace if r.kind == "domain" and r.domid == first]
    assert [r.name for r in crashed][-4:] == ["shutdown", "dying", "dead", "destroyed"]
    assert crashed[-4].args == "crash"
    assert lesson.ts.config_of(again["domid"])["on_crash"] == "restart"
    lesson.run(0.1)
    assert "up and running" in lesson.console("crash-restart")
    lesson.run(5.5)
    assert lesson.row("crash-restart")["domid"] not in (first, again["domid"])


def test_receive_by_copy_and_by_page_flip():
    lesson = Lesson(*LESSONS["copy and flip"])
    lesson.run(4)
    copy, flip = lesson.domid["rx-copy"], lesson.domid["rx-flip"]
    assert "4 packets transmitted, 4 received, 0% packet loss" in lesson.console("rx-copy")
    assert lesson.ts.xs_read(f"/local/domain/{copy}/device/vif/0/request-rx-copy") == "1"
    assert lesson.ts.xs_read(f"/local/domain/{flip}/device/vif/0/request-rx-copy") == "0"
    copied_to = [op.dest.domid for r in lesson.hypercalls("grant_table_op:copy", 0) for op in _ops(r)
                 if isinstance(op, GnttabCopy)]
    transferred_to = [op.domid for r in lesson.hypercalls("grant_table_op:transfer", 0) for op in _ops(r)
                      if isinstance(op, GnttabTransfer)]
    # Four echo replies (and an ARP answer) came to rx-copy by copy; four
    # echo requests (and an ARP request) to rx-flip by transfer.
    assert copied_to.count(copy) >= 5 and flip not in copied_to
    assert transferred_to.count(flip) >= 5 and copy not in transferred_to
    assert lesson.row("rx-copy")["mem_mib"] == 32 and lesson.row("rx-flip")["mem_mib"] == 31


def test_weights_caps_and_a_driver_domain_in_the_dry_run():
    heavy, _ = domain_config(load_config(DIRECTORY / "cpu-heavy.cfg"), "cpu-heavy.cfg")
    capped, _ = domain_config(load_config(DIRECTORY / "cpu-capped.toml"), "cpu-capped.toml")
    dd, _ = domain_config(load_config(DIRECTORY / "drv-netback.cfg"), "drv-netback.cfg")
    assert libxl_json(heavy)["b_info"]["sched_params"] == {"weight": 512}
    assert libxl_json(capped)["b_info"]["sched_params"] == {"cap": 25}
    assert libxl_json(dd)["c_info"]["driver_domain"] == "True"
    assert "sched_params" not in libxl_json(dd)["b_info"]


# ---------------------------------------------------------------- make demo

def _demo(home, tty: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "XENLAB_DEMO_HOME": str(home)}
    env.pop("XL_HOME", None)
    if not tty:
        return subprocess.run([sys.executable, "-m", "xl.demo"], capture_output=True, text=True,
                              env=env, timeout=60, cwd=ROOT)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "xl.demo"], stdout=follower,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        os.close(follower)
        chunks = []
        while True:                 # until the last writer closes the terminal
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, stderr = proc.communicate(timeout=60)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       b"".join(chunks).decode().replace("\r\n", "\n"), stderr)


def _xl(home, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "XL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "xl.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.fixture
def demo_home(tmp_path):
    home = tmp_path / "demo"
    yield home
    if (home / "xl.sock").exists():
        _xl(home, "host", "stop")


def _listed(text: str) -> dict[str, int]:
    lines = text.splitlines()
    assert lines[0] == "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    return {line[:40].rstrip(): int(line[40:46]) for line in lines[1:]}


def test_make_demo_prints_xl_list_and_runs_again_afresh(demo_home):
    from xl.demo import has_command
    first = _demo(demo_home)                    # no terminal: xl list, and done
    assert first.returncode == 0, first.stderr
    names = _listed(first.stdout)
    assert set(names) == {"Domain-0"} | {p.stem for p in EVERY_EXAMPLE}
    assert names["Domain-0"] == 0 and names["drv-netback"] == 1     # a backend before its clients
    assert (demo_home / "disk-writer.img").stat().st_size == 64 << 20
    status = json.loads(_xl(demo_home, "host", "status", "--json").stdout)
    assert status["state_dir"] == str(demo_home)
    # On a terminal it shows the same list until there is an `xl top` to
    # run (which would not end by itself).
    again = _demo(demo_home, tty=not has_command("top"))
    assert again.returncode == 0, again.stderr
    assert _listed(again.stdout) == names                       # from nothing: the same ids again
    with pytest.raises(ProcessLookupError):
        os.kill(status["pid"], 0)                               # the first run's host was stopped
    console = _xl(demo_home, "console", "--dump", "ping-a")
    assert console.returncode == 0 and "PING 10.0.0.2" in console.stdout


def test_make_demo_refuses_a_directory_that_is_not_its_own(tmp_path):
    home = tmp_path / "mine"
    home.mkdir()
    (home / "precious").write_text("keep me")
    refused = _demo(home)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"demo: {home} is not empty and not a demo's directory; give the demo another (XENLAB_DEMO_HOME)"]
    assert (home / "precious").read_text() == "keep me"
