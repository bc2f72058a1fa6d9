"""What `xl top`'s main screen does to the machine, on a frozen host of
its own: pause, unpause, shutdown and destroy on the selected domain,
each asked first, checked with `xl`; a create from examples/domains/;
and the keys that open the other screens."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.tui_host import xl
from tests.tui_pilot import drive, top_app, until
from tui.examples import list_examples


def state_of(home, name: str) -> str | None:
    rows = {d["name"]: d for d in json.loads(xl(home, "list", "--json").stdout)}
    return rows[name]["state"] if name in rows else None


def status_text(pilot) -> str:
    return str(pilot.app.screen.query_one("#status").render())


async def act(pilot, name: str, action: str, answer: str = "y") -> str:
    """Select ``name`` through the filter, press A, pick ``action``,
    answer the question; what the status line says after."""
    screen = pilot.app.screen
    await pilot.press("slash", *name, "enter")
    assert screen.selected["name"] == name
    before = status_text(pilot)
    await pilot.press("a", action[0])
    assert "ConfirmScreen" in type(pilot.app.screen).__name__
    assert action.capitalize() in str(pilot.app.screen.query_one("#confirm-question").render())
    await pilot.press(answer)
    if answer == "y":
        await until(pilot, lambda: status_text(pilot) != before)
    await until(pilot, lambda: pilot.app.screen is screen)
    return status_text(pilot)


def test_pause_then_unpause_the_selected_domain(frozen_home):
    async def script(pilot):
        said = await act(pilot, "ping-a", "pause")
        assert said == "ping-a (2) paused" and state_of(frozen_home, "ping-a")[2] == "p"
        await until(pilot, lambda: pilot.app.screen.selected["paused"])   # refetched at once
        said = await act(pilot, "ping-a", "unpause")
        assert said == "ping-a (2) unpaused" and state_of(frozen_home, "ping-a")[2] == "-"
    drive(top_app(frozen_home), script)


def test_shutdown_asks_the_guest_and_destroy_takes_the_domain_away(frozen_home):
    async def script(pilot):
        said = await act(pilot, "ping-b", "shutdown")
        assert said == "ping-b (1) asked to shut down"
        # Its kernel answered control/shutdown, and its on_poweroff (destroy)
        # was applied.
        assert state_of(frozen_home, "ping-b") is None
        trace = xl(frozen_home, "trace", "-n", "2000").stdout
        assert "d1v0     hypercall sched_op:shutdown SchedShutdown(reason=0)" in trace
        said = await act(pilot, "vtpm-pcr", "destroy")
        assert said == "vtpm-pcr (4) destroyed" and state_of(frozen_home, "vtpm-pcr") is None
        await until(pilot, lambda: 4 not in pilot.app.screen.sample.by_id)
    drive(top_app(frozen_home), script)


def test_an_answer_of_no_changes_nothing_and_a_refusal_is_said(frozen_home):
    async def script(pilot):
        await act(pilot, "disk-writer", "destroy", answer="n")
        assert state_of(frozen_home, "disk-writer") is not None
        # Enter is not yes: it opens a domain on the screen below.
        await pilot.press("a", "d", "enter")
        assert "ConfirmScreen" in type(pilot.app.screen).__name__
        await pilot.press("escape")
        assert state_of(frozen_home, "disk-writer") is not None
        said = await act(pilot, "Domain-0", "pause")
        assert said == "pause Domain-0 (0): pausing the domain: EINVAL"
        assert state_of(frozen_home, "Domain-0")[2] == "-"
    drive(top_app(frozen_home), script)


def test_c_creates_a_domain_from_an_example(frozen_home):
    names = [p.name for p in list_examples()]

    async def script(pilot):
        screen = pilot.app.screen
        await pilot.press("C")
        assert "ChoiceScreen" in type(pilot.app.screen).__name__
        await pilot.press(*["down"] * names.index("cpu-light.yaml"), "enter")
        await until(pilot, lambda: "cpu-light" in status_text(pilot))
        assert status_text(pilot).startswith("created cpu-light (domain ")
        await until(pilot, lambda: any(d["name"] == "cpu-light" for d in screen.sample.domains))
        await pilot.press("c", "escape")                   # picked nothing
        assert pilot.app.screen is screen
    drive(top_app(frozen_home), script)
    assert state_of(frozen_home, "cpu-light") is not None


@pytest.mark.parametrize("key, module, name", [
    ("enter", "domain", "DomainScreen"), ("x", "xenstore", "XenstoreScreen"),
    ("o", "console", "ConsoleScreen"), ("t", "trace", "TraceScreen"),
])
def test_keys_open_the_other_screens(frozen_home, key, module, name):
    present = importlib.util.find_spec(f"tui.screens.{module}") is not None

    async def script(pilot):
        top = pilot.app.screen
        await pilot.press(key)
        if not present:
            assert status_text(pilot) == f"no {module} screen in this build"
            return
        await until(pilot, lambda: pilot.app.screen is not top)
        opened = pilot.app.screen
        assert type(opened).__name__ == name
        if module == "xenstore":
            assert opened.path == "/"
        else:
            assert opened.domid == top.selected["domid"]
        await pilot.press("escape")
        await until(pilot, lambda: pilot.app.screen is top)
    drive(top_app(frozen_home), script)


def test_a_renamed_domain_is_shown_by_its_new_name(frozen_home):
    from tui.source import Source
    source = Source(str(frozen_home))
    try:
        before = {d["domid"]: d["name"] for d in source.call("top")["domains"]}
        domid = next(i for i, name in before.items() if name == "minimal")
        xl(frozen_home, "rename", "minimal", "minimal-renamed")
        after = {d["domid"]: d["name"] for d in source.call("top")["domains"]}
    finally:
        source.close()
    assert after == {**before, domid: "minimal-renamed"}
