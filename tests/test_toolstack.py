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
