"""xen/include/public/xen.h and arch-x86/xen-x86_64.h: hypercall numbers,
domain ids, VIRQs, and the two info pages (shared_info, start_info)."""

from hv.public.abi import (
    char, handle, int8_t, uint8_t, uint16_t, uint32_t, uint64_t, unsigned_long, xen_pfn_t,
    xen_ulong_t, xenstruct,
)

XEN_INTERFACE_VERSION = 0x00040E00
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# ------------------------------------------------------------ hypercalls
HYPERVISOR_set_trap_table = 0
HYPERVISOR_mmu_update = 1
HYPERVISOR_set_gdt = 2
HYPERVISOR_stack_switch = 3
HYPERVISOR_set_callbacks = 4
HYPERVISOR_fpu_taskswitch = 5
HYPERVISOR_sched_op_compat = 6
HYPERVISOR_platform_op = 7
HYPERVISOR_set_debugreg = 8
HYPERVISOR_get_debugreg = 9
HYPERVISOR_update_descriptor = 10
HYPERVISOR_memory_op = 12
HYPERVISOR_multicall = 13
HYPERVISOR_update_va_mapping = 14
HYPERVISOR_set_timer_op = 15
HYPERVISOR_event_channel_op_compat = 16
HYPERVISOR_xen_version = 17
HYPERVISOR_console_io = 18
HYPERVISOR_physdev_op_compat = 19
HYPERVISOR_grant_table_op = 20
HYPERVISOR_vm_assist = 21
HYPERVISOR_update_va_mapping_otherdomain = 22
HYPERVISOR_iret = 23
HYPERVISOR_vcpu_op = 24
HYPERVISOR_set_segment_base = 25
HYPERVISOR_mmuext_op = 26
HYPERVISOR_xsm_op = 27
HYPERVISOR_nmi_op = 28
HYPERVISOR_sched_op = 29
HYPERVISOR_callback_op = 30
HYPERVISOR_xenoprof_op = 31
HYPERVISOR_event_channel_op = 32
HYPERVISOR_physdev_op = 33
HYPERVISOR_hvm_op = 34
HYPERVISOR_sysctl = 35
HYPERVISOR_domctl = 36
HYPERVISOR_kexec_op = 37
HYPERVISOR_tmem_op = 38
HYPERVISOR_argo_op = 39
HYPERVISOR_xenpmu_op = 40
HYPERVISOR_dm_op = 41
HYPERVISOR_hypfs_op = 42
HYPERVISOR_arch_0 = 48
HYPERVISOR_arch_1 = 49
HYPERVISOR_arch_7 = 55

HYPERCALL_NAMES = {
    value: name[len("HYPERVISOR_"):]
    for name, value in dict(globals()).items()
    if name.startswith("HYPERVISOR_") and not name.startswith("HYPERVISOR_arch_")
}

# ------------------------------------------------------------ VIRQs
VIRQ_TIMER = 0       # per vCPU: timebase update and requested timeouts
VIRQ_DEBUG = 1       # per vCPU: dump debug info
VIRQ_CONSOLE = 2     # global (dom0): bytes on the emergency console
VIRQ_DOM_EXC = 3     # global (dom0): exceptional event for some domain
VIRQ_TBUF = 4
VIRQ_DEBUGGER = 6
VIRQ_XENOPROF = 7
VIRQ_CON_RING = 8
VIRQ_PCPU_STATE = 9
VIRQ_MEM_EVENT = 10
VIRQ_ARGO = 11
VIRQ_ENOMEM = 12
VIRQ_XENPMU = 13
VIRQ_ARCH_0 = 16
VIRQ_ARCH_7 = 23
NR_VIRQS = 24

VIRQ_NAMES = {
    VIRQ_TIMER: "TIMER", VIRQ_DEBUG: "DEBUG", VIRQ_CONSOLE: "CONSOLE",
    VIRQ_DOM_EXC: "DOM_EXC", VIRQ_TBUF: "TBUF", VIRQ_DEBUGGER: "DEBUGGER",
    VIRQ_XENOPROF: "XENOPROF", VIRQ_CON_RING: "CON_RING",
    VIRQ_PCPU_STATE: "PCPU_STATE", VIRQ_MEM_EVENT: "MEM_EVENT",
    VIRQ_ARGO: "ARGO", VIRQ_ENOMEM: "ENOMEM", VIRQ_XENPMU: "XENPMU",
}

# ------------------------------------------------------------ mmu_update / mmuext_op
MMU_NORMAL_PT_UPDATE = 0
MMU_MACHPHYS_UPDATE = 1
MMU_PT_UPDATE_PRESERVE_AD = 2
MMU_PT_UPDATE_NO_TRANSLATE = 3

MMUEXT_PIN_L1_TABLE = 0
MMUEXT_PIN_L2_TABLE = 1
MMUEXT_PIN_L3_TABLE = 2
MMUEXT_PIN_L4_TABLE = 3
MMUEXT_UNPIN_TABLE = 4
MMUEXT_NEW_BASEPTR = 5
MMUEXT_TLB_FLUSH_LOCAL = 6
MMUEXT_INVLPG_LOCAL = 7
MMUEXT_TLB_FLUSH_MULTI = 8
MMUEXT_INVLPG_MULTI = 9
MMUEXT_TLB_FLUSH_ALL = 10
MMUEXT_INVLPG_ALL = 11
MMUEXT_FLUSH_CACHE = 12
MMUEXT_SET_LDT = 13
MMUEXT_NEW_USER_BASEPTR = 15
MMUEXT_CLEAR_PAGE = 16
MMUEXT_COPY_PAGE = 17

# x86 page-table entry bits (the few that Xen checks on a PV update).
_PAGE_PRESENT = 0x001
_PAGE_RW = 0x002
PTE_MFN_SHIFT = PAGE_SHIFT
PTE_MFN_MASK = ((1 << 40) - 1) << PAGE_SHIFT  # bits 12..51

# ------------------------------------------------------------ console_io
CONSOLEIO_write = 0
CONSOLEIO_read = 1

# ------------------------------------------------------------ vm_assist
VMASST_CMD_enable = 0
VMASST_CMD_disable = 1
VMASST_TYPE_4gb_segments = 0
VMASST_TYPE_4gb_segments_notify = 1
VMASST_TYPE_writable_pagetables = 2
VMASST_TYPE_pae_extended_cr3 = 3
VMASST_TYPE_architectural_iopl = 4
VMASST_TYPE_runstate_update_flag = 5
VMASST_TYPE_m2p_strict = 32

# ------------------------------------------------------------ domain ids
DOMID_FIRST_RESERVED = 0x7FF0
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2
DOMID_COW = 0x7FF3
DOMID_INVALID = 0x7FF4
DOMID_IDLE = 0x7FFF
DOMID_MASK = 0x7FFF

XEN_LEGACY_MAX_VCPUS = 32

# The GDT: a guest's entries come first; the last pages are Xen's own.
FIRST_RESERVED_GDT_PAGE = 14
FIRST_RESERVED_GDT_BYTE = FIRST_RESERVED_GDT_PAGE * 4096
FIRST_RESERVED_GDT_ENTRY = FIRST_RESERVED_GDT_BYTE // 8
FLAT_RING3_CS32 = 0xE023
FLAT_RING3_CS64 = 0xE033
FLAT_KERNEL_CS64 = FLAT_RING3_CS64
FLAT_KERNEL_CS = FLAT_KERNEL_CS64


# ------------------------------------------------------------ structures
@xenstruct
class MmuUpdate:
    """struct mmu_update: ``ptr`` is a machine address whose low two bits
    select the command; ``val`` the new entry (or the pfn for M2P updates)."""
    ptr: uint64_t
    val: uint64_t


@xenstruct
class MmuextOp:
    """struct mmuext_op: ``arg1`` is the frame (mfn) for pin/unpin and
    NEW_BASEPTR, the linear address for SET_LDT; ``arg2`` is nr_ents for
    SET_LDT, the vcpumask handle for the MULTI flushes."""
    cmd: uint32_t
    arg1: xen_ulong_t
    arg2: xen_ulong_t


@xenstruct
class MulticallEntry:
    """struct multicall_entry: the hypercall number and up to six arguments.

    ``args`` holds the arguments as the hypercall takes them (a structure
    travels in place of the pointer to it); packed, each word keeps an
    integer and writes zero for anything else. ``result`` is filled in on
    the copy the multicall hands back."""
    op: xen_ulong_t
    result: xen_ulong_t
    args: handle("arg")[6]


@xenstruct
class CpuUserRegs:
    """struct cpu_user_regs, x86_64."""
    r15: uint64_t
    r14: uint64_t
    r13: uint64_t
    r12: uint64_t
    rbp: uint64_t
    rbx: uint64_t
    r11: uint64_t
    r10: uint64_t
    r9: uint64_t
    r8: uint64_t
    rax: uint64_t
    rcx: uint64_t
    rdx: uint64_t
    rsi: uint64_t
    rdi: uint64_t
    error_code: uint32_t
    entry_vector: uint32_t
    rip: uint64_t
    cs: uint16_t
    _pad0: uint16_t
    saved_upcall_mask: uint8_t
    _pad1: uint8_t[3]
    rflags: uint64_t
    rsp: uint64_t
    ss: uint16_t
    _pad2: uint16_t[3]
    es: uint16_t
    _pad3: uint16_t[3]
    ds: uint16_t
    _pad4: uint16_t[3]
    fs: uint16_t
    _pad5: uint16_t[3]
    gs: uint16_t
    _pad6: uint16_t[3]


@xenstruct
class TrapInfo:
    vector: uint8_t
    flags: uint8_t
    cs: uint16_t
    address: unsigned_long


VGCF_I387_VALID = 1 << 0
VGCF_in_kernel = 1 << 2
VGCF_failsafe_disables_events = 1 << 3
VGCF_syscall_disables_events = 1 << 4
VGCF_online = 1 << 5


@xenstruct
class VcpuGuestContext:
    """struct vcpu_guest_context, x86_64: what VCPUOP_initialise and
    XEN_DOMCTL_setvcpucontext hand Xen to start a vCPU."""
    fpu_ctxt: char[512]
    flags: unsigned_long
    user_regs: CpuUserRegs
    trap_ctxt: TrapInfo[256]
    ldt_base: unsigned_long
    ldt_ents: unsigned_long
    gdt_frames: unsigned_long[16]
    gdt_ents: unsigned_long
    kernel_ss: unsigned_long
    kernel_sp: unsigned_long
    ctrlreg: unsigned_long[8]
    debugreg: unsigned_long[8]
    event_callback_eip: unsigned_long
    failsafe_callback_eip: unsigned_long
    syscall_callback_eip: unsigned_long
    vm_assist: unsigned_long
    fs_base: uint64_t
    gs_base_kernel: uint64_t
    gs_base_user: uint64_t


@xenstruct
class VcpuTimeInfo:
    version: uint32_t
    pad0: uint32_t
    tsc_timestamp: uint64_t
    system_time: uint64_t
    tsc_to_system_mul: uint32_t
    tsc_shift: int8_t
    flags: uint8_t
    pad1: uint8_t[2]


def pvclock_scale_delta(delta: int, mul: int, shift: int) -> int:
    """How a guest turns a TSC difference into nanoseconds with its
    vcpu_time_info: shift left (or right when negative), then multiply by
    the 32.32 fraction tsc_to_system_mul."""
    delta = delta << shift if shift >= 0 else delta >> -shift
    return (delta * mul) >> 32


@xenstruct
class ArchVcpuInfo:
    cr2: unsigned_long
    pad: unsigned_long


@xenstruct
class VcpuInfo:
    evtchn_upcall_pending: uint8_t
    evtchn_upcall_mask: uint8_t
    evtchn_pending_sel: xen_ulong_t
    arch: ArchVcpuInfo
    time: VcpuTimeInfo


@xenstruct
class ArchSharedInfo:
    max_pfn: unsigned_long
    pfn_to_mfn_frame_list_list: xen_pfn_t
    nmi_reason: unsigned_long
    p2m_cr3: unsigned_long
    p2m_vaddr: unsigned_long
    p2m_generation: unsigned_long


@xenstruct
class SharedInfo:
    vcpu_info: VcpuInfo[XEN_LEGACY_MAX_VCPUS]
    evtchn_pending: xen_ulong_t[64]
    evtchn_mask: xen_ulong_t[64]
    wc_version: uint32_t
    wc_sec: uint32_t
    wc_nsec: uint32_t
    wc_sec_hi: uint32_t
    arch: ArchSharedInfo


# Offsets the hypervisor and guests use on the live page.
SHINFO_VCPU_INFO = SharedInfo.offsetof("vcpu_info")
SHINFO_EVTCHN_PENDING = SharedInfo.offsetof("evtchn_pending")
SHINFO_EVTCHN_MASK = SharedInfo.offsetof("evtchn_mask")
SHINFO_WC_VERSION = SharedInfo.offsetof("wc_version")
SHINFO_WC_SEC = SharedInfo.offsetof("wc_sec")
SHINFO_WC_NSEC = SharedInfo.offsetof("wc_nsec")
SHINFO_WC_SEC_HI = SharedInfo.offsetof("wc_sec_hi")
VCPU_INFO_SIZE = VcpuInfo.SIZE
VCPUINFO_UPCALL_PENDING = VcpuInfo.offsetof("evtchn_upcall_pending")
VCPUINFO_UPCALL_MASK = VcpuInfo.offsetof("evtchn_upcall_mask")
VCPUINFO_PENDING_SEL = VcpuInfo.offsetof("evtchn_pending_sel")
VCPUINFO_TIME = VcpuInfo.offsetof("time")

MAX_GUEST_CMDLINE = 1024

SIF_PRIVILEGED = 1 << 0
SIF_INITDOMAIN = 1 << 1
SIF_MULTIBOOT_MOD = 1 << 2
SIF_MOD_START_PFN = 1 << 3
SIF_VIRT_P2M_4TOOLS = 1 << 4
SIF_PM_MASK = 0xFF << 8

START_INFO_MAGIC = b"xen-3.0-x86_64"


@xenstruct
class StartInfo:
    """struct start_info. The console union is spelled as its domU variant
    (mfn, evtchn); dom0 reads the same bytes as info_off/info_size."""
    magic: char[32]
    nr_pages: unsigned_long
    shared_info: unsigned_long      # machine address
    flags: uint32_t
    store_mfn: xen_pfn_t
    store_evtchn: uint32_t
    console_mfn: xen_pfn_t
    console_evtchn: uint32_t
    pt_base: unsigned_long
    nr_pt_frames: unsigned_long
    mfn_list: unsigned_long
    mod_start: unsigned_long
    mod_len: unsigned_long
    cmd_line: char[MAX_GUEST_CMDLINE]
    first_p2m_pfn: unsigned_long
    nr_p2m_frames: unsigned_long

