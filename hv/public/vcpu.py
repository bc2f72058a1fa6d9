"""xen/include/public/vcpu.h."""

from hv.public.abi import int_, uint32_t, uint64_t, xenstruct

VCPUOP_initialise = 0
VCPUOP_up = 1
VCPUOP_down = 2
VCPUOP_is_up = 3
VCPUOP_get_runstate_info = 4
VCPUOP_register_runstate_memory_area = 5
VCPUOP_set_periodic_timer = 6
VCPUOP_stop_periodic_timer = 7
VCPUOP_set_singleshot_timer = 8
VCPUOP_stop_singleshot_timer = 9
VCPUOP_register_vcpu_info = 10
VCPUOP_send_nmi = 11
VCPUOP_get_physid = 12

RUNSTATE_running = 0
RUNSTATE_runnable = 1
RUNSTATE_blocked = 2
RUNSTATE_offline = 3

RUNSTATE_NAMES = ("running", "runnable", "blocked", "offline")

VCPU_SSHOTTMR_future = 1 << 0


@xenstruct
class VcpuRunstateInfo:
    state: int_
    state_entry_time: uint64_t
    time: uint64_t[4]


@xenstruct
class VcpuSetPeriodicTimer:
    period_ns: uint64_t


@xenstruct
class VcpuSetSingleshotTimer:
    timeout_abs_ns: uint64_t
    flags: uint32_t
