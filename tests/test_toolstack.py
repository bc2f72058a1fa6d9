"""The toolstack's answers, in process: `xl list`'s rows for domains in
each state, rendered as xl_info.c prints them."""

from __future__ import annotations

from hv.public.sched import SHUTDOWN_crash, SHUTDOWN_reboot
from tests.devices import device_host, guest, settle
from xl.cli import render_list
from xl.toolstack import Toolstack, state_letters
from hv.public.domctl import (
    XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_paused, XEN_DOMINF_running,
    XEN_DOMINF_shutdown, XEN_DOMINF_shutdownshift,
)


def test_state_letters_follow_xl_info_c():
    assert state_letters(XEN_DOMINF_running) == "r-----"
    assert state_letters(XEN_DOMINF_blocked | XEN_DOMINF_paused) == "-bp---"
    assert state_letters(XEN_DOMINF_shutdown | SHUTDOWN_crash << XEN_DOMINF_shutdownshift) == "---sc-"
    assert state_letters(XEN_DOMINF_shutdown | SHUTDOWN_reboot << XEN_DOMINF_shutdownshift) == "---sr-"
    assert state_letters(XEN_DOMINF_shutdown) == "---s--"          # poweroff
    assert state_letters(XEN_DOMINF_dying) == "-----d"


def test_list_shows_each_domain_as_xl_does():
    host, xs = device_host()
    burner, _ = guest(host, xs, "burner", ["burn 100%"], memory_mib=64)
    crasher, _ = guest(host, xs, "crasher", ["crash"], memory_mib=32)
    sleeper, _ = guest(host, xs, "sleeper", ["idle"], memory_mib=48)
    settle(host, 200)
    host.xen.domains.pause_by_systemcontroller(sleeper)
    rows = {d["name"]: d for d in Toolstack(host).list_domains()}
    assert rows["Domain-0"]["domid"] == 0
    assert rows["burner"]["state"][0] == "r" and rows["burner"]["mem_mib"] == 64
    assert rows["burner"]["cpu_time_s"] > 0.1
    assert rows["crasher"]["state"] == "---sc-"
    assert rows["sleeper"]["mem_mib"] == 48 and rows["sleeper"]["vcpus"] == 1
    assert rows["sleeper"]["state"] == "-bp---"
    text = render_list([rows["burner"]]).splitlines()
    assert text[1].startswith(f"burner                                   {burner.domid:5d}    64     1     r")
    assert text[1].endswith(f"{rows['burner']['cpu_time_s']:8.1f}")


def test_vcpu_list_rows_as_xl_vcpu_c_prints_them():
    from xl.cli import render_vcpu_list
    from xl.toolstack import format_cpumap
    host, xs = device_host(cpus=4)
    d, _ = guest(host, xs, "pinned", ["burn 100%"], memory_mib=32)
    settle(host, 100)
    rows = Toolstack(host).vcpu_list("pinned")
    assert [(r["name"], r["domid"], r["vcpu"]) for r in rows] == [("pinned", d.domid, 0)]
    row = rows[0]
    assert row["state"] == "r--" and row["cpu"] in range(4) and row["time_s"] > 0.05
    assert (row["affinity_hard"], row["affinity_soft"]) == ("all", "all")
    text = render_vcpu_list(rows).splitlines()
    assert text[0] == ("Name                                ID  VCPU   CPU State   Time(s) "
                       "Affinity (Hard / Soft)")
    assert text[1] == (f"pinned                           {d.domid:5d}     0{row['cpu']:5d}   r-- "
                       f"{row['time_s']:9.1f}  all / all")
    assert format_cpumap(0b101101, 8) == "0,2-3,5"
    assert format_cpumap(0, 4) == "none" and format_cpumap(0xF, 4) == "all"
