"""The layout machinery of hv/public/abi.py: how a @xenstruct lays itself out,
checks its values, and goes in and out of the bytes a guest and Xen share."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from hv.public.abi import (
    Array, cstr, offsetof, sizeof, uint8_t, uint16_t, uint32_t, uint64_t,
    union, xenstruct,
)
from hv.public.domctl import (
    XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_max_mem, XEN_DOMCTL_scheduler_op,
    XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2, XEN_SCHEDULER_RTDS, XenDomctl,
    XenDomctlCreatedomain, XenDomctlMaxMem, XenDomctlSchedCredit, XenDomctlSchedRtds,
    XenDomctlSchedulerOp,
)
from hv.public.event_channel import (
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_pirq,
    EVTCHNSTAT_unbound, EVTCHNSTAT_virq, EvtchnAllocUnbound, EvtchnClose, EvtchnSend,
    EvtchnStatus, EvtchnStatusInterdomain, EvtchnStatusUnbound,
)
from hv.public.grant_table import (
    GNTCOPY_dest_gref, GNTST_general_error, GnttabCopy, GnttabCopyPtr,
    GnttabMapGrantRef, GnttabSetupTable, GrantEntryV1,
)
from hv.public.sched import SchedPoll
from hv.public.vcpu import VcpuRunstateInfo
from hv.public.version import XenCompileInfo, XenExtraversion
from hv.public.xen import (
    ArchVcpuInfo, MulticallEntry, SharedInfo, StartInfo, VcpuInfo, VcpuTimeInfo,
)


# Test-local structures, to pin the C layout rules down on small cases.
@xenstruct
class Mixed:
    a: uint8_t
    b: uint64_t
    c: uint16_t


@xenstruct
class Shorts:
    a: uint8_t
    b: uint16_t
    c: uint8_t


@xenstruct(size=16)
class Padded:
    a: uint32_t


@xenstruct
class WithUnion:
    tag: uint8_t
    u: union(uint32_t, Shorts)


# ------------------------------------------------------------ layout rules
def test_members_are_naturally_aligned_and_the_struct_tail_padded():
    assert [(f.name, f.offset, f.size) for f in Mixed.FIELDS] == [
        ("a", 0, 1), ("b", 8, 8), ("c", 16, 2)]
    assert (Mixed.SIZE, Mixed.ALIGN) == (24, 8)


def test_struct_alignment_is_its_widest_member():
    assert [Shorts.offsetof(n) for n in ("a", "b", "c")] == [0, 2, 4]
    assert (Shorts.SIZE, Shorts.ALIGN) == (6, 2)


def test_union_is_as_big_as_its_widest_variant_rounded_to_its_alignment():
    # uint32_t (4, align 4) vs Shorts (6, align 2): 6 rounded up to 4 -> 8.
    assert WithUnion.offsetof("u") == 4
    assert WithUnion.SIZE == 12


def test_explicit_size_pads_the_struct():
    assert Padded.SIZE == 16
    assert Padded(a=1).pack() == b"\x01" + bytes(15)


def test_explicit_size_smaller_than_the_fields_is_refused():
    with pytest.raises(TypeError):
        @xenstruct(size=2)
        class TooSmall:
            a: uint32_t


def test_struct_subscript_is_an_array_of_it():
    arr = VcpuInfo[32]
    assert isinstance(arr, Array)
    assert (arr.size, arr.count) == (32 * 64, 32)
    assert SharedInfo.offsetof("evtchn_pending") == arr.size


def test_sizeof_and_offsetof_helpers_agree_with_the_class():
    assert sizeof(StartInfo) == StartInfo.SIZE == 1168
    assert sizeof(uint16_t) == 2
    assert offsetof(StartInfo, "nr_pages") == StartInfo.offsetof("nr_pages") == 32


def test_offsetof_an_unknown_field_raises_keyerror():
    with pytest.raises(KeyError):
        EvtchnSend.offsetof("remote_port")


def _all_structs():
    import importlib
    found = []
    for name in ("xen", "event_channel", "grant_table", "memory", "sched", "vcpu",
                 "version", "domctl"):
        mod = importlib.import_module(f"hv.public.{name}")
        found += [obj for obj in vars(mod).values()
                  if isinstance(obj, type) and hasattr(obj, "FIELDS") and obj.__module__ == mod.__name__]
    return found


# --------------------------------------------------------- known bytes
def test_grant_entry_packs_to_exact_little_endian_bytes():
    entry = GrantEntryV1(flags=0x19, domid=3, frame=0x12345)
    assert entry.pack() == bytes([0x19, 0x00, 0x03, 0x00, 0x45, 0x23, 0x01, 0x00])


def test_map_grant_ref_packs_each_field_at_its_offset_with_padding_zeroed():
    op = GnttabMapGrantRef(host_addr=0x1122334455667788, flags=0x2, ref=9, dom=7,
                           status=GNTST_general_error, handle=0xABCD, dev_bus_addr=0x1000)
    assert op.pack() == struct.pack("<QIIHhIQ", 0x1122334455667788, 2, 9, 7, -1, 0xABCD, 0x1000)


@pytest.mark.parametrize("name, offset, fmt, value", [
    ("nr_pages", 32, "<Q", 0x8000),
    ("shared_info", 40, "<Q", 0x7F000),
    ("flags", 48, "<I", 3),
    ("store_mfn", 56, "<Q", 0x1234),
    ("store_evtchn", 64, "<I", 1),
    ("console_mfn", 72, "<Q", 0x5678),
    ("console_evtchn", 80, "<I", 2),
    ("pt_base", 88, "<Q", 0xFFFF800000400000),
    ("nr_p2m_frames", 1160, "<Q", 16),
])
def test_start_info_fields_land_at_xens_offsets(name, offset, fmt, value):
    raw = StartInfo(**{name: value}).pack()
    assert struct.unpack_from(fmt, raw, offset)[0] == value
    # Nothing else is written.
    assert raw.count(0) == len(raw) - sum(1 for b in struct.pack(fmt, value) if b)


def test_start_info_magic_and_command_line_are_nul_padded_in_place():
    raw = StartInfo(magic=b"xen-3.0-x86_64", cmd_line=b"console=hvc0").pack()
    assert raw[:32] == b"xen-3.0-x86_64" + bytes(18)
    assert raw[128:128 + 13] == b"console=hvc0\0"
    assert len(raw) == 1168


def test_copy_ptr_ref_is_the_low_32_bits_of_its_union():
    raw = GnttabCopy(source=GnttabCopyPtr(u=8, domid=1, offset=0x10),
                     dest=GnttabCopyPtr(u=0xAABBCCDD11, domid=2, offset=0x20),
                     len=64, flags=GNTCOPY_dest_gref).pack()
    assert struct.unpack_from("<IIHH", raw, 0) == (8, 0, 1, 0x10)
    assert struct.unpack_from("<QHH", raw, 16) == (0xAABBCCDD11, 2, 0x20)
    assert struct.unpack_from("<HHh", raw, 32) == (64, GNTCOPY_dest_gref, 0)


def test_signed_status_packs_as_twos_complement():
    raw = GnttabMapGrantRef(status=-8).pack()
    assert raw[18:20] == b"\xf8\xff"
    assert GnttabMapGrantRef.unpack(raw).status == -8


# --------------------------------------------------------- round trips
def test_nested_structs_round_trip():
    info = VcpuInfo(evtchn_upcall_pending=1, evtchn_upcall_mask=1, evtchn_pending_sel=1 << 63,
                    arch=ArchVcpuInfo(cr2=0xDEAD000, pad=0),
                    time=VcpuTimeInfo(version=2, tsc_timestamp=10, system_time=20,
                                      tsc_to_system_mul=0x80000000, tsc_shift=-1, flags=1,
                                      pad1=(0, 0)))
    raw = info.pack()
    assert len(raw) == 64
    assert struct.unpack_from("<Q", raw, 16)[0] == 0xDEAD000
    assert struct.unpack_from("<b", raw, 32 + 28)[0] == -1
    assert VcpuInfo.unpack(raw) == info


def test_array_of_structs_round_trips_inside_shared_info():
    # Arrays given at full length, as unpack returns them.
    vcpus = tuple(VcpuInfo(evtchn_pending_sel=i, time=VcpuTimeInfo(pad1=(0, 0)))
                  for i in range(32))
    shinfo = SharedInfo(vcpu_info=vcpus, evtchn_pending=(1,) + (0,) * 63,
                        evtchn_mask=(0,) * 63 + (1 << 63,), wc_sec=99)
    raw = shinfo.pack()
    assert struct.unpack_from("<Q", raw, 5 * 64 + 8)[0] == 5
    assert raw[2048] == 1 and raw[2560 + 511] == 0x80
    assert SharedInfo.unpack(raw) == shinfo


def test_unpack_reads_a_struct_out_of_a_larger_page_at_an_offset():
    page = bytearray(4096)
    page[100:104] = (77).to_bytes(4, "little")
    assert EvtchnSend.unpack(page, 100) == EvtchnSend(port=77)
    assert SharedInfo.unpack(bytes(4096)).vcpu_info[31].pack() == bytes(64)


def test_short_array_packs_zeros_for_the_missing_elements():
    raw = VcpuRunstateInfo(time=(1, 2)).pack()
    assert struct.unpack_from("<4Q", raw, 16) == (1, 2, 0, 0)
    # Unpacked, the array always has its full C length.
    assert VcpuRunstateInfo.unpack(raw).time == (1, 2, 0, 0)


def test_a_zeroed_struct_unpacks_equal_to_the_default_instance():
    """The same C bytes must make the same (equal, equally hashed) value: the
    default instance of every hv/public struct is all zeros, and so is what
    unpack reads from a zeroed page."""
    unequal = []
    for cls in _all_structs():
        back = cls.unpack(bytes(cls.SIZE))
        if back != cls():
            diff = [f.name for f in cls.FIELDS if getattr(back, f.name) != getattr(cls(), f.name)]
            unequal.append(f"{cls.__name__}: {', '.join(diff)}")
    if unequal:
        pytest.fail(f"{len(unequal)} structs whose zero bytes unpack unequal to their zero "
                    "instance (struct: differing fields):\n  " + "\n  ".join(unequal),
                    pytrace=False)


def test_full_arrays_round_trip_exactly():
    runstate = VcpuRunstateInfo(state=2, state_entry_time=5, time=(1, 2, 3, 4))
    assert VcpuRunstateInfo.unpack(runstate.pack()) == runstate


def test_handles_pack_an_integer_address_and_zero_for_carried_values():
    # Arguments travel as values; only integers reach the words of the entry.
    entry = MulticallEntry(op=32, args=(4, EvtchnSend(port=3), 0x1000))
    raw = entry.pack()
    assert struct.unpack_from("<8Q", raw) == (32, 0, 4, 0, 0x1000, 0, 0, 0)
    assert MulticallEntry.unpack(raw).args == (4, None, 0x1000, None, None, None)


def test_a_handle_given_an_address_round_trips_it():
    raw = GnttabSetupTable(frame_list=0x7FFF0000).pack()
    assert struct.unpack_from("<Q", raw, 16)[0] == 0x7FFF0000
    assert GnttabSetupTable.unpack(raw).frame_list == 0x7FFF0000


def test_a_handle_holding_the_guest_array_packs_as_a_null_pointer():
    setup = GnttabSetupTable(dom=1, nr_frames=2, frame_list=(0x100, 0x101))
    raw = setup.pack()
    assert raw[16:24] == bytes(8)
    assert GnttabSetupTable.unpack(raw).frame_list is None


# --------------------------------------------------------------- unions
@pytest.mark.parametrize("status, u, tail", [
    (EVTCHNSTAT_unbound, EvtchnStatusUnbound(dom=4), struct.pack("<H6x", 4)),
    (EVTCHNSTAT_interdomain, EvtchnStatusInterdomain(dom=2, port=7), struct.pack("<H2xI", 2, 7)),
    (EVTCHNSTAT_pirq, 33, struct.pack("<I4x", 33)),
    (EVTCHNSTAT_virq, 1, struct.pack("<I4x", 1)),
])
def test_evtchn_status_union_decodes_the_variant_status_names(status, u, tail):
    out = EvtchnStatus(dom=0x7FF0, port=5, status=status, vcpu=1, u=u)
    raw = out.pack()
    assert raw[16:24] == tail
    assert EvtchnStatus.unpack(raw) == out


@pytest.mark.parametrize("status", [EVTCHNSTAT_closed, EVTCHNSTAT_ipi])
def test_evtchn_status_without_a_variant_decodes_u_as_none(status):
    raw = EvtchnStatus(port=3, status=status, u=b"\xff" * 8).pack()
    assert EvtchnStatus.unpack(raw).u is None


@pytest.mark.parametrize("sched_id", [XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2])
def test_scheduler_op_decodes_credit_parameters(sched_id):
    op = XenDomctlSchedulerOp(sched_id=sched_id, cmd=XEN_DOMCTL_SCHEDOP_getinfo,
                              u=XenDomctlSchedCredit(weight=512, cap=25))
    raw = op.pack()
    assert struct.unpack_from("<IIHH", raw) == (sched_id, XEN_DOMCTL_SCHEDOP_getinfo, 512, 25)
    assert XenDomctlSchedulerOp.unpack(raw) == op


def test_scheduler_op_for_other_schedulers_keeps_the_raw_union_bytes():
    raw = XenDomctlSchedulerOp(sched_id=XEN_SCHEDULER_RTDS,
                               u=XenDomctlSchedRtds(period=10, budget=4, flags=1)).pack()
    # Raw union bytes are kept without their trailing NUL padding.
    assert XenDomctlSchedulerOp.unpack(raw).u == struct.pack("<III", 10, 4, 1).rstrip(b"\0")


def test_domctl_payload_sits_after_the_header_and_unpacks_by_its_cmd():
    domctl = XenDomctl(cmd=XEN_DOMCTL_max_mem, interface_version=0x15, domain=3,
                       u=XenDomctlMaxMem(max_memkb=1 << 20))
    raw = domctl.pack()
    assert len(raw) == 144
    assert struct.unpack_from("<IIH6xQ", raw) == (XEN_DOMCTL_max_mem, 0x15, 3, 1 << 20)
    back = XenDomctl.unpack(raw)
    assert back.u == XenDomctlMaxMem(max_memkb=1 << 20) and back == domctl


def test_a_domctl_with_an_unknown_cmd_keeps_its_payload_bytes():
    raw = XenDomctl(cmd=999, u=b"\x07" * 3).pack()
    assert XenDomctl.unpack(raw).u == b"\x07" * 3


def test_domctl_scheduler_payload_round_trips():
    sched = XenDomctlSchedulerOp(sched_id=XEN_SCHEDULER_CREDIT, u=XenDomctlSchedCredit(weight=1))
    raw = XenDomctl(cmd=XEN_DOMCTL_scheduler_op, u=sched).pack()
    assert XenDomctl.unpack(raw).u == sched


def test_union_accepts_raw_bytes_and_zero_fills_the_rest():
    raw = EvtchnStatus(u=bytearray(b"\x01\x02")).pack()
    assert raw[16:24] == b"\x01\x02" + bytes(6)


def test_union_refuses_what_is_not_one_of_its_variants():
    with pytest.raises(ValueError):
        EvtchnStatus(u=EvtchnSend(port=1))
    with pytest.raises(ValueError):
        EvtchnStatus(u="unbound")
    with pytest.raises(ValueError):
        EvtchnStatus(u=b"\0" * 9)               # the union is 8 bytes
    with pytest.raises(ValueError):
        EvtchnStatus(u=1 << 32)                 # pirq/virq are uint32_t
    with pytest.raises(ValueError):
        XenDomctlSchedulerOp(u=5)               # no scalar variant at all


# ---------------------------------------------------------- char arrays
def test_char_array_is_nul_padded_and_its_padding_is_not_part_of_the_value():
    info = XenCompileInfo(compiler=b"gcc 12", compile_by=b"root")
    raw = info.pack()
    assert raw[:8] == b"gcc 12\0\0" and raw[64:69] == b"root\0"
    back = XenCompileInfo.unpack(raw)
    assert back.compiler == b"gcc 12" and back == info
    assert cstr(back.compiler) == "gcc 12"
    assert XenCompileInfo(compiler=b"gcc\0\0") == XenCompileInfo(compiler=b"gcc")


def test_char_array_may_be_filled_without_a_terminator():
    full = b"-unstable-xenlab"
    assert len(full) == 16
    assert XenExtraversion.unpack(XenExtraversion(extraversion=full).pack()).extraversion == full


def test_char_array_longer_than_the_field_is_refused_not_truncated():
    with pytest.raises(ValueError, match="XenExtraversion.extraversion"):
        XenExtraversion(extraversion=b"x" * 17)


def test_char_array_takes_bytes_not_str():
    with pytest.raises(ValueError):
        XenCompileInfo(compiler="gcc")
    assert XenCompileInfo(compiler=bytearray(b"gcc")).compiler == b"gcc"


def test_cstr_stops_at_the_first_nul():
    assert cstr(b"abc\0def\0") == "abc"
    assert cstr(b"no-terminator") == "no-terminator"


# ------------------------------------------------------- value checking
@pytest.mark.parametrize("build", [
    lambda: EvtchnSend(port=-1),
    lambda: EvtchnSend(port=1 << 32),
    lambda: EvtchnAllocUnbound(dom=1 << 16),
    lambda: GnttabMapGrantRef(status=-(1 << 15) - 1),
    lambda: GnttabMapGrantRef(status=1 << 15),
    lambda: VcpuTimeInfo(tsc_shift=128),
    lambda: GrantEntryV1(flags=-1),
], ids=["port=-1", "port=2**32", "domid=2**16", "int16 too low", "int16 too high",
        "int8 too high", "uint16 negative"])
def test_construction_refuses_values_that_do_not_fit(build):
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("value", ["1", 1.0, None, b"\x01", (1,)])
def test_construction_refuses_non_integers_for_integer_fields(value):
    with pytest.raises(ValueError, match="EvtchnSend.port"):
        EvtchnSend(port=value)


def test_the_edges_of_each_range_are_accepted():
    assert EvtchnSend(port=(1 << 32) - 1).port == 0xFFFFFFFF
    assert GnttabMapGrantRef(status=-(1 << 15)).status == -32768
    assert VcpuTimeInfo(tsc_shift=-128).tsc_shift == -128


def test_arrays_refuse_too_many_elements_and_bad_elements():
    with pytest.raises(ValueError):
        VcpuRunstateInfo(time=(1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"time\[1\]"):
        VcpuRunstateInfo(time=(1, -2))
    with pytest.raises(ValueError):
        SharedInfo(vcpu_info=(VcpuInfo(), 0))
    with pytest.raises(ValueError):
        XenDomctlCreatedomain(handle=(0,) * 17)


def test_nested_struct_fields_refuse_other_types():
    with pytest.raises(ValueError, match="VcpuInfo.arch"):
        VcpuInfo(arch=5)
    with pytest.raises(ValueError):
        GnttabCopy(source=GnttabSetupTable())


@pytest.mark.parametrize("address", [-1, 1 << 64])
def test_a_handle_given_as_an_address_must_fit_64_bits(address):
    """An instance always fits its C layout (abi.py): an integer handle is the
    64-bit guest address, so one that cannot be written must be refused, not
    silently packed as NULL."""
    with pytest.raises(ValueError):
        GnttabSetupTable(frame_list=address)


def test_lists_are_stored_as_tuples_and_short_arrays_zero_filled():
    assert SchedPoll(ports=[1, 2]).ports == (1, 2)
    assert VcpuRunstateInfo(time=[1, 2]).time == (1, 2, 0, 0)
    assert VcpuRunstateInfo(time=(1, 2)) == VcpuRunstateInfo(time=(1, 2, 0, 0))


# ------------------------------------------------------ frozen dataclasses
def test_every_field_defaults_to_zero():
    info = StartInfo()
    assert (info.nr_pages, info.flags, info.console_evtchn) == (0, 0, 0)
    assert info.magic == b"" and info.pack() == bytes(1168)
    assert VcpuInfo().arch == ArchVcpuInfo() and VcpuInfo().pack() == bytes(64)
    assert EvtchnStatus().u is None and SchedPoll().ports is None
    assert VcpuRunstateInfo().time == (0, 0, 0, 0)


def test_replace_returns_a_checked_copy():
    op = EvtchnAllocUnbound(dom=0x7FF0, remote_dom=1)
    out = op.replace(port=5)
    assert out == EvtchnAllocUnbound(dom=0x7FF0, remote_dom=1, port=5)
    assert op.port == 0
    with pytest.raises(ValueError):
        op.replace(port=-1)
    with pytest.raises(TypeError):
        op.replace(local_port=1)


def test_instances_are_immutable():
    send = EvtchnSend(port=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        send.port = 2
    # Slotted: no attribute can be added either (CPython 3.11's frozen+slots
    # __setattr__ raises TypeError here rather than FrozenInstanceError).
    with pytest.raises((AttributeError, TypeError)):
        send.extra = 1
    assert send == EvtchnSend(port=1)


def test_instances_are_hashable_and_compare_by_value_and_type():
    a, b = EvtchnSend(port=4), EvtchnSend(port=4)
    assert a == b and hash(a) == hash(b)
    assert a != EvtchnClose(port=4)
    assert len({a, b, EvtchnSend(port=5)}) == 2
    # Tuples inside (arrays, handle contents) keep them hashable.
    assert hash(SchedPoll(ports=[1, 2])) == hash(SchedPoll(ports=(1, 2)))
    assert hash(SharedInfo()) == hash(SharedInfo())


def test_unpack_of_a_short_buffer_raises_valueerror():
    with pytest.raises(ValueError, match="EvtchnSend needs 4 bytes, got 3"):
        EvtchnSend.unpack(b"\x01\x00\x00")
    with pytest.raises(ValueError):
        StartInfo.unpack(bytes(StartInfo.SIZE - 1))
    with pytest.raises(ValueError):
        EvtchnSend.unpack(bytes(4), 1)          # the offset eats into it
