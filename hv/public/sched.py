"""xen/include/public/sched.h."""

from hv.public.abi import domid_t, handle, int32_t, uint32_t, uint64_t, unsigned_int, xenstruct

SCHEDOP_yield = 0
SCHEDOP_block = 1
SCHEDOP_shutdown = 2
SCHEDOP_poll = 3
SCHEDOP_remote_shutdown = 4
SCHEDOP_shutdown_code = 5
SCHEDOP_watchdog = 6
SCHEDOP_pin_override = 7

SHUTDOWN_poweroff = 0
SHUTDOWN_reboot = 1
SHUTDOWN_suspend = 2
SHUTDOWN_crash = 3
SHUTDOWN_watchdog = 4
SHUTDOWN_soft_reset = 5
SHUTDOWN_MAX = 5

SHUTDOWN_NAMES = {
    SHUTDOWN_poweroff: "poweroff",
    SHUTDOWN_reboot: "reboot",
    SHUTDOWN_suspend: "suspend",
    SHUTDOWN_crash: "crash",
    SHUTDOWN_watchdog: "watchdog",
    SHUTDOWN_soft_reset: "soft_reset",
}

# The most ports one SCHEDOP_poll may wait on.
SCHEDOP_POLL_MAX_PORTS = 128


@xenstruct
class SchedShutdown:
    reason: unsigned_int


@xenstruct
class SchedPoll:
    """``ports`` holds the ports to wait on (the guest array)."""
    ports: handle("evtchn_port_t")
    nr_ports: unsigned_int
    timeout: uint64_t


@xenstruct
class SchedRemoteShutdown:
    domain_id: domid_t
    reason: unsigned_int


@xenstruct
class SchedWatchdog:
    id: uint32_t
    timeout: uint32_t               # seconds


@xenstruct
class SchedPinOverride:
    pcpu: int32_t
