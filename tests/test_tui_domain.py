"""`xl top`'s domain screen on a frozen host: its figures against what
xenstore and the service say, looking that leaves the trace alone, and
every key: the stepper against `xl step` on a twin host, P, F, + and -
against `xl list` and `xl host status`, R running time on, and the
changes a step makes lit."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from tui_host import frozen_host, xl
from tui_screen import drive, off_loop, until

from tui.screens.domain import DomainScreen
from tui.widgets.domain_changes import CHANGED, changes, rate_text
from tui.widgets.evtchns import EventChannelPanel
from tui.widgets.grants import GrantPanel
from tui.widgets.rings import DevicePanel
from tui.source import Source

SIZE = (140, 48)
PING_A, MINIMAL = 2, 5


def loaded(screen) -> bool:
    """the domain's first snapshot is on screen"""
    return screen.detail is not None


def text_of(widget, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def lit_texts(widget, width: int = 200) -> list[str]:
    """The pieces of a panel drawn as changed."""
    console = Console(width=width, color_system="truecolor")
    lit = console.get_style(CHANGED)
    return [seg.text for seg in console.render(widget.content) if seg.style == lit]


def host_status(home) -> dict:
    return json.loads(xl(home, "host", "status", "--json").stdout)


@pytest.fixture(scope="module")
def twin_home(tmp_path_factory):
    """A second host made the same way, for `xl step` to step."""
    yield from frozen_host(tmp_path_factory, "tui-twin")


# ---------------------------------------------------------------- figures
def test_ping_a_figures_are_xenstores_and_the_backends(frozen_home):
    source = Source(str(frozen_home))
    seq = source.call("trace", limit=1)["seq"]

    async def script(pilot, screen):
        await until(pilot, lambda: screen.steps == 0 and screen._applied >= 2, timeout=5)
        return (screen.detail, text_of(screen.query_one(EventChannelPanel)),
                text_of(screen.query_one(GrantPanel)), text_of(screen.query_one(DevicePanel)))

    detail, evtchns, grants, devices = drive(frozen_home, lambda: DomainScreen(PING_A), loaded,
                                             script, size=SIZE)
    # Two snapshots read, and not a record added to the trace for them.
    assert source.call("trace", limit=1)["seq"] == seq
    (nic,) = json.loads(xl(frozen_home, "network-list", "--json", "ping-a").stdout)
    front_port = int(xl(frozen_home, "xenstore", "read",
                        "/local/domain/2/device/vif/0/event-channel").stdout)
    assert nic["evtch"] == front_port
    chan = next(e for e in detail["evtchns"] if e["port"] == front_port)
    assert (chan["kind"], chan["remote_dom"]) == ("interdomain", 0)
    # dom0's end of that channel points back at ping-a's port.
    dom0 = source.call("domain_detail", domain=0)
    back = next(e for e in dom0["evtchns"] if e["port"] == chan["remote_port"])
    assert (back["kind"], back["remote_dom"], back["remote_port"]) == ("interdomain", 2, front_port)
    assert f"{front_port} interdomain d0:{chan['remote_port']}" in " ".join(evtchns.split())
    # The rings the frontend published are granted to dom0, mapped by it,
    # and drawn from the frames those grants name.
    vif = next(d for d in detail["devices"] if d["class"] == "vif")
    entries = {e["ref"]: e for e in detail["grants"]["entries"]}
    for ring, node in zip(vif["rings"], ("tx-ring-ref", "rx-ring-ref")):
        ref = int(xl(frozen_home, "xenstore", "read", f"/local/domain/2/device/vif/0/{node}").stdout)
        assert ref == nic["rref_tx" if node.startswith("tx") else "rref_rx"]
        assert ring["ref"] == ref and ring["frame"] == entries[ref]["frame"]
        assert entries[ref]["domid"] == 0 and entries[ref]["mapped_by"][0]["domid"] == 0
        assert f"{ring['name']}  grant {ref} -> frame {ring['frame']:#x}" in devices
        assert f"{ref} permit_access,reading,writing d0 {ring['frame']:#x}" in " ".join(grants.split())
    # ping sent its echo requests on tx; rx holds the buffers posted ahead.
    tx, rx = vif["rings"]
    assert tx["req_prod"] == tx["rsp_prod"] == tx["req_cons"] == tx["rsp_cons"] > 0
    assert rx["req_prod"] - rx["rsp_cons"] > 0
    assert f"occupancy {rx['req_prod'] - rx['rsp_cons']}" in devices


# ---------------------------------------------------------------- the stepper
def test_space_steps_as_xl_step_does_on_a_twin_host(frozen_home, twin_home):
    source = Source(str(frozen_home))

    async def script(pilot, screen):
        shown = []
        for n, key in enumerate(("space", "full_stop"), 1):
            seq = (await off_loop(lambda: source.call("trace", limit=1)))["seq"]
            await pilot.press(key)
            await until(pilot, lambda: screen.steps == n)
            since = await off_loop(lambda: source.call("trace", since=seq, limit=10_000))
            shown.append((list(screen.query_one("#step-log").lines), since["lines"]))
        return shown

    shown = drive(frozen_home, lambda: DomainScreen(MINIMAL), loaded, script, size=SIZE)
    for lines, traced in shown:
        twin = xl(twin_home, "step", "minimal").stdout.splitlines()
        assert lines == twin and lines
        # The trace has them too, after the toolstack's own lookup of the domain.
        assert traced[-len(lines):] == lines
        assert all("d0v0     hypercall sysctl:" in line for line in traced[:-len(lines)])
    # Both machines are where the same two steps left them.
    assert source.call("domain_detail", domain=MINIMAL) == \
        Source(str(twin_home)).call("domain_detail", domain=MINIMAL)


def test_a_step_lights_what_it_changed(frozen_home):
    """Step minimal until an event channel's pending bit is set: the bit
    and the screen's other changes are lit, and nothing else."""
    async def script(pilot, screen):
        for n in range(1, 13):
            before = screen.detail
            await pilot.press("space")
            await until(pilot, lambda: screen.steps == n)
            now = {e["port"]: e["pending"] for e in screen.detail["evtchns"]}
            pending = [k for k in screen.changed
                       if k[0] == "evtchn" and k[2] == "pending" and now[k[1]]]
            if pending:
                return before, screen.detail, screen.changed, pending, \
                    lit_texts(screen.query_one(EventChannelPanel))
        raise AssertionError("no step set a pending bit")

    before, after, changed, pending, lit = drive(frozen_home, lambda: DomainScreen(MINIMAL), loaded,
                                                 script, size=SIZE)
    (_, port, _), = pending
    was = {e["port"]: e["pending"] for e in before["evtchns"]}
    now = {e["port"]: e["pending"] for e in after["evtchns"]}
    assert was.get(port) is False and now[port] is True
    # Lit is exactly what differs: the port's bit, and (the port being
    # unmasked) the vCPU's selector and upcall flag the 2-level ABI raised.
    assert changed == changes(before, after)
    (vcpu,) = after["vcpus"]
    assert not next(e for e in after["evtchns"] if e["port"] == port)["masked"]
    assert {("vcpu", 0, "upcall_pending"), ("vcpu", 0, "pending_sel")} <= changed
    assert sorted(t.strip() for t in lit) == sorted(["P", "1", f"{vcpu['pending_sel']:#x}"])


def test_the_chosen_vcpu_is_the_one_stepped(frozen_home, tmp_path):
    config = tmp_path / "twovcpu.cfg"
    config.write_text('name = "twovcpu"\nmemory = 32\nvcpus = 2\nworkload = [ "idle" ]\n')
    xl(frozen_home, "create", "-p", str(config))
    domid = int(xl(frozen_home, "domid", "twovcpu").stdout)
    header = "#domain-header"

    async def script(pilot, screen):
        await pilot.press("1", "space")             # vCPU 1 is not up yet
        await until(pilot, lambda: "nothing to step" in text_of(screen.query_one(header)))
        refused = text_of(screen.query_one(header))
        await pilot.press("up")                     # round to vCPU 0, which brings it up
        assert screen.selected == 0
        while not any(" up 1 = " in line for line in screen.query_one("#step-log").lines):
            steps = screen.steps
            await pilot.press("space")
            await until(pilot, lambda: screen.steps == steps + 1)
            assert screen.steps < 20
        await pilot.press("right", "space")
        await until(pilot, lambda: f"stepped d{domid}v1" in text_of(screen.query_one(header)))
        stepped = list(screen.query_one("#step-log").lines)
        await pilot.press("7")                      # no such vCPU: the choice stays
        return refused, stepped, screen.selected, text_of(screen.query_one(header))

    refused, lines, selected, header = drive(frozen_home, lambda: DomainScreen(domid), loaded,
                                             script, size=SIZE)
    assert f"d{domid}v1 runs no modelled kernel" in refused
    assert lines and lines[0].split()[2] == f"d{domid}v1"
    assert not any(f"d{domid}v0" in line for line in lines)
    assert selected == 1 and f"d{domid} has 2 vCPUs" in header
    xl(frozen_home, "destroy", "twovcpu")


# ---------------------------------------------------------------- P, F, + and -, R
def test_p_pauses_and_unpauses_and_a_running_domain_is_not_stepped(frozen_home):
    async def script(pilot, screen):
        await pilot.press("space")
        await until(pilot, lambda: "running" in text_of(screen.query_one("#domain-header")))
        refused = text_of(screen.query_one("#domain-header"))
        await pilot.press("p")
        await until(pilot, lambda: screen.detail["paused"])
        listed = await off_loop(lambda: xl(frozen_home, "list", "ping-a").stdout)
        await pilot.press("P")
        await until(pilot, lambda: not screen.detail["paused"])
        return refused, listed

    refused, listed = drive(frozen_home, lambda: DomainScreen(PING_A), loaded, script, size=SIZE)
    assert "domain 2 is running: pause it to step it" in refused
    assert listed.splitlines()[1].split()[4][2] == "p"
    assert xl(frozen_home, "list", "ping-a").stdout.splitlines()[1].split()[4][2] == "-"


def test_plus_and_minus_change_the_speed_and_f_freezes(frozen_home):
    source = Source(str(frozen_home))

    async def script(pilot, screen):
        seen = []
        for key, speed in (("plus", 2), ("plus", 4), ("minus", 2), ("minus", 1), ("minus", 0.5)):
            await pilot.press(key)
            await until(pilot, lambda: screen.detail["clock"]["speed"] == speed)
            seen.append((await off_loop(lambda: source.call("status")))["clock"]["speed"])
        halved = (await off_loop(host_status, frozen_home))["clock"]["speed"]
        await pilot.press("plus")
        await until(pilot, lambda: screen.detail["clock"]["speed"] == 1)
        await pilot.press("f")
        await until(pilot, lambda: not screen.detail["clock"]["frozen"])
        thawed = (await off_loop(host_status, frozen_home))["clock"]["frozen"]
        await pilot.press("F")
        await until(pilot, lambda: screen.detail["clock"]["frozen"])
        return seen, halved, thawed

    seen, halved, thawed = drive(frozen_home, lambda: DomainScreen(PING_A), loaded, script, size=SIZE)
    assert seen == [2, 4, 2, 1, 0.5] and halved == 0.5 and thawed is False
    assert host_status(frozen_home)["clock"] == {**host_status(frozen_home)["clock"],
                                                 "frozen": True, "speed": 1}


def test_r_runs_the_clock_on_by_what_was_typed(frozen_home):
    async def script(pilot, screen):
        start = screen.detail["now_ns"]
        prompt = screen.query_one("#run-prompt")
        await pilot.press("r")
        assert prompt.display and prompt.has_focus
        await pilot.press("1", "0", "m", "s", "enter")
        await until(pilot, lambda: screen.detail["now_ns"] > start)
        ran = screen.detail["now_ns"] - start, text_of(screen.query_one("#domain-header"))
        await pilot.press("R", *"soon", "enter")
        await until(pilot, lambda: "not a duration" in text_of(screen.query_one("#domain-header")))
        await pilot.press("R", "escape")             # the prompt goes, the screen stays
        assert not prompt.display and pilot.app.screen is screen
        return start, ran, screen.detail["now_ns"]

    start, (ran, header), after = drive(frozen_home, lambda: DomainScreen(PING_A), loaded, script,
                                        size=SIZE)
    assert ran == 10_000_000 and "ran 10ms" in header
    assert after == start + 10_000_000 == host_status(frozen_home)["clock"]["now_ns"]


@pytest.mark.parametrize("key", ["escape", "q"])
def test_escape_and_q_leave(frozen_home, key):
    async def script(pilot, screen):
        await pilot.press(key)
        await until(pilot, lambda: pilot.app.screen is not screen)
        return len(pilot.app.screen_stack)

    assert drive(frozen_home, lambda: DomainScreen(PING_A), loaded, script, size=SIZE) == 1


def test_a_domain_that_is_not_there_is_one_line(frozen_home):
    async def script(pilot, screen):
        await until(pilot, lambda: "invalid domain" in text_of(screen.query_one("#domain-header")))
        return text_of(screen.query_one("#domain-header"))

    header = drive(frozen_home, lambda: DomainScreen(77), lambda s: True, script, size=SIZE)
    assert header.strip() == "77 is an invalid domain identifier"


def test_throughput_is_requests_per_virtual_second_and_pages_scroll_the_grants(frozen_home):
    """disk-writer writes all the time: run the clock on by 1s and its
    ring's throughput is the requests it made in that second."""
    async def script(pilot, screen):
        before = screen.detail
        await pilot.press("r", *"1s", "enter")
        await until(pilot, lambda: screen.detail["now_ns"] > before["now_ns"])
        after = screen.detail
        devices = text_of(screen.query_one(DevicePanel))
        pane = screen.query_one("#grants-pane")
        await pilot.press("pagedown")
        down = pane.scroll_y
        await pilot.press("pageup")
        return before, after, devices, down, pane.scroll_y, pane.max_scroll_y

    before, after, devices, down, up, most = drive(frozen_home, lambda: DomainScreen(3), loaded,
                                                   script, size=SIZE)
    ring = next(d for d in after["devices"] if d["class"] == "vbd")["rings"][0]
    was = next(d for d in before["devices"] if d["class"] == "vbd")["rings"][0]
    made = (ring["req_prod"] - was["req_prod"]) % (1 << 32)
    seconds = (after["now_ns"] - before["now_ns"]) / 1e9
    assert made > 0 and seconds == 1.0
    assert rate_text(made / seconds, "req") in devices
    assert most > 0 and down > 0 and up == 0


def test_a_change_made_after_the_domain_went_is_still_said(frozen_home, tmp_path):
    from tui.widgets.domain_header import DomainHeader
    cfg = tmp_path / "brief.cfg"
    cfg.write_text('name = "brief"\nmemory = 16\nworkload = [ "idle" ]\n')
    xl(frozen_home, "create", str(cfg))
    domid = json.loads(xl(frozen_home, "list", "brief", "--json").stdout)[0]["domid"]

    async def script(pilot, screen):
        await off_loop(xl, frozen_home, "destroy", "brief")
        await pilot.press("f")                  # thaws the clock: a change that is not the domain's
        header = screen.query_one(DomainHeader)
        await until(pilot, lambda: "clock thawed" in header.status)
        return header.status, header.status_is_error

    try:
        status, error = drive(frozen_home, lambda: DomainScreen(domid), loaded, script)
        assert status == f"clock thawed; the domain: {domid} is an invalid domain identifier" and error
        assert host_status(frozen_home)["clock"]["frozen"] is False
    finally:
        xl(frozen_home, "clock", "freeze")
