"""The vTPM end to end: tpmfront in a guest, tpmback and the vTPM manager in
dom0, meeting through xenstore, one granted page and an event channel; the
instance prefix the manager routes by; what a frontend that lies gets;
cancellation; state that outlives the guest; and teardown."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from contextlib import contextmanager

import pytest

from hv.guest import swtpm
from hv.guest.tpm12 import (
    TPM_BAD_PARAM_SIZE, TPM_ST_CLEAR, build_response, cmd_extend, cmd_pcr_read, cmd_startup,
    parse_response,
)
from hv.guest.tpmback import PREFIX, TPM_FAIL, Tpmback, VtpmManager
from hv.guest.tpmfront import Tpmfront, TpmCommand
from hv.guest.workload import WorkloadError, parse_workload
from hv.public.grant_table import GNTTAB_NR_RESERVED_ENTRIES
from hv.public.io.tpmif import (
    TPMIF_STATE_CANCEL, TPMIF_STATE_FINISH, TPMIF_STATE_IDLE, TPMIF_STATE_SUBMIT,
)
from hv.public.io.xenbus import XenbusStateClosed, XenbusStateConnected
from hv.xen.audit import audit
from tests.devices import console, device_host, guest, settle
from xl.device import Device, backend_closed, device_destroy, device_request_close
from xl.dombuild import destroy_domain
from xl.privcmd import Privcmd

UUID_A = "4c0d3d0e-6b8a-4a51-9a57-0c1e6ad1f001"
UUID_B = "4c0d3d0e-6b8a-4a51-9a57-0c1e6ad1f002"
HELLO = hashlib.sha1(b"hello").digest()
# PCR 10 after one extend with SHA-1("hello"), from its reset value of zeros.
PCR10_HELLO = hashlib.sha1(bytes(20) + HELLO).hexdigest()
_U32 = struct.Struct("<I")


@pytest.fixture
def machine():
    return device_host()


def vtpm(uuid: str = UUID_A, state_dir=None, engine: str | None = None) -> Device:
    """A vTPM as the toolstack describes it to the backend."""
    back = {"uuid": uuid}
    if state_dir is not None:
        back["state-dir"] = str(state_dir)
    if engine is not None:
        back["tpm"] = engine
    return Device("vtpm", 0, 0, 0, back=back, front={})


def frontend(d) -> Tpmfront:
    (dev,) = [x for x in d.guest.buses[0].devices.values() if isinstance(x, Tpmfront)]
    return dev


def backend(host, d) -> Tpmback:
    return next(x for x in host.dom0.guest.buses[1].devices.values()
                if isinstance(x, Tpmback) and x.otherend_id == d.domid)


def manager(host) -> VtpmManager:
    return host.dom0.guest.vtpm_manager


def spy(host) -> list[bytes]:
    """Every packet the manager is handed, from now on."""
    mgr = manager(host)
    seen: list[bytes] = []
    handle = mgr.handle

    def recording(packet: bytes) -> bytes:
        seen.append(bytes(packet))
        return handle(packet)

    mgr.handle = recording
    return seen


def read_node(xs, path) -> str:
    return xs.read(path).decode()


def pcr(host, d, index: int = 10) -> str:
    """PCR ``index`` of the guest's TPM, asked of its instance directly."""
    inst = manager(host).instances[backend(host, d).instance]
    code, body = parse_response(inst.tpm.execute(cmd_pcr_read(index)))
    assert code == 0
    return body.hex()


# ----------------------------------------------------------------- handshake
def test_both_ends_meet_through_xenstore_and_reach_connected(machine):
    host, xs = machine
    d, built = guest(host, xs, "tpmy", ["idle"], [vtpm()])
    settle(host)
    fe = f"/local/domain/{d.domid}/device/vtpm/0"
    be = f"/local/domain/0/backend/vtpm/{d.domid}/0"
    assert int(read_node(xs, f"{fe}/state")) == XenbusStateConnected
    assert int(read_node(xs, f"{be}/state")) == XenbusStateConnected
    assert read_node(xs, f"{be}/feature-protocol-v2") == "1"
    assert read_node(xs, f"{fe}/feature-protocol-v2") == "1"
    assert read_node(xs, f"{be}/instance") == "1"
    dev = frontend(d)
    assert int(read_node(xs, f"{fe}/ring-ref")) == dev.ring_ref
    assert int(read_node(xs, f"{fe}/event-channel")) == dev.port
    # The page is granted to dom0, writable, and dom0 maps it.
    flags, domid, frame = d.guest.gnttab.entry(dev.ring_ref)
    assert (domid, frame) == (0, d.guest.p2m_get(dev.page_pfn))
    assert flags & 0x3 == 1 and not flags & 0x4            # permit_access, not readonly
    assert flags & 0x18                                     # mapped
    states = [(r.domid, r.result) for r in host.xen.trace if r.kind == "device" and r.name == "state"]
    assert sorted(states) == sorted([(0, "InitWait"), (d.domid, "Initialised"), (0, "Connected"),
                                     (d.domid, "Connected")])
    assert states.index((0, "Connected")) < states.index((d.domid, "Connected"))
    # The kernel started its TPM once, at connect, and it took.
    assert parse_response(dev.startup.response)[0] == 0
    assert "tpm:" not in console(host, built)


# ----------------------------------------------------------------- commands
def test_extend_then_read_gives_the_pcr_the_tpm_spec_says(machine):
    host, xs = machine
    d, built = guest(host, xs, "measured", ["tpm extend 10 hello", "tpm read 10", "tpm random 16"],
                     [vtpm()])
    settle(host)
    lines = console(host, built).splitlines()
    assert f"tpm extend 10: {PCR10_HELLO}" in lines
    assert f"PCR-10: {PCR10_HELLO}" in lines
    (rnd,) = [line for line in lines if line.startswith("tpm random 16: ")]
    assert len(rnd.split(": ")[1]) == 32
    assert frontend(d).stats == {"commands": 4, "cancelled": 0, "errors": 0}
    assert backend(host, d).stats == {"commands": 4, "cancelled": 0, "errors": 0}


def test_two_guests_have_independent_pcrs(machine):
    host, xs = machine
    a, built_a = guest(host, xs, "alpha", ["tpm extend 10 hello", "tpm read 10"], [vtpm(UUID_A)])
    b, built_b = guest(host, xs, "beta", ["tpm extend 10 other", "tpm extend 10 other",
                                          "tpm read 10", "tpm read 11"], [vtpm(UUID_B)])
    settle(host)
    once = hashlib.sha1(bytes(20) + hashlib.sha1(b"other").digest()).digest()
    twice = hashlib.sha1(once + hashlib.sha1(b"other").digest()).hexdigest()
    assert f"PCR-10: {PCR10_HELLO}" in console(host, built_a)
    assert f"PCR-10: {twice}" in console(host, built_b)
    assert f"PCR-11: {bytes(20).hex()}" in console(host, built_b)
    assert {backend(host, a).instance, backend(host, b).instance} == {1, 2}


def test_tpm_lines_that_make_no_sense_are_refused_with_why():
    with pytest.raises(WorkloadError, match="PCR from 0 to 23, not '24'"):
        parse_workload(["tpm read 24"])
    with pytest.raises(WorkloadError, match=re.escape("tpm takes extend|read|random, not 'write'")):
        parse_workload(["tpm write 1"])
    with pytest.raises(WorkloadError, match="text to measure"):
        parse_workload(["tpm extend 3"])
    assert parse_workload(["tpm extend 3 a b"]) == (("dev", "tpm", "extend", 3, "a b"),)


def test_a_guest_without_a_vtpm_is_told_so(machine):
    host, xs = machine
    _, built = guest(host, xs, "bare", ["tpm read 0"])
    settle(host)
    assert "tpm: read 0: No such device" in console(host, built)


# ----------------------------------------------------------------- routing
def test_the_manager_routes_by_the_instance_number_it_is_handed():
    mgr = VtpmManager()
    one = mgr.open(5, 0, UUID_A, "builtin", None)
    two = mgr.open(6, 0, UUID_B, "builtin", None)
    assert (one, two) == (1, 2)
    assert "in use by domain 5" in mgr.open(7, 0, UUID_A, "builtin", None)

    def ask(number: int, command: bytes) -> bytes:
        answer = mgr.handle(PREFIX.pack(number) + command)
        assert answer[:4] == PREFIX.pack(number)        # the answer says whose it is
        return answer[4:]

    for n in (1, 2):
        assert parse_response(ask(n, cmd_startup(TPM_ST_CLEAR)))[0] == 0
    assert parse_response(ask(2, cmd_extend(10, HELLO))) == (0, bytes.fromhex(PCR10_HELLO))
    assert parse_response(ask(1, cmd_pcr_read(10))) == (0, bytes(20))
    assert parse_response(ask(2, cmd_pcr_read(10))) == (0, bytes.fromhex(PCR10_HELLO))
    assert ask(9, cmd_pcr_read(10)) == build_response(TPM_FAIL)       # no such instance
    mgr.close(2)
    assert ask(2, cmd_pcr_read(10)) == build_response(TPM_FAIL)
    assert mgr.open(8, 0, UUID_B, "builtin", None) == 3


def test_every_command_reaches_the_manager_prefixed_with_its_instance(machine):
    host, xs = machine
    guest(host, xs, "first", ["idle"], [vtpm(UUID_A)])
    settle(host)
    seen = spy(host)
    d, _ = guest(host, xs, "second", ["tpm extend 10 hello"], [vtpm(UUID_B)])
    settle(host)
    assert backend(host, d).instance == 2
    assert seen == [b"\0\0\0\2" + cmd_startup(TPM_ST_CLEAR), b"\0\0\0\2" + cmd_extend(10, HELLO)]


# ----------------------------------------------------------------- a frontend that lies
def raw_command(host, d, data: bytes, length: int | None = None) -> bytes:
    """Put ``data`` on the page as the guest, say it is ``length`` bytes
    long, submit, notify, and return the response on the page."""
    dev = frontend(d)
    k = dev.k
    page = k.page(dev.page_pfn)
    page[8:8 + len(data)] = data
    _U32.pack_into(page, 0, len(data) if length is None else length)
    page[4] = TPMIF_STATE_SUBMIT
    k.irqs.pop(dev.port)                # the guest's driver looks away: we read
    k.notify(d.vcpus[0], dev.port)
    settle(host, 5)
    k.irqs[dev.port] = dev
    assert page[4] == TPMIF_STATE_FINISH
    return bytes(page[8:8 + _U32.unpack_from(page, 0)[0]])


@pytest.mark.parametrize("data, length", [
    (cmd_extend(10, HELLO), 33),                          # length short of paramSize
    (cmd_extend(10, HELLO) + b"\0", 35),                  # longer than paramSize says
    (cmd_extend(10, HELLO)[:2] + b"\0\0\0\x21" + cmd_extend(10, HELLO)[6:], 34),   # paramSize lies
    (b"\0\xc1\0\0\0\x05", 6),                             # shorter than a header
    (cmd_extend(10, HELLO), 4096),                        # past the page
    (cmd_extend(10, HELLO), 0xFFFFFFFF),
], ids=["short", "long", "paramsize", "tiny", "page", "huge"])
def test_a_malformed_request_gets_bad_param_size_and_the_tpm_never_sees_it(machine, tmp_path,
                                                                         data, length):
    host, xs = machine
    d, _ = guest(host, xs, "liar", ["idle"], [vtpm(state_dir=tmp_path)])
    settle(host)
    state_file = tmp_path / f"vtpm-{UUID_A}.json"
    before = state_file.read_bytes()
    seen = spy(host)
    assert raw_command(host, d, data, length) == build_response(TPM_BAD_PARAM_SIZE)
    assert seen == []
    assert state_file.read_bytes() == before
    assert backend(host, d).stats["errors"] == 1
    # The device works on: a good command after the bad one.
    assert raw_command(host, d, cmd_extend(10, HELLO)) == build_response(0, bytes.fromhex(PCR10_HELLO))
    assert audit(host.xen) == []


def test_a_liar_costs_only_its_own_commands(machine):
    host, xs = machine
    liar, _ = guest(host, xs, "liar", ["idle"], [vtpm(UUID_A)])
    _, honest = guest(host, xs, "honest", ["sleep 10ms", "tpm extend 10 hello", "tpm read 10"],
                      [vtpm(UUID_B)])
    settle(host, 5)
    for _ in range(20):
        raw_command(host, liar, cmd_extend(10, HELLO), 0x10000)
    settle(host)
    assert f"PCR-10: {PCR10_HELLO}" in console(host, honest)
    assert pcr(host, liar) == bytes(20).hex()
    assert backend(host, liar).stats["errors"] == 20


# ----------------------------------------------------------------- cancel
@contextmanager
def dom0_held_off(host):
    """dom0 kept off the CPU: what the guest does meanwhile waits for it."""
    host.xen.domains.pause_by_systemcontroller(host.dom0)
    try:
        yield
    finally:
        host.xen.domains.unpause_by_systemcontroller(host.dom0)
        host.xen.process_pending()


def test_a_command_cancelled_before_the_backend_took_it_never_reaches_the_tpm(machine):
    host, xs = machine
    d, _ = guest(host, xs, "quitter", ["idle"], [vtpm()])
    settle(host)
    seen = spy(host)
    dev = frontend(d)
    cmd = TpmCommand("extend 10", cmd_extend(10, HELLO))
    v = d.vcpus[0]
    with dom0_held_off(host):
        dev.submit(v, cmd)
        assert dev.cancel(v)
    settle(host, 5)
    assert cmd.error == "command cancelled" and cmd.response is None
    assert dev.k.page(dev.page_pfn)[4] == TPMIF_STATE_IDLE
    assert seen == [] and pcr(host, d) == bytes(20).hex()
    assert backend(host, d).stats["cancelled"] == 1
    # The page is free again for the next command.
    again = TpmCommand("read 10", cmd_pcr_read(10))
    dev.submit(v, again)
    settle(host, 5)
    assert parse_response(again.response) == (0, bytes(20))


def test_a_cancel_while_the_command_is_queued_is_seen_when_its_turn_comes(machine):
    host, xs = machine
    d, _ = guest(host, xs, "quitter", ["idle"], [vtpm()])
    settle(host)
    seen = spy(host)
    be = backend(host, d)
    dev = frontend(d)
    v = d.vcpus[0]
    cmd = TpmCommand("extend 10", cmd_extend(10, HELLO))
    with dom0_held_off(host):
        dev.submit(v, cmd)
        host.step_domain(0)                 # dom0 takes the event: the command is queued
        assert be in host.dom0.guest.work
        dev.cancel(v)
    settle(host, 5)
    assert cmd.error == "command cancelled"
    assert seen == [] and be.stats["cancelled"] == 1


def test_a_cancel_with_nothing_under_way_is_acknowledged_at_once(machine):
    host, xs = machine
    d, _ = guest(host, xs, "nervous", ["tpm read 10"], [vtpm()])
    settle(host)
    dev = frontend(d)
    page = dev.k.page(dev.page_pfn)
    assert page[4] == TPMIF_STATE_FINISH
    page[4] = TPMIF_STATE_CANCEL
    dev.k.notify(d.vcpus[0], dev.port)
    settle(host, 5)
    assert page[4] == TPMIF_STATE_IDLE
    assert backend(host, d).stats["cancelled"] == 1


# ----------------------------------------------------------------- state
def test_the_same_uuid_and_state_dir_find_the_pcrs_of_before(machine, tmp_path):
    host, xs = machine
    first, built = guest(host, xs, "first", ["tpm extend 10 hello"], [vtpm(state_dir=tmp_path)])
    settle(host)
    assert f"tpm extend 10: {PCR10_HELLO}" in console(host, built)
    be = backend(host, first)
    domid = first.domid
    destroy_domain(Privcmd(host.xen), domid)
    settle(host)
    assert be.page_handle < 0 and not be.port
    device_destroy(xs, vtpm(state_dir=tmp_path).__class__("vtpm", domid, 0))
    settle(host)
    assert not manager(host).instances and host.xen.domains.get(domid) is None
    assert os.path.exists(tmp_path / f"vtpm-{UUID_A}.json")
    # A new guest with the same vTPM: its TPM was started before, so the
    # kernel's TPM_Startup is refused (TPM_INVALID_POSTINIT) and nothing is
    # reset.
    second, built2 = guest(host, xs, "second", ["tpm read 10"], [vtpm(state_dir=tmp_path)])
    settle(host)
    out = console(host, built2)
    assert f"PCR-10: {PCR10_HELLO}" in out and "tpm:" not in out
    assert backend(host, second).instance == 2
    # Without a state directory, nothing outlives the instance.
    third, built3 = guest(host, xs, "third", ["tpm read 10"], [vtpm(UUID_B)])
    settle(host)
    assert f"PCR-10: {bytes(20).hex()}" in console(host, built3)


def test_a_vtpm_in_use_by_one_guest_is_refused_to_another(machine, tmp_path):
    host, xs = machine
    guest(host, xs, "owner", ["idle"], [vtpm(state_dir=tmp_path)])
    settle(host)
    d, built = guest(host, xs, "thief", ["tpm read 10"], [vtpm(state_dir=tmp_path)])
    settle(host)
    error = read_node(xs, f"/local/domain/0/error/backend/vtpm/{d.domid}/0/error")
    assert f"vTPM {UUID_A}: vTPM {UUID_A} is in use by domain 1" == error
    assert "tpm: read 10: the backend closed the device" in console(host, built)


@pytest.mark.parametrize("back, why", [
    ({}, "no uuid: which vTPM is this?"),
    ({"uuid": "not-a-uuid"}, "uuid 'not-a-uuid' is not a UUID"),
    ({"uuid": UUID_A, "tpm": "tpm2"}, "unknown tpm 'tpm2' (one of builtin, swtpm)"),
], ids=["no-uuid", "bad-uuid", "bad-engine"])
def test_a_backend_that_cannot_open_its_tpm_says_why_and_closes(machine, back, why):
    host, xs = machine
    d, _ = guest(host, xs, "broken", ["idle"], [Device("vtpm", 0, 0, 0, back=back)])
    settle(host)
    assert read_node(xs, f"/local/domain/0/error/backend/vtpm/{d.domid}/0/error") == why
    assert int(read_node(xs, f"/local/domain/0/backend/vtpm/{d.domid}/0/state")) == XenbusStateClosed


def test_a_host_with_a_vtpm_snapshots_and_goes_on(machine):
    host, xs = machine
    d, built = guest(host, xs, "snap", ["tpm extend 10 hello", "sleep 20ms", "tpm read 10"], [vtpm()])
    settle(host, 5)
    copy = host.restore(host.snapshot())
    settle(copy)
    assert f"PCR-10: {PCR10_HELLO}" in console(copy, built)
    copy.close()


# ----------------------------------------------------------------- teardown
def released(host, d, be, fe) -> None:
    assert be.page_handle < 0 and not be.port and not be.instance
    assert fe.port == 0 and fe.ring_ref == -1 and fe.page_pfn == 0
    # What dom0 still maps of the guest's is the console and store pages.
    assert [m.ref for m in host.dom0.grant_table.maptrack.values()
            if m.flags and m.domid == d.domid and m.ref >= GNTTAB_NR_RESERVED_ENTRIES] == []
    gt = d.guest.gnttab
    assert [ref for ref in range(GNTTAB_NR_RESERVED_ENTRIES, gt.nr_entries) if gt.flags(ref)] == []


def test_detach_walks_both_ends_to_closed_and_releases_everything(machine):
    host, xs = machine
    d, built = guest(host, xs, "detach", ["tpm extend 10 hello"], [vtpm()])
    settle(host)
    be, fe = backend(host, d), frontend(d)
    page = fe.page_pfn
    spec = Device("vtpm", d.domid, 0)
    device_request_close(xs, spec)
    settle(host)
    assert backend_closed(xs, spec)
    assert int(read_node(xs, f"{spec.frontend_path}/state")) == XenbusStateClosed
    device_destroy(xs, spec)
    settle(host)
    released(host, d, be, fe)
    assert page not in d.guest.allocated                  # the page is the guest's again
    assert not manager(host).instances
    assert not d.guest.buses[0].devices and not host.dom0.guest.buses[1].devices
    assert audit(host.xen) == []


# ----------------------------------------------------------------- swtpm
def test_swtpm_behind_the_backend_gives_the_same_pcrs(machine, tmp_path):
    if not swtpm.available():
        pytest.skip("swtpm is not installed")
    host, xs = machine
    d, built = guest(host, xs, "real", ["tpm extend 10 hello", "tpm read 10"],
                     [vtpm(state_dir=tmp_path, engine="swtpm")])
    settle(host)
    out = console(host, built)
    assert f"tpm extend 10: {PCR10_HELLO}" in out and f"PCR-10: {PCR10_HELLO}" in out
    inst = manager(host).instances[backend(host, d).instance]
    process = inst.tpm._process
    spec = Device("vtpm", d.domid, 0)
    device_request_close(xs, spec)
    settle(host)
    device_destroy(xs, spec)
    settle(host)
    assert process.poll() is not None                     # swtpm went with its device
    assert os.path.isdir(tmp_path / f"vtpm-{UUID_A}.swtpm")
