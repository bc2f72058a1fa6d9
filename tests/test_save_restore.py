"""`xl save` and `xl restore`: a guest suspended through control/shutdown,
written to a file (xl's header, libxl's stream, libxc's image) and brought
back in a new domain that goes on where it was; its frontends reconnect to
fresh backends; -c and -p; bad files refused; and a restore the service
journaled coming back after kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import subprocess

import pytest

from hv.guest import kernel_state
from hv.guest.image import KERNEL_ENTRY
from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_getvcpucontext, XenDomctl, XenDomctlVcpucontext,
)
from hv.public.errno import EINVAL, ENODATA
from hv.public.io.xenbus import XenbusStateConnected
from hv.public.xen import HYPERVISOR_domctl, PAGE_SIZE
from hv.xen.audit import audit
from tests.devices import device_host, image, settle
from tests.test_service import XL, home, kill_service, status, xl  # noqa: F401  (the fixture)
from xl import savefile
from xl.dombuild import build_pv_domain, destroy_domain
from xl.privcmd import Privcmd
from xl.toolstack import Toolstack, ToolstackError

PROGRAM = ["echo one", "sleep 40ms", "echo two", "sleep 40ms", "echo three", "sleep 40ms",
           "echo four", "idle"]


def toolstack(**kw):
    host, _xs = device_host(**kw)
    return host, Toolstack(host)


def pages_by_pfn(host, domid: int) -> dict[int, bytes]:
    """Every page of a domain's pseudo-physical memory, by pfn."""
    d = host.xen.domains.get(domid)
    out = {}
    for run in d.p2m:
        for i in range(run.length):
            out[run.start + i] = bytes(host.xen.ram.peek(run.value + i))
    return out


def console(host, domid: int) -> str:
    return host.console_output(domid).decode()


def xl_in(home, cwd, *args):  # noqa: F811
    """`xl` run from ``cwd``, for relative file names."""
    return subprocess.run([XL, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "XL_HOME": str(home)})


# ---------------------------------------------------------------- in process
def test_a_saved_guest_is_gone_and_comes_back_where_it_was(tmp_path):
    host, ts = toolstack()
    domid = ts.create({"name": "counter", "memory": 32, "workload": PROGRAM})
    settle(host, 60)
    assert console(host, domid).splitlines()[1:] == ["one", "two"]
    before = {d["name"]: d for d in ts.list_domains()}["counter"]
    config = ts.config_of(domid)
    path = tmp_path / "counter.save"
    saved = ts.save("counter", str(path))
    assert saved["domid"] == domid and saved["bytes"] == path.stat().st_size
    settle(host, 20)
    # The old domain, its memory, channels, grants and store entries: gone.
    assert host.xen.domains.get(domid) is None
    assert [d["name"] for d in ts.list_domains()] == ["Domain-0"]
    for gone in (f"/local/domain/{domid}", f"/libxl/{domid}", f"/vm/{before['uuid']}",
                 f"/local/domain/0/backend/console/{domid}"):
        assert not ts.xs.exists(gone), gone
    assert audit(host.xen) == []
    assert console(host, domid).splitlines()[-1] == "xenlab PV kernel: suspend requested by the toolstack"

    restored = ts.restore(path.read_bytes())
    new = restored["domid"]
    assert new != domid and restored["name"] == "counter"
    settle(host, 200)
    after = {d["name"]: d for d in ts.list_domains()}["counter"]
    assert (after["domid"], after["uuid"], after["mem_mib"]) == (new, before["uuid"], 32)
    assert ts.config_of(new) == config
    # Its program went on from where it was: no boot banner, no line twice.
    assert console(host, new).splitlines() == ["three", "four"]
    assert audit(host.xen) == []


def test_the_restored_pages_are_the_saved_ones_at_the_same_pfns(tmp_path):
    host, ts = toolstack()
    domid = ts.create({"name": "pages", "memory": 32, "workload": ["echo hi", "balloon 28M", "idle"]})
    settle(host, 100)
    path = tmp_path / "pages.save"
    ts.save("pages", str(path), paused=True)    # resumed but never run: memory as saved
    saved = pages_by_pfn(host, domid)
    old_p2m = {pfn: host.xen.p2m.lookup(host.xen.domains.get(domid), pfn) for pfn in saved}
    kernel = host.xen.domains.get(domid).guest
    # What the restore rewrites: start_info, the P2M list, and the store
    # ring (xenstored starts a new connection's ring afresh); the builder
    # put start_info, the store and the console at the top.
    rewritten = set(range(kernel.start_info_pfn, kernel.start_info_pfn + 3))
    rewritten |= set(range(kernel.p2m_pfn, kernel.p2m_pfn + kernel.nr_pages * 8 // PAGE_SIZE))
    # Next to the original, which keeps its frames, under a config of its own.
    config = {key: value for key, value in ts.config_of(domid).items() if key != "uuid"}
    restored = ts.restore(path.read_bytes(), paused=True, config={**config, "name": "twin"})
    new = restored["domid"]
    twin = {d["name"]: d for d in ts.list_domains()}
    assert twin["twin"]["uuid"] != twin["pages"]["uuid"]
    now = pages_by_pfn(host, new)
    assert set(now) == set(saved) and len(now) == 7168      # ballooned pages stay given back
    differ = {pfn for pfn in saved if saved[pfn] != now[pfn]}
    assert differ and differ <= rewritten
    d = host.xen.domains.get(new)
    assert all(host.xen.p2m.lookup(d, pfn) != old_p2m[pfn] for pfn in now)
    # The guest's own P2M names the new frames.
    k = d.guest
    assert all(k.p2m_get(pfn) == host.xen.p2m.lookup(d, pfn) for pfn in now)
    ts.unpause("twin")
    ts.unpause("pages")
    settle(host, 50)
    assert host.xen.domains.get(new).guest.suspending is None
    assert host.xen.domains.get(domid).guest.suspending is None
    assert audit(host.xen) == []


def test_a_guest_mid_dd_with_a_vif_reconnects_and_its_disk_verifies(tmp_path):
    host, ts = toolstack()
    disk = image(tmp_path, size=64 << 20)
    ts.create({"name": "peer", "memory": 32, "vif": ["mac=00:16:3e:00:00:02,ip=10.0.0.2"],
               "workload": ["idle"]})
    domid = ts.create({"name": "busy", "memory": 64, "disk": [f"{disk},raw,xvda,rw"],
                       "vif": ["mac=00:16:3e:00:00:01,ip=10.0.0.1"],
                       "workload": ["sleep 10ms", "ping 10.0.0.2 -c 1", "dd write xvda 48M bs=64k",
                                    "dd verify xvda 48M", "ping 10.0.0.2 -c 2 -i 0.1", "echo done"]})
    while "rtt" not in console(host, domid):
        settle(host, 1)
    settle(host, 2)
    blk = host.xen.domains.get(domid).guest.buses[0].find("vbd", "xvda")
    assert blk.job is not None and blk.inflight          # the write is under way
    path = tmp_path / "busy.save"
    ts.save("busy", str(path))
    new = ts.restore(path.read_bytes())["domid"]
    settle(host, 2000)
    k = host.xen.domains.get(new).guest
    devices = k.buses[0].devices
    assert {node: dev.state for node, dev in devices.items()} == {
        "device/vbd/51712": XenbusStateConnected, "device/vif/0": XenbusStateConnected}
    assert all(dev.otherend == f"/local/domain/0/backend/{dev.devclass}/{new}/{dev.devid}"
               for dev in devices.values())
    for node in ("vbd/51712", "vif/0"):
        assert ts.xs.read(f"/local/domain/0/backend/{node.split('/')[0]}/{new}/{node.split('/')[1]}/state") == b"4"
    out = console(host, new)
    assert "verify ok" in out
    assert "2 packets transmitted, 2 received, 0% packet loss" in out and out.endswith("done\n")
    assert audit(host.xen) == []


def test_save_c_leaves_it_running_and_save_p_leaves_it_paused(tmp_path):
    host, ts = toolstack()
    domid = ts.create({"name": "stay", "memory": 32, "vcpus": 2, "workload": PROGRAM})
    settle(host, 60)
    ts.save("stay", str(tmp_path / "c.save"), checkpoint=True)
    row = {d["name"]: d for d in ts.list_domains()}["stay"]
    assert row["domid"] == domid and row["state"][2:5] == "---"
    settle(host, 200)
    assert console(host, domid).splitlines()[1:] == [
        "one", "two", "xenlab PV kernel: suspend requested by the toolstack", "three", "four"]
    ts.save("stay", str(tmp_path / "p.save"), paused=True)
    row = {d["name"]: d for d in ts.list_domains()}["stay"]
    assert row["domid"] == domid and row["state"][2:5] == "p--"
    ts.unpause("stay")
    settle(host, 20)
    assert host.xen.domains.get(domid).guest.suspending is None
    # The checkpoint restores to the moment it was taken, next to nothing.
    ts.destroy("stay")
    settle(host, 20)
    new = ts.restore((tmp_path / "c.save").read_bytes())["domid"]
    settle(host, 200)
    assert console(host, new).splitlines() == ["three", "four"]
    assert audit(host.xen) == []


def test_a_guest_computing_on_every_vcpu_is_saved_and_computes_again(tmp_path):
    host, ts = toolstack(cpus=4)
    ts.create({"name": "hog", "memory": 32, "vcpus": 2, "workload": ["burn 100%"]})
    settle(host, 50)
    ts.save("hog", str(tmp_path / "hog.save"))
    new = ts.restore((tmp_path / "hog.save").read_bytes())["domid"]
    settle(host, 100)
    rows = ts.vcpu_list("hog")
    assert [r["vcpu"] for r in rows] == [0, 1]
    assert all(r["time_s"] > 0.08 for r in rows), rows
    assert {d["name"]: d for d in ts.list_domains()}["hog"]["domid"] == new


def test_the_file_starts_with_xls_header_and_libxcs_image(tmp_path):
    host, ts = toolstack()
    ts.create({"name": "hdr", "memory": 16, "workload": ["idle"]})
    settle(host, 20)
    saved = ts.save("hdr", str(tmp_path / "hdr.save"))
    data = (tmp_path / "hdr.save").read_bytes()
    assert data[:32] == b"Xen saved domain, xl format\n \0 \r"
    byteorder, mandatory, optional, optional_len = struct.unpack_from("<IIII", data, 32)
    assert (byteorder, mandatory, optional) == (0x01020304, 3, 0)      # STREAMv2 | JSON
    assert saved["info"] == [3, 0, optional_len]
    (config_len,) = struct.unpack_from("<I", data, 48)
    assert config_len == optional_len - 4 and data[52 + config_len - 1] == 0
    config = json.loads(data[52:52 + config_len - 1])
    assert config["c_info"]["name"] == "hdr" and config["b_info"]["target_memkb"] == 16 * 1024
    assert config["xenlab"]["workload"] == ["idle"]
    at = 48 + optional_len
    assert data[at:at + 16] == b"LibxlFmt" + struct.pack(">II", 2, 0)
    assert struct.unpack_from("<II", data, at + 16) == (1, 0)          # LIBXC_CONTEXT
    at += 24
    assert struct.unpack_from(">QII", data, at) == (0xFFFFFFFFFFFFFFFF, 0x58454E46, 3)
    assert data[at + 8:at + 12] == b"XENF"
    assert struct.unpack_from("<IHxxII", data, at + 24) == (1, 12, 4, 17)   # x86 PV, 4 KiB
    assert struct.unpack_from("<II", data, at + 40) == (2, 8)          # X86_PV_INFO
    assert data[at + 48:at + 50] == bytes((8, 4))
    assert data[-16:] == bytes(16)                                    # libxc's END, libxl's END
    image_ = savefile.read_save_file(data).image
    assert set(image_.vcpus) == {0} and len(image_.shared_info) == PAGE_SIZE
    assert len(image_.pages) == 4096 and image_.max_pfn == 4095


def _bad(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value):]


def test_bad_files_are_one_line_and_make_nothing(tmp_path):
    host, ts = toolstack()
    ts.create({"name": "src", "memory": 16, "workload": ["idle"]})
    settle(host, 20)
    ts.save("src", str(tmp_path / "src.save"))
    good = (tmp_path / "src.save").read_bytes()
    optional_len = struct.unpack_from("<I", good, 44)[0]
    libxc = 48 + optional_len + 24
    parsed = savefile.read_save_file(good)
    state = parsed.image.kernel_state
    parsed.image.kernel_state = state[:-1] + bytes((state[-1] ^ 1,))
    damaged, _ = savefile.save_file(parsed.config, parsed.image)
    crafted = pickle.dumps(os.system)                 # what a hostile record would call
    parsed.image.kernel_state = hashlib.sha256(crafted).digest() + crafted
    hostile, _ = savefile.save_file(parsed.config, parsed.image)
    cases = {
        "not a save file": (b"#!/bin/sh\necho hello\n" * 4,
                            "File has wrong magic number - corrupt or for a different tool?"),
        "empty": (b"", "File has wrong magic number - corrupt or for a different tool?"),
        "truncated": (good[:len(good) // 2], "truncated: the file ends inside"),
        "header cut": (good[:40], "truncated: the file ends inside xl's header"),
        "another libxc version": (_bad(good, libxc + 12, struct.pack(">I", 2)),
                                  "Invalid Version: Expected 3, Got 2"),
        "another libxl version": (_bad(good, 48 + optional_len + 8, struct.pack(">I", 1)),
                                  "Invalid Version: Expected 2, Got 1"),
        "a newer xl's flag": (_bad(good, 36, struct.pack("<I", 3 | 1 << 7)),
                              "Savefile has mandatory flag(s) 0x80 which are not supported; need newer xl"),
        "a damaged kernel record": (damaged, "does not match its checksum (the file is damaged)"),
        "a hostile kernel record": (hostile, "posix.system is not part of a kernel's state"),
    }
    domains = ts.list_domains()
    frames = host.xen.free_pages
    for what, (data, message) in cases.items():
        with pytest.raises(ToolstackError) as e:
            ts.restore(data, source="bad.save")
        text = str(e.value)
        assert message in text and "\n" not in text, what
        assert ts.list_domains() == domains, what
    settle(host, 10)
    assert host.xen.free_pages == frames
    with pytest.raises(kernel_state.KernelStateError, match="not part of a kernel's state"):
        kernel_state.thaw(hashlib.sha256(crafted).digest() + crafted, host.xen, host.dom0)


def test_getvcpucontext_gives_the_registers_and_callbacks(tmp_path):
    host, ts = toolstack()
    domid = ts.create({"name": "ctx", "memory": 16, "vcpus": 2, "workload": ["idle"]})
    settle(host, 20)

    def get(vcpu):
        op = XenDomctl(cmd=XEN_DOMCTL_getvcpucontext, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                       domain=domid, u=XenDomctlVcpucontext(vcpu=vcpu))
        return host.xen.hypercall(host.dom0.vcpus[0], HYPERVISOR_domctl, op)

    rc, out = get(0)
    assert rc == 0 and out.u.ctxt.event_callback_eip != 0
    rc, out = get(1)
    assert rc == 0 and out.u.ctxt.flags & (1 << 5)           # VGCF_online: it is up
    assert get(2)[0] == -EINVAL
    # A vCPU its kernel never brought up has no context to give.
    built = build_pv_domain(Privcmd(host.xen), memory_kib=16 * 1024, max_vcpus=2, unpause=False,
                            workload=["idle"])
    domid = built.domid
    assert get(1)[0] == -ENODATA
    assert get(0)[1].u.ctxt.user_regs.rip == KERNEL_ENTRY
    destroy_domain(Privcmd(host.xen), domid)


def test_what_cant_be_saved_is_refused_and_left_running(tmp_path):
    host, ts = toolstack()
    domid = ts.create({"name": "held", "memory": 16, "workload": ["idle"]})
    settle(host, 20)
    ts.pause("held")
    with pytest.raises(ToolstackError, match="is paused"):
        ts.save("held", str(tmp_path / "x.save"))
    ts.unpause("held")
    with pytest.raises(ToolstackError, match="Failed to open temp file"):
        ts.save("held", str(tmp_path / "no" / "such" / "dir.save"))
    with pytest.raises(ToolstackError, match="dom0 can't be saved"):
        ts.save("0", str(tmp_path / "x.save"))
    assert not (tmp_path / "x.save").exists()
    assert {d["name"]: d for d in ts.list_domains()}["held"]["domid"] == domid
    settle(host, 10)
    assert host.xen.domains.get(domid).guest.suspending is None


# ---------------------------------------------------------------- through xl and the service
def test_xl_save_and_restore_through_the_service_and_after_kill_9(home, tmp_path):  # noqa: F811
    from xl.client import connect
    xl(home, "clock", "freeze", check=True)
    cfg = tmp_path / "g.cfg"
    cfg.write_text('name = "g"\nmemory = 32\n'
                   'workload = [ "echo one", "sleep 1s", "echo two", "sleep 1s", "echo three", "idle" ]\n')
    xl(home, "create", str(cfg), check=True)
    xl(home, "clock", "run", "500ms", check=True)
    saved = xl_in(home, tmp_path, "save", "g", "g.save")
    assert saved.returncode == 0, saved.stderr
    assert saved.stderr.startswith("Saving to g.save new xl format (info 0x3/0x0/")
    assert (tmp_path / "g.save").read_bytes()[:28] == b"Xen saved domain, xl format\n"
    assert [d["name"] for d in json.loads(xl(home, "list", "--json", check=True).stdout)] == ["Domain-0"]
    garbage = tmp_path / "garbage.save"
    garbage.write_bytes(b"not a save file at all\n")
    for bad, line in ((garbage, "File has wrong magic number"),
                      (tmp_path / "missing.save", "Can't open restore file: No such file or directory")):
        refused = xl(home, "restore", str(bad))
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and line in refused.stderr
    restored = xl(home, "restore", str(tmp_path / "g.save"))
    assert restored.returncode == 0, restored.stderr
    assert restored.stderr.splitlines() == [
        f"Loading new save file {tmp_path / 'g.save'} (new xl fmt info {saved.stderr.split('(info ')[1][:-2]})",
        " Savefile contains xl domain config in JSON format", "Parsing config from <saved>"]
    again = xl(home, "restore", str(tmp_path / "g.save"))
    assert again.returncode == 1 and again.stderr == "xl: a domain named 'g' already exists\n"
    client = connect(str(home), autostart=False)
    domid = {d["name"]: d["domid"] for d in client.call("list")}["g"]
    client.close()
    # The journal holds the image: the file is not needed to come back.
    (tmp_path / "g.save").unlink()
    old = kill_service(home)
    rows = {d["name"]: d for d in json.loads(xl(home, "list", "--json", check=True).stdout)}
    assert status(home)["pid"] != old
    assert rows["g"]["domid"] == domid
    assert not (tmp_path / "g.save").exists()          # the replayed save wrote nothing
    xl(home, "clock", "freeze", check=True)
    xl(home, "clock", "run", "2s", check=True)
    assert xl(home, "console", "--dump", "g", check=True).stdout.splitlines() == ["two", "three"]


def test_a_vtpm_keeps_its_pcrs_across_save_and_restore(tmp_path):
    import hashlib as _h
    host, ts = toolstack()
    uuid = "1f0e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b"
    domid = ts.create({"name": "measured", "memory": 32, "vtpm": [f"backend=0,uuid={uuid}"],
                       "workload": ["sleep 10ms", "tpm extend 10 before", "sleep 50ms",
                                    "tpm extend 10 after", "tpm read 10", "idle"]})
    settle(host, 30)
    assert "PCR-10" not in console(host, domid)          # saved between the two extends
    path = tmp_path / "measured.save"
    ts.save("measured", str(path))
    new = ts.restore(path.read_bytes())["domid"]
    settle(host, 200)
    pcr = bytes(20)
    for text in (b"before", b"after"):
        pcr = _h.sha1(pcr + _h.sha1(text).digest()).digest()
    assert f"PCR-10: {pcr.hex()}" in console(host, new)
