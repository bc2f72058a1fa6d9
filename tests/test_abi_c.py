"""hv/public held against Xen's own public headers.

tests/c/abi_probe.c is compiled against /usr/include/xen (Xen 4.17, the
interface version we model) and prints every structure's size and alignment,
every member's offset, size and kind (signedness, element type, nested struct,
guest-handle target), and the value of every constant hv/public defines. Each
check below collects all its mismatches and fails with the whole list.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hv.public import abi
from hv.public.event_channel import EvtchnStatus
from hv.public.grant_table import GnttabCopyPtr
from hv.public.io.console import XenconsInterface
from hv.public.xen import MmuextOp, MulticallEntry, StartInfo, VcpuGuestContext

TESTS = Path(__file__).resolve().parent
PROBE_SOURCE = TESTS / "c" / "abi_probe.c"
BUILD_DIR = TESTS / ".build"
XEN_H = Path("/usr/include/xen/xen.h")
CFLAGS = ("-Wall", "-Werror", "-D__XEN_INTERFACE_VERSION__=0x00040e00", "-D__XEN_TOOLS__")

# Every module of hv/public but the layout machinery: a new one is covered
# the moment it exists, so its structures and constants must be probed.
PUBLIC = TESTS.parent / "hv" / "public"
MODULES = tuple(
    importlib.import_module("hv.public." + ".".join(path.relative_to(PUBLIC).with_suffix("").parts))
    for path in sorted(PUBLIC.rglob("*.py"))
    if path.stem not in ("__init__", "abi")
)


# ---------------------------------------------------------------- the probe
@dataclass
class CType:
    size: int
    align: int
    kind: str
    fields: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # member -> (off, size, kind)


@dataclass
class Probe:
    types: dict[str, CType]
    consts: dict[str, int]


def parse_probe(text: str) -> Probe:
    types: dict[str, CType] = {}
    consts: dict[str, int] = {}
    lines = text.splitlines()
    assert lines and lines[-1].startswith("end "), "probe output is truncated (no 'end' line)"
    assert int(lines[-1].split()[1]) == len(lines) - 1, "probe output lost lines"
    for line in lines[:-1]:
        word, *rest = line.split()
        if word == "type":
            name, size, align, kind = rest
            assert name not in types, f"probe describes {name} twice"
            types[name] = CType(int(size), int(align), kind)
        elif word == "field":
            tname, member, off, size, kind = rest
            assert member not in types[tname].fields, f"probe prints {tname}.{member} twice"
            types[tname].fields[member] = (int(off), int(size), kind)
        elif word == "const":
            name, value = rest
            assert name not in consts, f"probe prints {name} twice"
            consts[name] = int(value)
        else:
            raise AssertionError(f"probe printed a line this test does not understand: {line!r}")
    return Probe(types, consts)


@pytest.fixture(scope="module")
def probe() -> Probe:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: cannot build tests/c/abi_probe.c")
    if not XEN_H.exists():
        pytest.skip(f"Xen's public headers are not installed ({XEN_H}; Debian: libxen-dev)")
    BUILD_DIR.mkdir(exist_ok=True)
    exe = BUILD_DIR / "abi_probe"
    tmp = BUILD_DIR / f"abi_probe.{os.getpid()}"
    built = subprocess.run([gcc, *CFLAGS, "-o", str(tmp), str(PROBE_SOURCE)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, f"{PROBE_SOURCE.name} does not build:\n{built.stderr}"
    os.replace(tmp, exe)
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0, f"abi_probe failed: {ran.stderr}"
    return parse_probe(ran.stdout)


def fail_with(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{len(problems)} {what}:\n  " + "\n  ".join(problems), pytrace=False)


# ------------------------------------------------------- Python <-> C names
def our_structs() -> list[type]:
    return [
        obj for mod in MODULES for obj in vars(mod).values()
        if isinstance(obj, type) and isinstance(getattr(obj, "CTYPE", None), abi.StructType)
        and obj.__module__ == mod.__name__
    ]


STRUCTS = our_structs()
BY_NAME = {cls.__name__: cls for cls in STRUCTS}

# Structs C declares without a tag, named by their path from the parent.
INNER_STRUCTS = {
    "evtchn_status.u.unbound": "EvtchnStatusUnbound",
    "evtchn_status.u.interdomain": "EvtchnStatusInterdomain",
    "xen_domctl_scheduler_op.u.v": "XenDomctlSchedVcpus",
}


def python_name(c_name: str) -> str:
    """struct evtchn_alloc_unbound -> EvtchnAllocUnbound, xen_extraversion_t -> XenExtraversion."""
    if c_name in INNER_STRUCTS:
        return INNER_STRUCTS[c_name]
    base = c_name.removesuffix("_t")
    return "".join(part[:1].upper() + part[1:] for part in base.split("_"))


def c_names(probe: Probe) -> dict[type, str]:
    return {BY_NAME[python_name(n)]: n for n in probe.types if python_name(n) in BY_NAME}


# A Python field whose C member has another name or sits inside a union or
# wrapper struct (its root must still be covered, see the group check).
ALIASES = {
    (StartInfo, "console_mfn"): "console.domU.mfn",
    (StartInfo, "console_evtchn"): "console.domU.evtchn",
    (VcpuGuestContext, "fpu_ctxt"): "fpu_ctxt.x",      # struct { char x[512]; }
    (XenconsInterface, "in_"): "in",                   # a Python keyword
}

# A Python integer standing for a whole C union, read as its widest member.
FLATTENED_UNIONS = {
    (MmuextOp, "arg1"),      # mfn | linear_addr
    (MmuextOp, "arg2"),      # nr_ents | vcpumask | src_mfn
    (GnttabCopyPtr, "u"),    # ref | gmfn
}

# Fields whose Python element type deliberately differs from C's: the layout
# is still checked, the kind is not.
KIND_EXEMPT = {
    # xen_ulong_t args[6]: the model carries the arguments themselves and packs
    # integers into the words (abi.Handle).
    (MulticallEntry, "args"),
}

SCALAR_KINDS = {"b": "s8", "B": "u8", "h": "s16", "H": "u16",
                "i": "s32", "I": "u32", "q": "s64", "Q": "u64"}
BYTE_ARRAYS = {"char[]", "s8[]", "u8[]"}


def py_kind(ctype: abi.CType, names: dict[type, str]) -> str:
    if isinstance(ctype, abi.Scalar):
        return SCALAR_KINDS[ctype.code]
    if isinstance(ctype, abi.Bytes):
        return "bytes"
    if isinstance(ctype, abi.Handle):
        return f"handle({ctype.target})"
    if isinstance(ctype, abi.Array):
        return py_kind(ctype.elem, names) + "[]"
    if isinstance(ctype, abi.StructType):
        name = names.get(ctype.cls, ctype.cls.__name__)
        return "agg" if "." in name else name   # an untagged C struct has no kind of its own
    if isinstance(ctype, abi.Union):
        return "union"
    raise AssertionError(f"unknown ctype {ctype!r}")


def kinds_agree(ours: str, xen: str, size: int) -> bool:
    if ours == xen:
        return True
    if ours == "bytes":
        return xen in BYTE_ARRAYS
    if ours == "union":
        return xen == "agg"
    # `uint16_t cs, _pad0[1];` -- a one-element array is the scalar it holds.
    return (ours in SCALAR_KINDS.values() and xen == ours + "[]"
            and size == int(ours[1:]) // 8)


# ----------------------------------------------------------------- structs
def test_probe_describes_every_structure_we_define(probe):
    names = c_names(probe)
    missing = [cls.__name__ for cls in STRUCTS if cls not in names]
    fail_with(missing, "hv/public structures have no counterpart in tests/c/abi_probe.c")


def test_probe_lists_every_member_of_the_structures_it_describes(probe):
    """The probe is hand-written; a member left out of it would leave a hole."""
    problems = []
    for name, ct in probe.types.items():
        top = sorted((off, size, m) for m, (off, size, _k) in ct.fields.items() if "." not in m)
        if not top:
            continue
        end = 0
        for off, size, m in top:
            if off < end:
                problems.append(f"{name}: {m} at {off} overlaps the member before it")
            elif off - end >= 8:
                problems.append(f"{name}: {off - end} unexplained bytes before {m} at {off}")
            end = max(end, off + size)
        if ct.size - end >= ct.align:
            problems.append(f"{name}: {ct.size - end} unexplained bytes at the end")
    fail_with(problems, "holes in the probe's member lists")


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_structure_size_and_alignment_match_xen(cls, probe):
    names = c_names(probe)
    if cls not in names:
        pytest.fail(f"tests/c/abi_probe.c does not describe {cls.__name__}")
    ct = probe.types[names[cls]]
    problems = []
    if cls.SIZE != ct.size:
        problems.append(f"sizeof {names[cls]}: ours {cls.SIZE}, Xen {ct.size}")
    if cls.ALIGN != ct.align:
        problems.append(f"alignof {names[cls]}: ours {cls.ALIGN}, Xen {ct.align}")
    fail_with(problems, f"mismatches in {cls.__name__}")


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_every_field_has_xens_offset_size_and_type(cls, probe):
    names = c_names(probe)
    if cls not in names:
        pytest.fail(f"tests/c/abi_probe.c does not describe {cls.__name__}")
    cname = names[cls]
    ct = probe.types[cname]
    problems = []

    if not ct.fields:
        # A C typedef of an array (xen_extraversion_t...): one field spans it.
        f = cls.FIELDS[0]
        kind = py_kind(f.ctype, names)
        if len(cls.FIELDS) != 1 or f.offset != 0 or f.size != ct.size:
            problems.append(f"{cname} is a {ct.size}-byte array; ours has fields "
                            f"{[(g.name, g.offset, g.size) for g in cls.FIELDS]}")
        elif not kinds_agree(kind, ct.kind, f.size):
            problems.append(f"{cname}: ours {kind}, Xen {ct.kind}")
        fail_with(problems, f"mismatches in {cls.__name__}")
        return

    covered: set[str] = set()
    for f in cls.FIELDS:
        member = ALIASES.get((cls, f.name), f.name)
        covered.add(member.split(".")[0])
        where = f"{cname}.{member} ({cls.__name__}.{f.name})"
        if member not in ct.fields:
            problems.append(f"{where}: Xen has no such member")
            continue
        off, size, kind = ct.fields[member]
        if (f.offset, f.size) != (off, size):
            problems.append(f"{where}: ours offset {f.offset} size {f.size}, "
                            f"Xen offset {off} size {size}")
        ours = py_kind(f.ctype, names)
        if (cls, f.name) in FLATTENED_UNIONS:
            widest = {k for m, (_o, s, k) in ct.fields.items()
                      if m.startswith(member + ".") and s == size}
            if ours not in widest:
                problems.append(f"{where}: ours {ours}, Xen's union's widest members are {sorted(widest)}")
        elif (cls, f.name) not in KIND_EXEMPT and not kinds_agree(ours, kind, size):
            problems.append(f"{where}: ours {ours}, Xen {kind}")

    for m, (off, size, _k) in ct.fields.items():
        if "." not in m and m not in covered:
            problems.append(f"{cname}.{m} (offset {off}, size {size}): we have no field for it")

    # A C member reached through aliases must be spanned exactly by our fields.
    for (owner, fname), member in ALIASES.items():
        if owner is not cls:
            continue
        root = member.split(".")[0]
        off, size, _k = ct.fields[root]
        group = [f for f in cls.FIELDS if ALIASES.get((cls, f.name), f.name).split(".")[0] == root]
        after = [f.offset for f in cls.FIELDS if f.offset > group[-1].offset and f not in group]
        span_end = after[0] if after else cls.SIZE
        if (group[0].offset, span_end - group[0].offset) != (off, size):
            problems.append(f"{cname}.{root}: ours spans {group[0].offset}..{span_end}, "
                            f"Xen {off}..{off + size}")
    fail_with(sorted(set(problems)), f"mismatches in {cls.__name__}")


UNION_FIELDS = [
    (cls, f.name) for cls in STRUCTS for f in cls.FIELDS if isinstance(f.ctype, abi.Union)
]


@pytest.mark.parametrize("cls, name", UNION_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_every_union_variant_is_a_member_of_xens_union(cls, name, probe):
    names = c_names(probe)
    cname = names[cls]
    ct = probe.types[cname]
    union = next(f.ctype for f in cls.FIELDS if f.name == name)
    members = {m[len(name) + 1:]: v for m, v in ct.fields.items() if m.startswith(name + ".")}
    _off, usize, _k = ct.fields[name]
    problems = []
    scalar_kinds = {k for _o, _s, k in members.values() if k in SCALAR_KINDS.values()}
    for variant in union.variants:
        if isinstance(variant, abi.StructType):
            target = names.get(variant.cls)
            hits = [m for m, (_o, s, k) in members.items()
                    if k == target or f"{cname}.{name}.{m}" == target]
            if not hits:
                problems.append(f"{variant.cls.__name__}: no member of {cname}.{name} has type {target}")
            elif members[hits[0]][1] != variant.cls.SIZE:
                problems.append(f"{variant.cls.__name__}: ours {variant.cls.SIZE} bytes, "
                                f"{cname}.{name}.{hits[0]} {members[hits[0]][1]}")
        elif isinstance(variant, abi.Scalar):
            kind = SCALAR_KINDS[variant.code]
            if scalar_kinds and kind not in scalar_kinds:
                problems.append(f"scalar variant {kind}: Xen's scalar members are {sorted(scalar_kinds)}")
            if variant.size > usize or variant.align > ct.align:
                problems.append(f"scalar variant {kind} would change the union's layout")
        elif isinstance(variant, abi.Bytes) and not any(
                k in BYTE_ARRAYS and s == variant.size for _o, s, k in members.values()):
            problems.append(f"char[{variant.size}] variant: Xen's union has no such byte array")
    if union.size != usize:
        problems.append(f"union size: ours {union.size}, Xen {usize}")
    fail_with(problems, f"mismatches in {cls.__name__}.{name}")


def test_evtchn_status_pirq_and_virq_are_the_first_four_bytes_of_u(probe):
    """EvtchnStatus._decode reads pirq and virq as the union's first 4 bytes."""
    fields = probe.types["evtchn_status"].fields
    base = fields["u"][0]
    assert (fields["u.pirq"][0] - base, fields["u.pirq"][1]) == (0, 4)
    assert (fields["u.virq"][0] - base, fields["u.virq"][1]) == (0, 4)
    assert EvtchnStatus.offsetof("u") == base


# --------------------------------------------------------------- constants
# Python names that Xen spells differently.
def c_const_name(module, name: str) -> str:
    if module.__name__ == "hv.public.errno":
        return "XEN_" + name
    if name.startswith("HYPERVISOR_"):
        return "__" + name
    return {
        "XEN_INTERFACE_VERSION": "__XEN_LATEST_INTERFACE_VERSION__",
        "XEN_COMMANDLINE_LEN": "sizeof(xen_commandline_t)",
    }.get(name, name)


# Constants hv/public derives from a layout: checked against the probe's layout.
DERIVED = {
    "SHINFO_VCPU_INFO": lambda p: p.types["shared_info"].fields["vcpu_info"][0],
    "SHINFO_EVTCHN_PENDING": lambda p: p.types["shared_info"].fields["evtchn_pending"][0],
    "SHINFO_EVTCHN_MASK": lambda p: p.types["shared_info"].fields["evtchn_mask"][0],
    "SHINFO_WC_VERSION": lambda p: p.types["shared_info"].fields["wc_version"][0],
    "SHINFO_WC_SEC": lambda p: p.types["shared_info"].fields["wc_sec"][0],
    "SHINFO_WC_NSEC": lambda p: p.types["shared_info"].fields["wc_nsec"][0],
    "SHINFO_WC_SEC_HI": lambda p: p.types["shared_info"].fields["wc_sec_hi"][0],
    "VCPU_INFO_SIZE": lambda p: p.types["vcpu_info"].size,
    "VCPUINFO_UPCALL_PENDING": lambda p: p.types["vcpu_info"].fields["evtchn_upcall_pending"][0],
    "VCPUINFO_UPCALL_MASK": lambda p: p.types["vcpu_info"].fields["evtchn_upcall_mask"][0],
    "VCPUINFO_PENDING_SEL": lambda p: p.types["vcpu_info"].fields["evtchn_pending_sel"][0],
    "VCPUINFO_TIME": lambda p: p.types["vcpu_info"].fields["time"][0],
    "GRANT_ENTRY_V1_SIZE": lambda p: p.types["grant_entry_v1"].size,
    "GRANT_ENTRIES_PER_PAGE_V1": lambda p: 4096 // p.types["grant_entry_v1"].size,
}

# Constants with no name in Xen's public headers.
NOT_IN_PUBLIC_HEADERS = {
    "PAGE_SHIFT": "x86 paging",
    "PAGE_SIZE": "x86 paging",
    "_PAGE_PRESENT": "x86 page-table entry bit",
    "_PAGE_RW": "x86 page-table entry bit",
    "PTE_MFN_SHIFT": "x86 page-table entry layout",
    "PTE_MFN_MASK": "x86 page-table entry layout",
    "MEMOP_EXTENT_SHIFT": "xen/include/xen/hypercall.h (hypervisor-internal)",
    "MEMOP_CMD_MASK": "xen/include/xen/hypercall.h (hypervisor-internal)",
    "SCHEDOP_POLL_MAX_PORTS": "common/sched/core.c: nr_ports > 128",
    "SHUTDOWN_CODE_INVALID": "xen/include/xen/sched.h (hypervisor-internal)",
    "XENFEAT_grant_map_identity": "commented out (deprecated) in xen/features.h",
    "VDISK_CDROM": "Linux's include/xen/interface/io/blkif.h users (the info node's bits)",
    "VDISK_REMOVABLE": "Linux's blkfront (the info node's bits)",
    "VDISK_READONLY": "Linux's blkfront (the info node's bits)",
    "SECTOR_SIZE": "blkif.h's prose: sectors are 512 bytes",
    "SECTORS_PER_PAGE": "derived: 4096 / 512",
    "SEGS_PER_INDIRECT_FRAME": "derived: a page of blkif_request_segment",
    "REQUEST_SIZE": "sizeof(struct blkif_request), checked as a layout",
    "RESPONSE_SIZE": "sizeof(struct blkif_response), checked as a layout",
    "SLOT_SIZE": "sizeof(union blkif_sring_entry), checked in test_io_layouts",
    "TX_SLOT": "sizeof(union netif_tx_sring_entry), checked in test_io_layouts",
    "RX_SLOT": "sizeof(union netif_rx_sring_entry), checked in test_io_layouts",
}


def our_constants(module) -> dict[str, int]:
    return {
        name: value for name, value in vars(module).items()
        if type(value) is int and name.lstrip("_")[:1].isupper()
    }


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_probe_covers_every_constant_we_define(module, probe):
    missing = [
        f"{name} (Xen: {c_const_name(module, name)})" for name in our_constants(module)
        if name not in DERIVED and name not in NOT_IN_PUBLIC_HEADERS
        and c_const_name(module, name) not in probe.consts
    ]
    fail_with(missing, f"constants of {module.__name__} that tests/c/abi_probe.c does not print")


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_constants_have_xens_values(module, probe):
    problems = []
    for name, value in our_constants(module).items():
        if name in DERIVED:
            try:
                xen = DERIVED[name](probe)
            except KeyError as missing:
                problems.append(f"{name}: the probe does not print {missing}")
                continue
        else:
            xen = probe.consts.get(c_const_name(module, name))
        if xen is not None and xen != value:
            problems.append(f"{name}: ours {value} ({value:#x}), Xen {c_const_name(module, name)} "
                            f"= {xen} ({xen:#x})")
    fail_with(problems, f"constants of {module.__name__} that differ from Xen's")


def test_probe_is_built_for_the_interface_version_we_model(probe):
    from hv.public.xen import XEN_INTERFACE_VERSION
    assert probe.consts["__XEN_INTERFACE_VERSION__"] == XEN_INTERFACE_VERSION


MACRO_SAMPLES = [
    ("XENMEMF_address_bits", 12), ("XENMEMF_address_bits", 32), ("XENMEMF_address_bits", 52),
    ("XENMEMF_get_address_bits", 0), ("XENMEMF_get_address_bits", 131872),
    ("XENMEMF_node", 0), ("XENMEMF_node", 63),
    ("XENMEMF_get_node", 0), ("XENMEMF_get_node", 256), ("XENMEMF_get_node", 131872),
    ("XENMEMF_exact_node", 2),
]


@pytest.mark.parametrize("name, arg", MACRO_SAMPLES, ids=lambda x: str(x))
def test_function_like_macros_compute_what_xens_do(name, arg, probe):
    from hv.public import memory
    assert getattr(memory, name)(arg) == probe.consts[f"{name}({arg})"]


def test_errno_module_lists_every_xen_errno(probe):
    """hv.public.errno is xen/errno.h: every number Xen can return has a name."""
    from hv.public import errno
    missing = [
        f"{name[4:]} = {value}" for name, value in probe.consts.items()
        if re.fullmatch(r"XEN_E[A-Z0-9]+", name) and not hasattr(errno, name[4:])
    ]
    fail_with(missing, "errno names in xen/errno.h that hv.public.errno lacks")
