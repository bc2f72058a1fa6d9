/*
 * abi_probe: what Xen's own public headers say about every structure and
 * constant that hv/public models, printed for tests/test_abi_c.py.
 *
 * Build (the test does this):
 *   gcc -Wall -Werror -D__XEN_INTERFACE_VERSION__=0x00040e00 -D__XEN_TOOLS__ \
 *       -o tests/.build/abi_probe tests/c/abi_probe.c
 *
 * Output, one fact a line, fields separated by single spaces:
 *
 *   type  <name> <sizeof> <alignof> <kind>
 *   field <type> <member> <offsetof> <sizeof> <kind>
 *   const <NAME> <value>
 *   end   <number of lines before this one>
 *
 * <name> is a struct tag ("evtchn_send"), a typedef ("xen_domain_handle_t"),
 * or, for a struct with no name of its own, the path to it from its named
 * parent ("evtchn_status.u.unbound"); the offsets of such a struct's members
 * are relative to the struct itself.  <member> may be a path too
 * ("console.domU.mfn", "u.createdomain"), relative to <type>.
 *
 * <kind> says what sort of C object it is, so the test can hold signedness
 * and element types against the model, not only sizes:
 *   u8 s8 u16 s16 u32 s32 u64 s64 char   an integer of that width/sign
 *   <kind>[]                             an array of such integers
 *   <tag> / <tag>[]                      a known struct / array of them
 *   handle(<T>)                          XEN_GUEST_HANDLE(T)
 *   agg                                  any other struct or union
 *
 * <value> is printed as a signed 64-bit decimal.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xen/xen.h>
/*
 * EVTCHNOP_reset_cont is defined only for Xen's own build.  Nothing else in
 * event_channel.h depends on __XEN__, and xen.h (which it includes) is
 * already in, so let just this header see it.
 */
#define __XEN__ 1
#include <xen/event_channel.h>
#undef __XEN__
#include <xen/grant_table.h>
#include <xen/memory.h>
#include <xen/sched.h>
#include <xen/vcpu.h>
#include <xen/version.h>
#include <xen/features.h>
#include <xen/domctl.h>
#include <xen/sysctl.h>
#include <xen/platform.h>
#include <xen/callback.h>
#include <xen/io/console.h>
#include <xen/io/xs_wire.h>
#include <xen/io/blkif.h>
#include <xen/io/netif.h>
#include <xen/io/tpmif.h>
#include <xen/io/xenbus.h>
#include <xen/errno.h>

/*
 * EINTR and ERESTART are only listed for Xen's own build (__XEN__), yet the
 * hypervisor uses them internally and hv/public names them.  errno.h may be
 * included again with a caller-supplied XEN_ERRNO(), so collect the full
 * list under a prefix of our own.
 */
#define __XEN__ 1
enum xenlab_all_errnos {
#define XEN_ERRNO(name, value) XENLAB_##name = value,
#include <xen/errno.h>
};
#undef __XEN__

#if !defined(__XEN_TOOLS__)
#error "build with -D__XEN_TOOLS__: domctl.h and the register unions need it"
#endif

static unsigned long lines;

#define KIND(x) _Generic((x),                                             \
    char: "char", signed char: "s8", unsigned char: "u8",                 \
    short: "s16", unsigned short: "u16",                                  \
    int: "s32", unsigned int: "u32",                                      \
    long: "s64", unsigned long: "u64",                                    \
    long long: "s64", unsigned long long: "u64",                          \
    char *: "char[]", signed char *: "s8[]", unsigned char *: "u8[]",     \
    short *: "s16[]", unsigned short *: "u16[]",                          \
    int *: "s32[]", unsigned int *: "u32[]",                              \
    long *: "s64[]", unsigned long *: "u64[]",                            \
    long long *: "s64[]", unsigned long long *: "u64[]",                  \
    struct arch_vcpu_info: "arch_vcpu_info",                              \
    struct vcpu_time_info: "vcpu_time_info",                              \
    struct vcpu_info *: "vcpu_info[]",                                    \
    struct arch_shared_info: "arch_shared_info",                          \
    struct cpu_user_regs: "cpu_user_regs",                                \
    struct trap_info *: "trap_info[]",                                    \
    struct gnttab_copy_ptr: "gnttab_copy_ptr",                            \
    struct blkif_request_segment *: "blkif_request_segment[]",            \
    struct xenctl_bitmap: "xenctl_bitmap",                                \
    struct xen_arch_domainconfig: "xen_arch_domainconfig",                \
    struct xen_domctl_createdomain: "xen_domctl_createdomain",            \
    struct xen_domctl_getdomaininfo: "xen_domctl_getdomaininfo",          \
    struct xen_domctl_vcpuaffinity: "xen_domctl_vcpuaffinity",            \
    struct xen_domctl_max_mem: "xen_domctl_max_mem",                      \
    struct xen_domctl_vcpucontext: "xen_domctl_vcpucontext",              \
    struct xen_domctl_getvcpuinfo: "xen_domctl_getvcpuinfo",              \
    struct xen_domctl_max_vcpus: "xen_domctl_max_vcpus",                  \
    struct xen_domctl_scheduler_op: "xen_domctl_scheduler_op",            \
    struct xen_domctl_setdomainhandle: "xen_domctl_setdomainhandle",      \
    struct xen_domctl_irq_permission: "xen_domctl_irq_permission",        \
    struct xen_domctl_settimeoffset: "xen_domctl_settimeoffset",          \
    struct xen_domctl_set_virq_handler: "xen_domctl_set_virq_handler",    \
    struct xen_domctl_sendtrigger: "xen_domctl_sendtrigger",              \
    struct xenpf_settime64: "xenpf_settime64",                            \
    struct xen_domctl_sched_credit: "xen_domctl_sched_credit",            \
    struct xen_domctl_sched_credit2: "xen_domctl_sched_credit2",          \
    struct xen_domctl_sched_rtds: "xen_domctl_sched_rtds",                \
    struct xen_sysctl_readconsole: "xen_sysctl_readconsole",              \
    struct xen_sysctl_physinfo: "xen_sysctl_physinfo",                    \
    struct xen_sysctl_sched_id: "xen_sysctl_sched_id",                    \
    struct xen_sysctl_debug_keys: "xen_sysctl_debug_keys",                \
    struct xen_sysctl_getdomaininfolist: "xen_sysctl_getdomaininfolist",  \
    XEN_GUEST_HANDLE_64(xen_domctl_getdomaininfo_t): "handle(xen_domctl_getdomaininfo_t)", \
    XEN_GUEST_HANDLE(char): "handle(char)",                               \
    XEN_GUEST_HANDLE(const_char): "handle(const_char)",                   \
    XEN_GUEST_HANDLE(xen_pfn_t): "handle(xen_pfn_t)",                     \
    XEN_GUEST_HANDLE(evtchn_port_t): "handle(evtchn_port_t)",             \
    XEN_GUEST_HANDLE(uint8): "handle(uint8)",                             \
    XEN_GUEST_HANDLE(const_void): "handle(const_void)",                   \
    XEN_GUEST_HANDLE(vcpu_guest_context_t): "handle(vcpu_guest_context_t)", \
    XEN_GUEST_HANDLE(xen_domctl_schedparam_vcpu_t):                       \
        "handle(xen_domctl_schedparam_vcpu_t)",                           \
    default: "agg")

static void type_line(const char *name, size_t size, size_t align, const char *kind)
{
    printf("type %s %zu %zu %s\n", name, size, align, kind);
    lines++;
}

static void field_line(const char *type, const char *member, size_t offset,
                       size_t size, const char *kind)
{
    printf("field %s %s %zu %zu %s\n", type, member, offset, size, kind);
    lines++;
}

static void const_line(const char *name, long long value)
{
    printf("const %s %lld\n", name, value);
    lines++;
}

/* A named struct, and one of its members (a path is fine: "u.pirq"). */
#define STRUCT(tag)                                                       \
    type_line(#tag, sizeof(struct tag), _Alignof(struct tag),            \
              KIND(*(struct tag *)0))
#define MEMBER(tag, m)                                                    \
    field_line(#tag, #m, offsetof(struct tag, m),                        \
               sizeof(((struct tag *)0)->m), KIND(((struct tag *)0)->m))

/* A typedef that is not a struct tag (the char-array typedefs). */
#define TYPEDEF(t) type_line(#t, sizeof(t), _Alignof(t), KIND(*(t *)0))

/* A struct without a tag, reached through a path from a named one. */
#define INNER(tag, path)                                                  \
    type_line(#tag "." #path, sizeof(((struct tag *)0)->path),           \
              _Alignof(__typeof__(((struct tag *)0)->path)),             \
              KIND(((struct tag *)0)->path))
#define INNER_MEMBER(tag, path, m)                                        \
    field_line(#tag "." #path, #m,                                       \
               offsetof(struct tag, path.m) - offsetof(struct tag, path), \
               sizeof(((struct tag *)0)->path.m),                        \
               KIND(((struct tag *)0)->path.m))

#define CONST(name) const_line(#name, (long long)(name))

static void xen_h(void)
{
    STRUCT(mmu_update);
    MEMBER(mmu_update, ptr);
    MEMBER(mmu_update, val);

    STRUCT(mmuext_op);
    MEMBER(mmuext_op, cmd);
    MEMBER(mmuext_op, arg1);
    MEMBER(mmuext_op, arg1.mfn);
    MEMBER(mmuext_op, arg1.linear_addr);
    MEMBER(mmuext_op, arg2);
    MEMBER(mmuext_op, arg2.nr_ents);
    MEMBER(mmuext_op, arg2.vcpumask);
    MEMBER(mmuext_op, arg2.src_mfn);

    STRUCT(multicall_entry);
    MEMBER(multicall_entry, op);
    MEMBER(multicall_entry, result);
    MEMBER(multicall_entry, args);

    STRUCT(cpu_user_regs);
    MEMBER(cpu_user_regs, r15);
    MEMBER(cpu_user_regs, r14);
    MEMBER(cpu_user_regs, r13);
    MEMBER(cpu_user_regs, r12);
    MEMBER(cpu_user_regs, rbp);
    MEMBER(cpu_user_regs, rbx);
    MEMBER(cpu_user_regs, r11);
    MEMBER(cpu_user_regs, r10);
    MEMBER(cpu_user_regs, r9);
    MEMBER(cpu_user_regs, r8);
    MEMBER(cpu_user_regs, rax);
    MEMBER(cpu_user_regs, rcx);
    MEMBER(cpu_user_regs, rdx);
    MEMBER(cpu_user_regs, rsi);
    MEMBER(cpu_user_regs, rdi);
    MEMBER(cpu_user_regs, error_code);
    MEMBER(cpu_user_regs, entry_vector);
    MEMBER(cpu_user_regs, rip);
    MEMBER(cpu_user_regs, cs);
    MEMBER(cpu_user_regs, _pad0);
    MEMBER(cpu_user_regs, saved_upcall_mask);
    MEMBER(cpu_user_regs, _pad1);
    MEMBER(cpu_user_regs, rflags);
    MEMBER(cpu_user_regs, rsp);
    MEMBER(cpu_user_regs, ss);
    MEMBER(cpu_user_regs, _pad2);
    MEMBER(cpu_user_regs, es);
    MEMBER(cpu_user_regs, _pad3);
    MEMBER(cpu_user_regs, ds);
    MEMBER(cpu_user_regs, _pad4);
    MEMBER(cpu_user_regs, fs);
    MEMBER(cpu_user_regs, _pad5);
    MEMBER(cpu_user_regs, gs);
    MEMBER(cpu_user_regs, _pad6);

    STRUCT(trap_info);
    MEMBER(trap_info, vector);
    MEMBER(trap_info, flags);
    MEMBER(trap_info, cs);
    MEMBER(trap_info, address);

    STRUCT(vcpu_guest_context);
    MEMBER(vcpu_guest_context, fpu_ctxt);
    MEMBER(vcpu_guest_context, fpu_ctxt.x);
    MEMBER(vcpu_guest_context, flags);
    MEMBER(vcpu_guest_context, user_regs);
    MEMBER(vcpu_guest_context, trap_ctxt);
    MEMBER(vcpu_guest_context, ldt_base);
    MEMBER(vcpu_guest_context, ldt_ents);
    MEMBER(vcpu_guest_context, gdt_frames);
    MEMBER(vcpu_guest_context, gdt_ents);
    MEMBER(vcpu_guest_context, kernel_ss);
    MEMBER(vcpu_guest_context, kernel_sp);
    MEMBER(vcpu_guest_context, ctrlreg);
    MEMBER(vcpu_guest_context, debugreg);
    MEMBER(vcpu_guest_context, event_callback_eip);
    MEMBER(vcpu_guest_context, failsafe_callback_eip);
    MEMBER(vcpu_guest_context, syscall_callback_eip);
    MEMBER(vcpu_guest_context, vm_assist);
    MEMBER(vcpu_guest_context, fs_base);
    MEMBER(vcpu_guest_context, gs_base_kernel);
    MEMBER(vcpu_guest_context, gs_base_user);

    STRUCT(vcpu_time_info);
    MEMBER(vcpu_time_info, version);
    MEMBER(vcpu_time_info, pad0);
    MEMBER(vcpu_time_info, tsc_timestamp);
    MEMBER(vcpu_time_info, system_time);
    MEMBER(vcpu_time_info, tsc_to_system_mul);
    MEMBER(vcpu_time_info, tsc_shift);
    MEMBER(vcpu_time_info, flags);
    MEMBER(vcpu_time_info, pad1);

    STRUCT(arch_vcpu_info);
    MEMBER(arch_vcpu_info, cr2);
    MEMBER(arch_vcpu_info, pad);

    STRUCT(vcpu_info);
    MEMBER(vcpu_info, evtchn_upcall_pending);
    MEMBER(vcpu_info, evtchn_upcall_mask);
    MEMBER(vcpu_info, evtchn_pending_sel);
    MEMBER(vcpu_info, arch);
    MEMBER(vcpu_info, time);

    STRUCT(arch_shared_info);
    MEMBER(arch_shared_info, max_pfn);
    MEMBER(arch_shared_info, pfn_to_mfn_frame_list_list);
    MEMBER(arch_shared_info, nmi_reason);
    MEMBER(arch_shared_info, p2m_cr3);
    MEMBER(arch_shared_info, p2m_vaddr);
    MEMBER(arch_shared_info, p2m_generation);

    STRUCT(shared_info);
    MEMBER(shared_info, vcpu_info);
    MEMBER(shared_info, evtchn_pending);
    MEMBER(shared_info, evtchn_mask);
    MEMBER(shared_info, wc_version);
    MEMBER(shared_info, wc_sec);
    MEMBER(shared_info, wc_nsec);
    MEMBER(shared_info, wc_sec_hi);
    MEMBER(shared_info, arch);

    STRUCT(start_info);
    MEMBER(start_info, magic);
    MEMBER(start_info, nr_pages);
    MEMBER(start_info, shared_info);
    MEMBER(start_info, flags);
    MEMBER(start_info, store_mfn);
    MEMBER(start_info, store_evtchn);
    MEMBER(start_info, console);
    MEMBER(start_info, console.domU.mfn);
    MEMBER(start_info, console.domU.evtchn);
    MEMBER(start_info, console.dom0.info_off);
    MEMBER(start_info, console.dom0.info_size);
    MEMBER(start_info, pt_base);
    MEMBER(start_info, nr_pt_frames);
    MEMBER(start_info, mfn_list);
    MEMBER(start_info, mod_start);
    MEMBER(start_info, mod_len);
    MEMBER(start_info, cmd_line);
    MEMBER(start_info, first_p2m_pfn);
    MEMBER(start_info, nr_p2m_frames);

    CONST(__XEN_INTERFACE_VERSION__);
    CONST(__XEN_LATEST_INTERFACE_VERSION__);

    CONST(__HYPERVISOR_set_trap_table);
    CONST(__HYPERVISOR_mmu_update);
    CONST(__HYPERVISOR_set_gdt);
    CONST(__HYPERVISOR_stack_switch);
    CONST(__HYPERVISOR_set_callbacks);
    CONST(__HYPERVISOR_fpu_taskswitch);
    CONST(__HYPERVISOR_sched_op_compat);
    CONST(__HYPERVISOR_platform_op);
    CONST(__HYPERVISOR_set_debugreg);
    CONST(__HYPERVISOR_get_debugreg);
    CONST(__HYPERVISOR_update_descriptor);
    CONST(__HYPERVISOR_memory_op);
    CONST(__HYPERVISOR_multicall);
    CONST(__HYPERVISOR_update_va_mapping);
    CONST(__HYPERVISOR_set_timer_op);
    CONST(__HYPERVISOR_event_channel_op_compat);
    CONST(__HYPERVISOR_xen_version);
    CONST(__HYPERVISOR_console_io);
    CONST(__HYPERVISOR_physdev_op_compat);
    CONST(__HYPERVISOR_grant_table_op);
    CONST(__HYPERVISOR_vm_assist);
    CONST(__HYPERVISOR_update_va_mapping_otherdomain);
    CONST(__HYPERVISOR_iret);
    CONST(__HYPERVISOR_vcpu_op);
    CONST(__HYPERVISOR_set_segment_base);
    CONST(__HYPERVISOR_mmuext_op);
    CONST(__HYPERVISOR_xsm_op);
    CONST(__HYPERVISOR_nmi_op);
    CONST(__HYPERVISOR_sched_op);
    CONST(__HYPERVISOR_callback_op);
    CONST(__HYPERVISOR_xenoprof_op);
    CONST(__HYPERVISOR_event_channel_op);
    CONST(__HYPERVISOR_physdev_op);
    CONST(__HYPERVISOR_hvm_op);
    CONST(__HYPERVISOR_sysctl);
    CONST(__HYPERVISOR_domctl);
    CONST(__HYPERVISOR_kexec_op);
    CONST(__HYPERVISOR_tmem_op);
    CONST(__HYPERVISOR_argo_op);
    CONST(__HYPERVISOR_xenpmu_op);
    CONST(__HYPERVISOR_dm_op);
    CONST(__HYPERVISOR_hypfs_op);
    CONST(__HYPERVISOR_arch_0);
    CONST(__HYPERVISOR_arch_1);
    CONST(__HYPERVISOR_arch_7);

    CONST(VIRQ_TIMER);
    CONST(VIRQ_DEBUG);
    CONST(VIRQ_CONSOLE);
    CONST(VIRQ_DOM_EXC);
    CONST(VIRQ_TBUF);
    CONST(VIRQ_DEBUGGER);
    CONST(VIRQ_XENOPROF);
    CONST(VIRQ_CON_RING);
    CONST(VIRQ_PCPU_STATE);
    CONST(VIRQ_MEM_EVENT);
    CONST(VIRQ_ARGO);
    CONST(VIRQ_ENOMEM);
    CONST(VIRQ_XENPMU);
    CONST(VIRQ_ARCH_0);
    CONST(VIRQ_ARCH_7);
    CONST(NR_VIRQS);

    CONST(MMU_NORMAL_PT_UPDATE);
    CONST(MMU_MACHPHYS_UPDATE);
    CONST(MMU_PT_UPDATE_PRESERVE_AD);
    CONST(MMU_PT_UPDATE_NO_TRANSLATE);

    CONST(MMUEXT_PIN_L1_TABLE);
    CONST(MMUEXT_PIN_L2_TABLE);
    CONST(MMUEXT_PIN_L3_TABLE);
    CONST(MMUEXT_PIN_L4_TABLE);
    CONST(MMUEXT_UNPIN_TABLE);
    CONST(MMUEXT_NEW_BASEPTR);
    CONST(MMUEXT_TLB_FLUSH_LOCAL);
    CONST(MMUEXT_INVLPG_LOCAL);
    CONST(MMUEXT_TLB_FLUSH_MULTI);
    CONST(MMUEXT_INVLPG_MULTI);
    CONST(MMUEXT_TLB_FLUSH_ALL);
    CONST(MMUEXT_INVLPG_ALL);
    CONST(MMUEXT_FLUSH_CACHE);
    CONST(MMUEXT_SET_LDT);
    CONST(MMUEXT_NEW_USER_BASEPTR);
    CONST(MMUEXT_CLEAR_PAGE);
    CONST(MMUEXT_COPY_PAGE);

    CONST(CONSOLEIO_write);
    CONST(CONSOLEIO_read);

    CONST(VMASST_CMD_enable);
    CONST(VMASST_CMD_disable);
    CONST(VMASST_TYPE_4gb_segments);
    CONST(VMASST_TYPE_4gb_segments_notify);
    CONST(VMASST_TYPE_writable_pagetables);
    CONST(VMASST_TYPE_pae_extended_cr3);
    CONST(VMASST_TYPE_architectural_iopl);
    CONST(VMASST_TYPE_runstate_update_flag);
    CONST(VMASST_TYPE_m2p_strict);

    CONST(DOMID_FIRST_RESERVED);
    CONST(DOMID_SELF);
    CONST(DOMID_IO);
    CONST(DOMID_XEN);
    CONST(DOMID_COW);
    CONST(DOMID_INVALID);
    CONST(DOMID_IDLE);
    CONST(DOMID_MASK);

    CONST(XEN_LEGACY_MAX_VCPUS);
    CONST(FIRST_RESERVED_GDT_PAGE);
    CONST(FIRST_RESERVED_GDT_BYTE);
    CONST(FIRST_RESERVED_GDT_ENTRY);
    CONST(FLAT_RING3_CS32);
    CONST(FLAT_RING3_CS64);
    CONST(FLAT_KERNEL_CS64);
    CONST(FLAT_KERNEL_CS);

    CONST(VGCF_I387_VALID);
    CONST(VGCF_in_kernel);
    CONST(VGCF_failsafe_disables_events);
    CONST(VGCF_syscall_disables_events);
    CONST(VGCF_online);

    CONST(MAX_GUEST_CMDLINE);
    CONST(SIF_PRIVILEGED);
    CONST(SIF_INITDOMAIN);
    CONST(SIF_MULTIBOOT_MOD);
    CONST(SIF_MOD_START_PFN);
    CONST(SIF_VIRT_P2M_4TOOLS);
    CONST(SIF_PM_MASK);
}

static void event_channel_h(void)
{
    STRUCT(evtchn_alloc_unbound);
    MEMBER(evtchn_alloc_unbound, dom);
    MEMBER(evtchn_alloc_unbound, remote_dom);
    MEMBER(evtchn_alloc_unbound, port);

    STRUCT(evtchn_bind_interdomain);
    MEMBER(evtchn_bind_interdomain, remote_dom);
    MEMBER(evtchn_bind_interdomain, remote_port);
    MEMBER(evtchn_bind_interdomain, local_port);

    STRUCT(evtchn_bind_virq);
    MEMBER(evtchn_bind_virq, virq);
    MEMBER(evtchn_bind_virq, vcpu);
    MEMBER(evtchn_bind_virq, port);

    STRUCT(evtchn_bind_pirq);
    MEMBER(evtchn_bind_pirq, pirq);
    MEMBER(evtchn_bind_pirq, flags);
    MEMBER(evtchn_bind_pirq, port);

    STRUCT(evtchn_bind_ipi);
    MEMBER(evtchn_bind_ipi, vcpu);
    MEMBER(evtchn_bind_ipi, port);

    STRUCT(evtchn_close);
    MEMBER(evtchn_close, port);

    STRUCT(evtchn_send);
    MEMBER(evtchn_send, port);

    STRUCT(evtchn_status);
    MEMBER(evtchn_status, dom);
    MEMBER(evtchn_status, port);
    MEMBER(evtchn_status, status);
    MEMBER(evtchn_status, vcpu);
    MEMBER(evtchn_status, u);
    MEMBER(evtchn_status, u.unbound);
    MEMBER(evtchn_status, u.interdomain);
    MEMBER(evtchn_status, u.pirq);
    MEMBER(evtchn_status, u.virq);
    INNER(evtchn_status, u.unbound);
    INNER_MEMBER(evtchn_status, u.unbound, dom);
    INNER(evtchn_status, u.interdomain);
    INNER_MEMBER(evtchn_status, u.interdomain, dom);
    INNER_MEMBER(evtchn_status, u.interdomain, port);

    STRUCT(evtchn_bind_vcpu);
    MEMBER(evtchn_bind_vcpu, port);
    MEMBER(evtchn_bind_vcpu, vcpu);

    STRUCT(evtchn_unmask);
    MEMBER(evtchn_unmask, port);

    STRUCT(evtchn_reset);
    MEMBER(evtchn_reset, dom);

    STRUCT(evtchn_init_control);
    MEMBER(evtchn_init_control, control_gfn);
    MEMBER(evtchn_init_control, offset);
    MEMBER(evtchn_init_control, vcpu);
    MEMBER(evtchn_init_control, link_bits);
    MEMBER(evtchn_init_control, _pad);

    STRUCT(evtchn_expand_array);
    MEMBER(evtchn_expand_array, array_gfn);

    STRUCT(evtchn_set_priority);
    MEMBER(evtchn_set_priority, port);
    MEMBER(evtchn_set_priority, priority);

    CONST(EVTCHNOP_bind_interdomain);
    CONST(EVTCHNOP_bind_virq);
    CONST(EVTCHNOP_bind_pirq);
    CONST(EVTCHNOP_close);
    CONST(EVTCHNOP_send);
    CONST(EVTCHNOP_status);
    CONST(EVTCHNOP_alloc_unbound);
    CONST(EVTCHNOP_bind_ipi);
    CONST(EVTCHNOP_bind_vcpu);
    CONST(EVTCHNOP_unmask);
    CONST(EVTCHNOP_reset);
    CONST(EVTCHNOP_init_control);
    CONST(EVTCHNOP_expand_array);
    CONST(EVTCHNOP_set_priority);
    CONST(EVTCHNOP_reset_cont);

    CONST(EVTCHNSTAT_closed);
    CONST(EVTCHNSTAT_unbound);
    CONST(EVTCHNSTAT_interdomain);
    CONST(EVTCHNSTAT_pirq);
    CONST(EVTCHNSTAT_virq);
    CONST(EVTCHNSTAT_ipi);

    CONST(BIND_PIRQ__WILL_SHARE);
    CONST(EVTCHN_2L_NR_CHANNELS);
    CONST(EVTCHN_FIFO_NR_CHANNELS);
    CONST(EVTCHN_FIFO_PRIORITY_DEFAULT);
}

static void grant_table_h(void)
{
    STRUCT(grant_entry_v1);
    MEMBER(grant_entry_v1, flags);
    MEMBER(grant_entry_v1, domid);
    MEMBER(grant_entry_v1, frame);

    STRUCT(gnttab_map_grant_ref);
    MEMBER(gnttab_map_grant_ref, host_addr);
    MEMBER(gnttab_map_grant_ref, flags);
    MEMBER(gnttab_map_grant_ref, ref);
    MEMBER(gnttab_map_grant_ref, dom);
    MEMBER(gnttab_map_grant_ref, status);
    MEMBER(gnttab_map_grant_ref, handle);
    MEMBER(gnttab_map_grant_ref, dev_bus_addr);

    STRUCT(gnttab_unmap_grant_ref);
    MEMBER(gnttab_unmap_grant_ref, host_addr);
    MEMBER(gnttab_unmap_grant_ref, dev_bus_addr);
    MEMBER(gnttab_unmap_grant_ref, handle);
    MEMBER(gnttab_unmap_grant_ref, status);

    STRUCT(gnttab_setup_table);
    MEMBER(gnttab_setup_table, dom);
    MEMBER(gnttab_setup_table, nr_frames);
    MEMBER(gnttab_setup_table, status);
    MEMBER(gnttab_setup_table, frame_list);

    STRUCT(gnttab_dump_table);
    MEMBER(gnttab_dump_table, dom);
    MEMBER(gnttab_dump_table, status);

    STRUCT(gnttab_transfer);
    MEMBER(gnttab_transfer, mfn);
    MEMBER(gnttab_transfer, domid);
    MEMBER(gnttab_transfer, ref);
    MEMBER(gnttab_transfer, status);

    /* Declared inside struct gnttab_copy, but C gives the tag file scope. */
    STRUCT(gnttab_copy_ptr);
    MEMBER(gnttab_copy_ptr, u);
    MEMBER(gnttab_copy_ptr, u.ref);
    MEMBER(gnttab_copy_ptr, u.gmfn);
    MEMBER(gnttab_copy_ptr, domid);
    MEMBER(gnttab_copy_ptr, offset);

    STRUCT(gnttab_copy);
    MEMBER(gnttab_copy, source);
    MEMBER(gnttab_copy, dest);
    MEMBER(gnttab_copy, len);
    MEMBER(gnttab_copy, flags);
    MEMBER(gnttab_copy, status);

    STRUCT(gnttab_query_size);
    MEMBER(gnttab_query_size, dom);
    MEMBER(gnttab_query_size, nr_frames);
    MEMBER(gnttab_query_size, max_nr_frames);
    MEMBER(gnttab_query_size, status);

    STRUCT(gnttab_unmap_and_replace);
    MEMBER(gnttab_unmap_and_replace, host_addr);
    MEMBER(gnttab_unmap_and_replace, new_addr);
    MEMBER(gnttab_unmap_and_replace, handle);
    MEMBER(gnttab_unmap_and_replace, status);

    STRUCT(gnttab_get_version);
    MEMBER(gnttab_get_version, dom);
    MEMBER(gnttab_get_version, pad);
    MEMBER(gnttab_get_version, version);

    CONST(GNTTABOP_map_grant_ref);
    CONST(GNTTABOP_unmap_grant_ref);
    CONST(GNTTABOP_setup_table);
    CONST(GNTTABOP_dump_table);
    CONST(GNTTABOP_transfer);
    CONST(GNTTABOP_copy);
    CONST(GNTTABOP_query_size);
    CONST(GNTTABOP_unmap_and_replace);
    CONST(GNTTABOP_set_version);
    CONST(GNTTABOP_get_status_frames);
    CONST(GNTTABOP_get_version);
    CONST(GNTTABOP_swap_grant_ref);
    CONST(GNTTABOP_cache_flush);

    CONST(GTF_invalid);
    CONST(GTF_permit_access);
    CONST(GTF_accept_transfer);
    CONST(GTF_transitive);
    CONST(GTF_type_mask);
    CONST(_GTF_readonly);
    CONST(GTF_readonly);
    CONST(_GTF_reading);
    CONST(GTF_reading);
    CONST(_GTF_writing);
    CONST(GTF_writing);
    CONST(_GTF_PWT);
    CONST(GTF_PWT);
    CONST(_GTF_PCD);
    CONST(GTF_PCD);
    CONST(_GTF_PAT);
    CONST(GTF_PAT);
    CONST(_GTF_sub_page);
    CONST(GTF_sub_page);
    CONST(_GTF_transfer_committed);
    CONST(GTF_transfer_committed);
    CONST(_GTF_transfer_completed);
    CONST(GTF_transfer_completed);

    CONST(GNTMAP_device_map);
    CONST(GNTMAP_host_map);
    CONST(GNTMAP_readonly);
    CONST(GNTMAP_application_map);
    CONST(GNTMAP_contains_pte);

    CONST(GNTCOPY_source_gref);
    CONST(GNTCOPY_dest_gref);

    CONST(GNTST_okay);
    CONST(GNTST_general_error);
    CONST(GNTST_bad_domain);
    CONST(GNTST_bad_gntref);
    CONST(GNTST_bad_handle);
    CONST(GNTST_bad_virt_addr);
    CONST(GNTST_bad_dev_addr);
    CONST(GNTST_no_device_space);
    CONST(GNTST_permission_denied);
    CONST(GNTST_bad_page);
    CONST(GNTST_bad_copy_arg);
    CONST(GNTST_address_too_big);
    CONST(GNTST_eagain);
    CONST(GNTST_no_space);

    CONST(GNTTAB_NR_RESERVED_ENTRIES);
    CONST(GNTTAB_RESERVED_CONSOLE);
    CONST(GNTTAB_RESERVED_XENSTORE);
}

static void memory_h(void)
{
    STRUCT(xen_memory_reservation);
    MEMBER(xen_memory_reservation, extent_start);
    MEMBER(xen_memory_reservation, nr_extents);
    MEMBER(xen_memory_reservation, extent_order);
    MEMBER(xen_memory_reservation, mem_flags);
    MEMBER(xen_memory_reservation, domid);

    STRUCT(xen_memory_domain);
    MEMBER(xen_memory_domain, domid);

    CONST(XENMEM_increase_reservation);
    CONST(XENMEM_decrease_reservation);
    CONST(XENMEM_maximum_ram_page);
    CONST(XENMEM_current_reservation);
    CONST(XENMEM_maximum_reservation);
    CONST(XENMEM_machphys_mfn_list);
    CONST(XENMEM_populate_physmap);
    CONST(XENMEM_add_to_physmap);
    CONST(XENMEM_memory_map);
    CONST(XENMEM_exchange);
    CONST(XENMEM_maximum_gpfn);
    CONST(XENMEM_remove_from_physmap);
    CONST(XENMEM_set_pod_target);

    CONST(XENMEMF_populate_on_demand);
    CONST(XENMEMF_exact_node_request);
    CONST(XENMEMF_vnode);
    /* Function-like macros: a few samples of each. */
    const_line("XENMEMF_address_bits(12)", (long long)XENMEMF_address_bits(12));
    const_line("XENMEMF_address_bits(32)", (long long)XENMEMF_address_bits(32));
    const_line("XENMEMF_address_bits(52)", (long long)XENMEMF_address_bits(52));
    const_line("XENMEMF_get_address_bits(0)", (long long)XENMEMF_get_address_bits(0));
    const_line("XENMEMF_get_address_bits(131872)", (long long)XENMEMF_get_address_bits(131872));
    const_line("XENMEMF_node(0)", (long long)XENMEMF_node(0));
    const_line("XENMEMF_node(63)", (long long)XENMEMF_node(63));
    const_line("XENMEMF_get_node(0)", (long long)XENMEMF_get_node(0));
    const_line("XENMEMF_get_node(256)", (long long)XENMEMF_get_node(256));
    const_line("XENMEMF_get_node(131872)", (long long)XENMEMF_get_node(131872));
    const_line("XENMEMF_exact_node(2)", (long long)XENMEMF_exact_node(2));
}

static void sched_h(void)
{
    STRUCT(sched_shutdown);
    MEMBER(sched_shutdown, reason);

    STRUCT(sched_poll);
    MEMBER(sched_poll, ports);
    MEMBER(sched_poll, nr_ports);
    MEMBER(sched_poll, timeout);

    STRUCT(sched_remote_shutdown);
    MEMBER(sched_remote_shutdown, domain_id);
    MEMBER(sched_remote_shutdown, reason);

    STRUCT(sched_watchdog);
    MEMBER(sched_watchdog, id);
    MEMBER(sched_watchdog, timeout);

    STRUCT(sched_pin_override);
    MEMBER(sched_pin_override, pcpu);

    CONST(SCHEDOP_yield);
    CONST(SCHEDOP_block);
    CONST(SCHEDOP_shutdown);
    CONST(SCHEDOP_poll);
    CONST(SCHEDOP_remote_shutdown);
    CONST(SCHEDOP_shutdown_code);
    CONST(SCHEDOP_watchdog);
    CONST(SCHEDOP_pin_override);

    CONST(SHUTDOWN_poweroff);
    CONST(SHUTDOWN_reboot);
    CONST(SHUTDOWN_suspend);
    CONST(SHUTDOWN_crash);
    CONST(SHUTDOWN_watchdog);
    CONST(SHUTDOWN_soft_reset);
    CONST(SHUTDOWN_MAX);
}

static void vcpu_h(void)
{
    STRUCT(vcpu_runstate_info);
    MEMBER(vcpu_runstate_info, state);
    MEMBER(vcpu_runstate_info, state_entry_time);
    MEMBER(vcpu_runstate_info, time);

    STRUCT(vcpu_set_periodic_timer);
    MEMBER(vcpu_set_periodic_timer, period_ns);

    STRUCT(vcpu_set_singleshot_timer);
    MEMBER(vcpu_set_singleshot_timer, timeout_abs_ns);
    MEMBER(vcpu_set_singleshot_timer, flags);

    CONST(VCPUOP_initialise);
    CONST(VCPUOP_up);
    CONST(VCPUOP_down);
    CONST(VCPUOP_is_up);
    CONST(VCPUOP_get_runstate_info);
    CONST(VCPUOP_register_runstate_memory_area);
    CONST(VCPUOP_set_periodic_timer);
    CONST(VCPUOP_stop_periodic_timer);
    CONST(VCPUOP_set_singleshot_timer);
    CONST(VCPUOP_stop_singleshot_timer);
    CONST(VCPUOP_register_vcpu_info);
    CONST(VCPUOP_send_nmi);
    CONST(VCPUOP_get_physid);

    CONST(RUNSTATE_running);
    CONST(RUNSTATE_runnable);
    CONST(RUNSTATE_blocked);
    CONST(RUNSTATE_offline);

    CONST(VCPU_SSHOTTMR_future);
}

static void version_h(void)
{
    TYPEDEF(xen_extraversion_t);
    TYPEDEF(xen_capabilities_info_t);
    TYPEDEF(xen_changeset_info_t);
    TYPEDEF(xen_commandline_t);
    TYPEDEF(xen_domain_handle_t);

    STRUCT(xen_compile_info);
    MEMBER(xen_compile_info, compiler);
    MEMBER(xen_compile_info, compile_by);
    MEMBER(xen_compile_info, compile_domain);
    MEMBER(xen_compile_info, compile_date);

    STRUCT(xen_platform_parameters);
    MEMBER(xen_platform_parameters, virt_start);

    STRUCT(xen_feature_info);
    MEMBER(xen_feature_info, submap_idx);
    MEMBER(xen_feature_info, submap);

    CONST(XENVER_version);
    CONST(XENVER_extraversion);
    CONST(XENVER_compile_info);
    CONST(XENVER_capabilities);
    CONST(XENVER_changeset);
    CONST(XENVER_platform_parameters);
    CONST(XENVER_get_features);
    CONST(XENVER_pagesize);
    CONST(XENVER_guest_handle);
    CONST(XENVER_commandline);
    CONST(XENVER_build_id);

    CONST(XEN_EXTRAVERSION_LEN);
    CONST(XEN_CAPABILITIES_INFO_LEN);
    CONST(XEN_CHANGESET_INFO_LEN);
    /* version.h has no XEN_COMMANDLINE_LEN; the typedef is its length. */
    const_line("sizeof(xen_commandline_t)", (long long)sizeof(xen_commandline_t));

    CONST(XENFEAT_writable_page_tables);
    CONST(XENFEAT_writable_descriptor_tables);
    CONST(XENFEAT_auto_translated_physmap);
    CONST(XENFEAT_supervisor_mode_kernel);
    CONST(XENFEAT_pae_pgdir_above_4gb);
    CONST(XENFEAT_mmu_pt_update_preserve_ad);
    CONST(XENFEAT_highmem_assist);
    CONST(XENFEAT_gnttab_map_avail_bits);
    CONST(XENFEAT_hvm_callback_vector);
    CONST(XENFEAT_hvm_safe_pvclock);
    CONST(XENFEAT_hvm_pirqs);
    CONST(XENFEAT_dom0);
    /* XENFEAT_grant_map_identity (12) is commented out in features.h. */
    CONST(XENFEAT_memory_op_vnode_supported);
    CONST(XENFEAT_ARM_SMCCC_supported);
    CONST(XENFEAT_linux_rsdp_unrestricted);
    CONST(XENFEAT_not_direct_mapped);
    CONST(XENFEAT_direct_mapped);
    CONST(XENFEAT_NR_SUBMAPS);
}

static void domctl_h(void)
{
    STRUCT(xen_arch_domainconfig);
    MEMBER(xen_arch_domainconfig, emulation_flags);
    MEMBER(xen_arch_domainconfig, misc_flags);

    STRUCT(xen_domctl_createdomain);
    MEMBER(xen_domctl_createdomain, ssidref);
    MEMBER(xen_domctl_createdomain, handle);
    MEMBER(xen_domctl_createdomain, flags);
    MEMBER(xen_domctl_createdomain, iommu_opts);
    MEMBER(xen_domctl_createdomain, max_vcpus);
    MEMBER(xen_domctl_createdomain, max_evtchn_port);
    MEMBER(xen_domctl_createdomain, max_grant_frames);
    MEMBER(xen_domctl_createdomain, max_maptrack_frames);
    MEMBER(xen_domctl_createdomain, grant_opts);
    MEMBER(xen_domctl_createdomain, vmtrace_size);
    MEMBER(xen_domctl_createdomain, cpupool_id);
    MEMBER(xen_domctl_createdomain, arch);

    STRUCT(xen_domctl_getdomaininfo);
    MEMBER(xen_domctl_getdomaininfo, domain);
    MEMBER(xen_domctl_getdomaininfo, pad1);
    MEMBER(xen_domctl_getdomaininfo, flags);
    MEMBER(xen_domctl_getdomaininfo, tot_pages);
    MEMBER(xen_domctl_getdomaininfo, max_pages);
    MEMBER(xen_domctl_getdomaininfo, outstanding_pages);
    MEMBER(xen_domctl_getdomaininfo, shr_pages);
    MEMBER(xen_domctl_getdomaininfo, paged_pages);
    MEMBER(xen_domctl_getdomaininfo, shared_info_frame);
    MEMBER(xen_domctl_getdomaininfo, cpu_time);
    MEMBER(xen_domctl_getdomaininfo, nr_online_vcpus);
    MEMBER(xen_domctl_getdomaininfo, max_vcpu_id);
    MEMBER(xen_domctl_getdomaininfo, ssidref);
    MEMBER(xen_domctl_getdomaininfo, handle);
    MEMBER(xen_domctl_getdomaininfo, cpupool);
    MEMBER(xen_domctl_getdomaininfo, gpaddr_bits);
    MEMBER(xen_domctl_getdomaininfo, pad2);
    MEMBER(xen_domctl_getdomaininfo, arch_config);

    STRUCT(xen_domctl_max_mem);
    MEMBER(xen_domctl_max_mem, max_memkb);

    STRUCT(xen_domctl_vcpucontext);
    MEMBER(xen_domctl_vcpucontext, vcpu);
    MEMBER(xen_domctl_vcpucontext, ctxt);

    STRUCT(xen_domctl_max_vcpus);
    MEMBER(xen_domctl_max_vcpus, max);

    STRUCT(xen_domctl_getvcpuinfo);
    MEMBER(xen_domctl_getvcpuinfo, vcpu);
    MEMBER(xen_domctl_getvcpuinfo, online);
    MEMBER(xen_domctl_getvcpuinfo, blocked);
    MEMBER(xen_domctl_getvcpuinfo, running);
    MEMBER(xen_domctl_getvcpuinfo, cpu_time);
    MEMBER(xen_domctl_getvcpuinfo, cpu);

    STRUCT(xenctl_bitmap);
    MEMBER(xenctl_bitmap, bitmap);
    MEMBER(xenctl_bitmap, nr_bits);

    STRUCT(xen_domctl_vcpuaffinity);
    MEMBER(xen_domctl_vcpuaffinity, vcpu);
    MEMBER(xen_domctl_vcpuaffinity, flags);
    MEMBER(xen_domctl_vcpuaffinity, cpumap_hard);
    MEMBER(xen_domctl_vcpuaffinity, cpumap_soft);

    STRUCT(xen_domctl_sched_credit);
    MEMBER(xen_domctl_sched_credit, weight);
    MEMBER(xen_domctl_sched_credit, cap);

    STRUCT(xen_domctl_sched_credit2);
    MEMBER(xen_domctl_sched_credit2, weight);
    MEMBER(xen_domctl_sched_credit2, cap);

    STRUCT(xen_domctl_sched_rtds);
    MEMBER(xen_domctl_sched_rtds, period);
    MEMBER(xen_domctl_sched_rtds, budget);
    MEMBER(xen_domctl_sched_rtds, flags);

    STRUCT(xen_domctl_scheduler_op);
    MEMBER(xen_domctl_scheduler_op, sched_id);
    MEMBER(xen_domctl_scheduler_op, cmd);
    MEMBER(xen_domctl_scheduler_op, u);
    MEMBER(xen_domctl_scheduler_op, u.credit);
    MEMBER(xen_domctl_scheduler_op, u.credit2);
    MEMBER(xen_domctl_scheduler_op, u.rtds);
    MEMBER(xen_domctl_scheduler_op, u.v);
    INNER(xen_domctl_scheduler_op, u.v);
    INNER_MEMBER(xen_domctl_scheduler_op, u.v, vcpus);
    INNER_MEMBER(xen_domctl_scheduler_op, u.v, nr_vcpus);
    INNER_MEMBER(xen_domctl_scheduler_op, u.v, padding);

    STRUCT(xen_domctl_setdomainhandle);
    MEMBER(xen_domctl_setdomainhandle, handle);

    STRUCT(xen_domctl_irq_permission);
    MEMBER(xen_domctl_irq_permission, pirq);
    MEMBER(xen_domctl_irq_permission, allow_access);
    MEMBER(xen_domctl_irq_permission, pad);

    STRUCT(xen_domctl_settimeoffset);
    MEMBER(xen_domctl_settimeoffset, time_offset_seconds);

    STRUCT(xen_domctl_set_virq_handler);
    MEMBER(xen_domctl_set_virq_handler, virq);

    STRUCT(xen_domctl);
    MEMBER(xen_domctl, cmd);
    MEMBER(xen_domctl, interface_version);
    MEMBER(xen_domctl, domain);
    MEMBER(xen_domctl, _pad);
    MEMBER(xen_domctl, u);
    MEMBER(xen_domctl, u.createdomain);
    MEMBER(xen_domctl, u.getdomaininfo);
    MEMBER(xen_domctl, u.vcpuaffinity);
    MEMBER(xen_domctl, u.max_mem);
    MEMBER(xen_domctl, u.vcpucontext);
    MEMBER(xen_domctl, u.getvcpuinfo);
    MEMBER(xen_domctl, u.max_vcpus);
    MEMBER(xen_domctl, u.scheduler_op);
    MEMBER(xen_domctl, u.setdomainhandle);
    MEMBER(xen_domctl, u.irq_permission);
    MEMBER(xen_domctl, u.settimeoffset);
    MEMBER(xen_domctl, u.set_virq_handler);
    MEMBER(xen_domctl, u.sendtrigger);
    MEMBER(xen_domctl, u.pad);

    STRUCT(xen_domctl_sendtrigger);
    MEMBER(xen_domctl_sendtrigger, trigger);
    MEMBER(xen_domctl_sendtrigger, vcpu);
    CONST(XEN_DOMCTL_sendtrigger);
    CONST(XEN_DOMCTL_SENDTRIGGER_NMI);
    CONST(XEN_DOMCTL_SENDTRIGGER_RESET);
    CONST(XEN_DOMCTL_SENDTRIGGER_INIT);
    CONST(XEN_DOMCTL_SENDTRIGGER_POWER);
    CONST(XEN_DOMCTL_SENDTRIGGER_SLEEP);

    CONST(XEN_DOMCTL_INTERFACE_VERSION);

    CONST(XEN_DOMCTL_createdomain);
    CONST(XEN_DOMCTL_destroydomain);
    CONST(XEN_DOMCTL_pausedomain);
    CONST(XEN_DOMCTL_unpausedomain);
    CONST(XEN_DOMCTL_getdomaininfo);
    CONST(XEN_DOMCTL_setvcpuaffinity);
    CONST(XEN_DOMCTL_max_mem);
    CONST(XEN_DOMCTL_setvcpucontext);
    CONST(XEN_DOMCTL_getvcpucontext);
    CONST(XEN_DOMCTL_getvcpuinfo);
    CONST(XEN_DOMCTL_max_vcpus);
    CONST(XEN_DOMCTL_scheduler_op);
    CONST(XEN_DOMCTL_setdomainhandle);
    CONST(XEN_DOMCTL_irq_permission);
    CONST(XEN_DOMCTL_settimeoffset);
    CONST(XEN_DOMCTL_set_virq_handler);
    CONST(XEN_DOMCTL_getvcpuaffinity);
    CONST(XEN_DOMCTL_resumedomain);

    CONST(XEN_DOMCTL_CDF_hvm);
    CONST(XEN_DOMCTL_CDF_hap);
    CONST(XEN_DOMCTL_CDF_s3_integrity);
    CONST(XEN_DOMCTL_CDF_oos_off);
    CONST(XEN_DOMCTL_CDF_xs_domain);
    CONST(XEN_DOMCTL_CDF_iommu);
    CONST(XEN_DOMCTL_CDF_nested_virt);
    CONST(XEN_DOMCTL_CDF_vpmu);
    CONST(XEN_DOMCTL_CDF_MAX);
    CONST(XEN_DOMCTL_GRANT_version_mask);

    CONST(XEN_DOMINF_dying);
    CONST(XEN_DOMINF_hvm_guest);
    CONST(XEN_DOMINF_shutdown);
    CONST(XEN_DOMINF_paused);
    CONST(XEN_DOMINF_blocked);
    CONST(XEN_DOMINF_running);
    CONST(XEN_DOMINF_debugged);
    CONST(XEN_DOMINF_xs_domain);
    CONST(XEN_DOMINF_hap);
    CONST(XEN_DOMINF_shutdownmask);
    CONST(XEN_DOMINF_shutdownshift);
    CONST(XEN_INVALID_MAX_VCPU_ID);

    CONST(XEN_SCHEDULER_CREDIT);
    CONST(XEN_SCHEDULER_CREDIT2);
    CONST(XEN_SCHEDULER_ARINC653);
    CONST(XEN_SCHEDULER_RTDS);
    CONST(XEN_SCHEDULER_NULL);

    CONST(XEN_DOMCTL_SCHEDOP_putinfo);
    CONST(XEN_DOMCTL_SCHEDOP_getinfo);
    CONST(XEN_DOMCTL_SCHEDOP_putvcpuinfo);
    CONST(XEN_DOMCTL_SCHEDOP_getvcpuinfo);

    CONST(XEN_VCPUAFFINITY_HARD);
    CONST(XEN_VCPUAFFINITY_SOFT);
    CONST(XEN_VCPUAFFINITY_FORCE);
}

static void sysctl_h(void)
{
    STRUCT(xen_sysctl_readconsole);
    MEMBER(xen_sysctl_readconsole, clear);
    MEMBER(xen_sysctl_readconsole, incremental);
    MEMBER(xen_sysctl_readconsole, pad0);
    MEMBER(xen_sysctl_readconsole, pad1);
    MEMBER(xen_sysctl_readconsole, index);
    MEMBER(xen_sysctl_readconsole, buffer);
    MEMBER(xen_sysctl_readconsole, count);

    STRUCT(xen_sysctl_physinfo);
    MEMBER(xen_sysctl_physinfo, threads_per_core);
    MEMBER(xen_sysctl_physinfo, cores_per_socket);
    MEMBER(xen_sysctl_physinfo, nr_cpus);
    MEMBER(xen_sysctl_physinfo, max_cpu_id);
    MEMBER(xen_sysctl_physinfo, nr_nodes);
    MEMBER(xen_sysctl_physinfo, max_node_id);
    MEMBER(xen_sysctl_physinfo, cpu_khz);
    MEMBER(xen_sysctl_physinfo, capabilities);
    MEMBER(xen_sysctl_physinfo, arch_capabilities);
    MEMBER(xen_sysctl_physinfo, pad);
    MEMBER(xen_sysctl_physinfo, total_pages);
    MEMBER(xen_sysctl_physinfo, free_pages);
    MEMBER(xen_sysctl_physinfo, scrub_pages);
    MEMBER(xen_sysctl_physinfo, outstanding_pages);
    MEMBER(xen_sysctl_physinfo, max_mfn);
    MEMBER(xen_sysctl_physinfo, hw_cap);

    STRUCT(xen_sysctl_sched_id);
    MEMBER(xen_sysctl_sched_id, sched_id);

    STRUCT(xen_sysctl_getdomaininfolist);
    MEMBER(xen_sysctl_getdomaininfolist, first_domain);
    MEMBER(xen_sysctl_getdomaininfolist, max_domains);
    MEMBER(xen_sysctl_getdomaininfolist, buffer);
    MEMBER(xen_sysctl_getdomaininfolist, num_domains);

    STRUCT(xen_sysctl_debug_keys);
    MEMBER(xen_sysctl_debug_keys, keys);
    MEMBER(xen_sysctl_debug_keys, nr_keys);

    STRUCT(xen_sysctl);
    MEMBER(xen_sysctl, cmd);
    MEMBER(xen_sysctl, interface_version);
    MEMBER(xen_sysctl, u);
    MEMBER(xen_sysctl, u.readconsole);
    MEMBER(xen_sysctl, u.physinfo);
    MEMBER(xen_sysctl, u.sched_id);
    MEMBER(xen_sysctl, u.getdomaininfolist);
    MEMBER(xen_sysctl, u.debug_keys);
    MEMBER(xen_sysctl, u.pad);

    CONST(XEN_SYSCTL_INTERFACE_VERSION);
    CONST(XEN_SYSCTL_readconsole);
    CONST(XEN_SYSCTL_physinfo);
    CONST(XEN_SYSCTL_sched_id);
    CONST(XEN_SYSCTL_getdomaininfolist);
    CONST(XEN_SYSCTL_debug_keys);
    CONST(XEN_SYSCTL_PHYSCAP_hvm);
    CONST(XEN_SYSCTL_PHYSCAP_pv);
    CONST(XEN_SYSCTL_PHYSCAP_directio);
    CONST(XEN_SYSCTL_PHYSCAP_hap);
    CONST(XEN_SYSCTL_PHYSCAP_shadow);
    CONST(XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share);
    CONST(XEN_SYSCTL_PHYSCAP_vmtrace);
    CONST(XEN_SYSCTL_PHYSCAP_vpmu);
    CONST(XEN_SYSCTL_PHYSCAP_gnttab_v1);
    CONST(XEN_SYSCTL_PHYSCAP_gnttab_v2);
}

static void platform_h(void)
{
    STRUCT(xenpf_settime64);
    MEMBER(xenpf_settime64, secs);
    MEMBER(xenpf_settime64, nsecs);
    MEMBER(xenpf_settime64, mbz);
    MEMBER(xenpf_settime64, system_time);

    STRUCT(xen_platform_op);
    MEMBER(xen_platform_op, cmd);
    MEMBER(xen_platform_op, interface_version);
    MEMBER(xen_platform_op, u);
    MEMBER(xen_platform_op, u.settime64);
    MEMBER(xen_platform_op, u.pad);

    CONST(XENPF_INTERFACE_VERSION);
    CONST(XENPF_settime32);
    CONST(XENPF_settime64);
}

static void errno_h(void)
{
    /* The guest-visible numbers, from the header's own enum... */
    CONST(XEN_EPERM);
    CONST(XEN_ENOENT);
    CONST(XEN_ESRCH);
    CONST(XEN_EIO);
    CONST(XEN_ENXIO);
    CONST(XEN_E2BIG);
    CONST(XEN_ENOEXEC);
    CONST(XEN_EBADF);
    CONST(XEN_ECHILD);
    CONST(XEN_EAGAIN);
    CONST(XEN_EWOULDBLOCK);
    CONST(XEN_ENOMEM);
    CONST(XEN_EACCES);
    CONST(XEN_EFAULT);
    CONST(XEN_EBUSY);
    CONST(XEN_EEXIST);
    CONST(XEN_EXDEV);
    CONST(XEN_ENODEV);
    CONST(XEN_ENOTDIR);
    CONST(XEN_EISDIR);
    CONST(XEN_EINVAL);
    CONST(XEN_ENFILE);
    CONST(XEN_EMFILE);
    CONST(XEN_ENOSPC);
    CONST(XEN_EROFS);
    CONST(XEN_EMLINK);
    CONST(XEN_EDOM);
    CONST(XEN_ERANGE);
    CONST(XEN_EDEADLK);
    CONST(XEN_EDEADLOCK);
    CONST(XEN_ENAMETOOLONG);
    CONST(XEN_ENOLCK);
    CONST(XEN_ENOSYS);
    CONST(XEN_ENOTEMPTY);
    CONST(XEN_ENODATA);
    CONST(XEN_ETIME);
    CONST(XEN_EBADMSG);
    CONST(XEN_EOVERFLOW);
    CONST(XEN_EILSEQ);
    CONST(XEN_ENOTSOCK);
    CONST(XEN_EMSGSIZE);
    CONST(XEN_EOPNOTSUPP);
    CONST(XEN_EADDRINUSE);
    CONST(XEN_EADDRNOTAVAIL);
    CONST(XEN_ENOBUFS);
    CONST(XEN_EISCONN);
    CONST(XEN_ENOTCONN);
    CONST(XEN_ETIMEDOUT);
    CONST(XEN_ECONNREFUSED);
    /* ...and the two Xen keeps to itself. */
    const_line("XEN_EINTR", (long long)XENLAB_EINTR);
    const_line("XEN_ERESTART", (long long)XENLAB_ERESTART);
}

static void callback_h(void)
{
    STRUCT(callback_register);
    MEMBER(callback_register, type);
    MEMBER(callback_register, flags);
    MEMBER(callback_register, address);

    STRUCT(callback_unregister);
    MEMBER(callback_unregister, type);
    MEMBER(callback_unregister, _unused);

    CONST(CALLBACKTYPE_event);
    CONST(CALLBACKTYPE_failsafe);
    CONST(CALLBACKTYPE_syscall);
    CONST(CALLBACKTYPE_nmi);
    CONST(CALLBACKTYPE_sysenter);
    CONST(CALLBACKTYPE_syscall32);
    CONST(CALLBACKF_mask_events);
    CONST(CALLBACKOP_register);
    CONST(CALLBACKOP_unregister);
}

static void io_console_h(void)
{
    STRUCT(xencons_interface);
    MEMBER(xencons_interface, in);
    MEMBER(xencons_interface, out);
    MEMBER(xencons_interface, in_cons);
    MEMBER(xencons_interface, in_prod);
    MEMBER(xencons_interface, out_cons);
    MEMBER(xencons_interface, out_prod);
}

static void io_devices_h(void)
{
    STRUCT(blkif_request_segment);
    MEMBER(blkif_request_segment, gref);
    MEMBER(blkif_request_segment, first_sect);
    MEMBER(blkif_request_segment, last_sect);
    STRUCT(blkif_request);
    MEMBER(blkif_request, operation);
    MEMBER(blkif_request, nr_segments);
    MEMBER(blkif_request, handle);
    MEMBER(blkif_request, id);
    MEMBER(blkif_request, sector_number);
    MEMBER(blkif_request, seg);
    STRUCT(blkif_request_discard);
    MEMBER(blkif_request_discard, operation);
    MEMBER(blkif_request_discard, flag);
    MEMBER(blkif_request_discard, handle);
    MEMBER(blkif_request_discard, id);
    MEMBER(blkif_request_discard, sector_number);
    MEMBER(blkif_request_discard, nr_sectors);
    STRUCT(blkif_request_indirect);
    MEMBER(blkif_request_indirect, operation);
    MEMBER(blkif_request_indirect, indirect_op);
    MEMBER(blkif_request_indirect, nr_segments);
    MEMBER(blkif_request_indirect, id);
    MEMBER(blkif_request_indirect, sector_number);
    MEMBER(blkif_request_indirect, handle);
    MEMBER(blkif_request_indirect, indirect_grefs);
    STRUCT(blkif_response);
    MEMBER(blkif_response, id);
    MEMBER(blkif_response, operation);
    MEMBER(blkif_response, status);
    STRUCT(netif_tx_request);
    MEMBER(netif_tx_request, gref);
    MEMBER(netif_tx_request, offset);
    MEMBER(netif_tx_request, flags);
    MEMBER(netif_tx_request, id);
    MEMBER(netif_tx_request, size);
    STRUCT(netif_tx_response);
    MEMBER(netif_tx_response, id);
    MEMBER(netif_tx_response, status);
    STRUCT(netif_rx_request);
    MEMBER(netif_rx_request, id);
    MEMBER(netif_rx_request, pad);
    MEMBER(netif_rx_request, gref);
    STRUCT(netif_rx_response);
    MEMBER(netif_rx_response, id);
    MEMBER(netif_rx_response, offset);
    MEMBER(netif_rx_response, flags);
    MEMBER(netif_rx_response, status);
    STRUCT(tpmif_shared_page);
    MEMBER(tpmif_shared_page, length);
    MEMBER(tpmif_shared_page, state);
    MEMBER(tpmif_shared_page, locality);
    MEMBER(tpmif_shared_page, pad);
    MEMBER(tpmif_shared_page, nr_extra_pages);
    field_line("tpmif_shared_page", "extra_pages", offsetof(struct tpmif_shared_page, extra_pages), 0, "u32[]");
    CONST(BLKIF_OP_READ);
    CONST(BLKIF_OP_WRITE);
    CONST(BLKIF_OP_WRITE_BARRIER);
    CONST(BLKIF_OP_FLUSH_DISKCACHE);
    CONST(BLKIF_OP_RESERVED_1);
    CONST(BLKIF_OP_DISCARD);
    CONST(BLKIF_OP_INDIRECT);
    CONST(BLKIF_MAX_SEGMENTS_PER_REQUEST);
    CONST(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
    CONST(BLKIF_DISCARD_SECURE);
    CONST(BLKIF_RSP_EOPNOTSUPP);
    CONST(BLKIF_RSP_ERROR);
    CONST(BLKIF_RSP_OKAY);
    CONST(_NETTXF_csum_blank);
    CONST(NETTXF_csum_blank);
    CONST(_NETTXF_data_validated);
    CONST(NETTXF_data_validated);
    CONST(_NETTXF_more_data);
    CONST(NETTXF_more_data);
    CONST(_NETTXF_extra_info);
    CONST(NETTXF_extra_info);
    CONST(_NETRXF_data_validated);
    CONST(NETRXF_data_validated);
    CONST(_NETRXF_csum_blank);
    CONST(NETRXF_csum_blank);
    CONST(_NETRXF_more_data);
    CONST(NETRXF_more_data);
    CONST(_NETRXF_extra_info);
    CONST(NETRXF_extra_info);
    CONST(_NETRXF_gso_prefix);
    CONST(NETRXF_gso_prefix);
    CONST(NETIF_RSP_DROPPED);
    CONST(NETIF_RSP_ERROR);
    CONST(NETIF_RSP_OKAY);
    CONST(NETIF_RSP_NULL);
    CONST(XEN_NETIF_NR_SLOTS_MIN);
    CONST(XEN_NETIF_MAX_TX_SIZE);
    CONST(XEN_NETIF_EXTRA_TYPE_NONE);
    CONST(XEN_NETIF_EXTRA_TYPE_GSO);
    CONST(XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
    CONST(XEN_NETIF_EXTRA_TYPE_MCAST_DEL);
    CONST(XEN_NETIF_EXTRA_TYPE_HASH);
    CONST(XEN_NETIF_EXTRA_TYPE_MAX);
    CONST(XEN_NETIF_EXTRA_FLAG_MORE);
    CONST(XEN_NETIF_GSO_TYPE_NONE);
    CONST(XEN_NETIF_GSO_TYPE_TCPV4);
    CONST(XEN_NETIF_GSO_TYPE_TCPV6);
    CONST(TPMIF_STATE_IDLE);
    CONST(TPMIF_STATE_SUBMIT);
    CONST(TPMIF_STATE_FINISH);
    CONST(TPMIF_STATE_CANCEL);
    CONST(XenbusStateUnknown);
    CONST(XenbusStateInitialising);
    CONST(XenbusStateInitWait);
    CONST(XenbusStateInitialised);
    CONST(XenbusStateConnected);
    CONST(XenbusStateClosing);
    CONST(XenbusStateClosed);
    CONST(XenbusStateReconfiguring);
    CONST(XenbusStateReconfigured);
}

static void io_xs_wire_h(void)
{
    STRUCT(xsd_sockmsg);
    MEMBER(xsd_sockmsg, type);
    MEMBER(xsd_sockmsg, req_id);
    MEMBER(xsd_sockmsg, tx_id);
    MEMBER(xsd_sockmsg, len);
    STRUCT(xenstore_domain_interface);
    MEMBER(xenstore_domain_interface, req);
    MEMBER(xenstore_domain_interface, rsp);
    MEMBER(xenstore_domain_interface, req_cons);
    MEMBER(xenstore_domain_interface, req_prod);
    MEMBER(xenstore_domain_interface, rsp_cons);
    MEMBER(xenstore_domain_interface, rsp_prod);
    MEMBER(xenstore_domain_interface, server_features);
    MEMBER(xenstore_domain_interface, connection);
    MEMBER(xenstore_domain_interface, error);
    CONST(XS_CONTROL);
    CONST(XS_DEBUG);
    CONST(XS_DIRECTORY);
    CONST(XS_READ);
    CONST(XS_GET_PERMS);
    CONST(XS_WATCH);
    CONST(XS_UNWATCH);
    CONST(XS_TRANSACTION_START);
    CONST(XS_TRANSACTION_END);
    CONST(XS_INTRODUCE);
    CONST(XS_RELEASE);
    CONST(XS_GET_DOMAIN_PATH);
    CONST(XS_WRITE);
    CONST(XS_MKDIR);
    CONST(XS_RM);
    CONST(XS_SET_PERMS);
    CONST(XS_WATCH_EVENT);
    CONST(XS_ERROR);
    CONST(XS_IS_DOMAIN_INTRODUCED);
    CONST(XS_RESUME);
    CONST(XS_SET_TARGET);
    CONST(XS_RESET_WATCHES);
    CONST(XS_DIRECTORY_PART);
    CONST(XS_TYPE_COUNT);
    CONST(XS_INVALID);
    CONST(XS_WATCH_PATH);
    CONST(XS_WATCH_TOKEN);
    CONST(XENSTORE_RING_SIZE);
    CONST(XENSTORE_PAYLOAD_MAX);
    CONST(XENSTORE_ABS_PATH_MAX);
    CONST(XENSTORE_REL_PATH_MAX);
    CONST(XENSTORE_SERVER_FEATURE_RECONNECTION);
    CONST(XENSTORE_SERVER_FEATURE_ERROR);
    CONST(XENSTORE_CONNECTED);
    CONST(XENSTORE_RECONNECT);
    CONST(XENSTORE_ERROR_NONE);
    CONST(XENSTORE_ERROR_COMM);
    CONST(XENSTORE_ERROR_RINGIDX);
    CONST(XENSTORE_ERROR_PROTO);
}

int main(void)
{
    xen_h();
    event_channel_h();
    grant_table_h();
    memory_h();
    sched_h();
    vcpu_h();
    version_h();
    domctl_h();
    sysctl_h();
    platform_h();
    callback_h();
    io_console_h();
    io_xs_wire_h();
    io_devices_h();
    errno_h();
    printf("end %lu\n", lines);
    return 0;
}
