"""The xenstore entries a toolstack makes for a domain (libxl's
libxl__domain_make and libxl__build_post), with docs/misc/xenstore-paths'
permissions: the domain may read its home and write only what is its own
to write (data/, control/ answers, its devices' frontends); name, memory/
and vm are the toolstack's."""

from __future__ import annotations

from hv.public.errno import EAGAIN, ENOENT
from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError

CONSOLE_LIMIT = 1048576
# Directories the domain owns (libxl's rwperm): it writes there.
DOMAIN_OWNED = ("control/shutdown", "control/feature-poweroff", "control/feature-reboot",
                "control/feature-suspend", "control/sysrq", "device/suspend/event-channel",
                "data", "drivers", "feature", "attr", "error")


def make_domain_entries(xs: XsClient, domid: int, *, name: str, uuid: str, memory_kib: int,
                        maxmem_kib: int, vcpus: int, store_port: int, store_mfn: int,
                        console_port: int, console_mfn: int, start_time: str = "",
                        online_vcpus: int | None = None) -> None:
    """One transaction, retried while another writer gets in the way, as
    libxl does. ``start_time`` is the wall clock's "seconds.hundredths"
    when the domain was made (what `xl uptime` counts from)."""
    home = f"/local/domain/{domid}"
    vm = f"/vm/{uuid}"
    roperm = ("n0", f"r{domid}")
    rwperm = (f"n{domid}",)

    def body(tx: int) -> None:
        rm_if_there(xs, home, tx)
        for path, perms in ((home, roperm), (vm, roperm), (f"/libxl/{domid}", ("n0",)),
                            (f"{home}/device", roperm), (f"{home}/control", roperm)):
            xs.mkdir(path, tx)
            xs.set_perms(path, perms, tx)
        for rel in DOMAIN_OWNED:
            xs.mkdir(f"{home}/{rel}", tx)
            xs.set_perms(f"{home}/{rel}", rwperm, tx)
        values = {
            f"{vm}/uuid": uuid, f"{vm}/name": name, f"{vm}/start_time": start_time,
            f"{home}/vm": vm, f"{home}/name": name, f"{home}/domid": str(domid),
            f"{home}/memory/static-max": str(maxmem_kib), f"{home}/memory/target": str(memory_kib),
            f"{home}/store/port": str(store_port), f"{home}/store/ring-ref": str(store_mfn),
            f"{home}/console/port": str(console_port), f"{home}/console/ring-ref": str(console_mfn),
            f"{home}/console/limit": str(CONSOLE_LIMIT), f"{home}/console/type": "xenconsoled",
        }
        online = vcpus if online_vcpus is None else online_vcpus
        values.update({f"{home}/cpu/{i}/availability": "online" if i < online else "offline"
                       for i in range(vcpus)})
        for path, value in values.items():
            xs.write(path, value, tx)

    in_transaction(xs, body)


def in_transaction(xs: XsClient, body) -> None:
    """Run ``body(tx)`` in a transaction, again from the start while
    another writer gets in the way (EAGAIN), as libxl does."""
    while True:
        tx = xs.transaction_start()
        try:
            body(tx)
        except BaseException:
            xs.transaction_end(tx, commit=False)
            raise
        try:
            xs.transaction_end(tx)
            return
        except XsError as e:
            if e.errno != EAGAIN:
                raise


def remove_domain_entries(xs: XsClient, domid: int, uuid: str | None = None) -> None:
    for path in (f"/local/domain/{domid}", f"/libxl/{domid}") + ((f"/vm/{uuid}",) if uuid else ()):
        rm_if_there(xs, path)


def rm_if_there(xs: XsClient, path: str, tx: int = 0) -> None:
    try:
        xs.rm(path, tx)
    except XsError as e:
        if e.errno != ENOENT:
            raise
