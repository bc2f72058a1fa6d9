"""`xl top`'s trace screen on a frozen host: the trace as `xl trace`
prints it, new lines after `xl clock run`, p holding the view still, /
narrowing it, one domain's alone, and the ways out."""

from __future__ import annotations

import re

from tui_host import xl
from tui_screen import ScreenApp, drive, off_loop, until, waiting_for

from tui.screens.trace import TraceScreen
from tui.widgets.trace import TraceView

TIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


def loaded(screen) -> bool:
    """the first answer came"""
    return screen.loaded


def shown(screen) -> list[str]:
    return list(screen.query_one(TraceView).lines)


def status(screen) -> str:
    return str(screen.query_one("#trace-status").render())


def test_snapshot_of_the_whole_trace(frozen_home, snap_compare):
    # First in the module: the trace is as the fixture left it.
    app = ScreenApp(frozen_home, lambda: TraceScreen())
    assert snap_compare(app, terminal_size=(120, 24), run_before=waiting_for(TraceScreen, loaded))


def test_snapshot_of_one_domains_trace(frozen_home, snap_compare):
    app = ScreenApp(frozen_home, lambda: TraceScreen(2))
    assert snap_compare(app, terminal_size=(120, 24),
                        run_before=waiting_for(TraceScreen, lambda s: s.loaded and s.named))


def test_it_shows_the_trace_as_xl_trace_prints_it(frozen_home):
    async def script(pilot, screen):
        return shown(screen), status(screen)

    lines, said = drive(frozen_home, lambda: TraceScreen(), loaded, script)
    printed = xl(frozen_home, "trace", "-n", "1000").stdout.splitlines()
    assert lines == printed and len(lines) == 1000
    assert said == "following · 1000 lines"


def test_new_lines_come_after_clock_run(frozen_home):
    async def script(pilot, screen):
        before = shown(screen)
        await off_loop(xl, frozen_home, "clock", "run", "1s")
        await until(pilot, lambda: shown(screen) != before)
        view = screen.query_one(TraceView)
        grown = len(shown(screen)) - view.size.height
        # Following: scrolled on to the newest, once the view has refreshed.
        await until(pilot, lambda: view.scroll_offset.y == view.max_scroll_y >= grown)
        return before, shown(screen)

    before, after = drive(frozen_home, lambda: TraceScreen(), loaded, script)
    last = float(TIME.match(before[-1]).group(1))
    assert float(TIME.match(after[-1]).group(1)) > last and len(after) > len(before)


def test_p_and_space_hold_the_view_still_and_go_on(frozen_home):
    for key in ("p", "space"):
        async def script(pilot, screen):
            await pilot.press(key)
            held = shown(screen)
            await off_loop(xl, frozen_home, "clock", "run", "1s")
            await until(pilot, lambda: screen.held > 0)
            still, said = shown(screen), status(screen)
            await pilot.press(key)
            return held, still, said, shown(screen), screen.held

        held, still, said, after, count = drive(frozen_home, lambda: TraceScreen(), loaded, script)
        assert still == held
        assert said == f"paused · 1000 lines · {count} new held · p goes on" and count > 0
        assert after[:len(held)] == held and len(after) == len(held) + count


def test_slash_filters_and_escape_drops_the_filter(frozen_home):
    async def script(pilot, screen):
        everything = shown(screen)
        await pilot.press("slash", *"sched_op")     # p and q are the filter's here
        narrowed = shown(screen)
        await pilot.press("enter")
        kept, said, focus_back = shown(screen), status(screen), screen.query_one(TraceView).has_focus
        screen.needle = "SCHED_OP"
        any_case = screen.shown_lines()
        await pilot.press("slash", "escape")
        return everything, narrowed, kept, said, focus_back, shown(screen), screen.is_current, any_case

    everything, narrowed, kept, said, focus_back, after, current, any_case = drive(
        frozen_home, lambda: TraceScreen(), loaded, script)
    matching = [line for line in everything if "sched_op" in line.lower()]
    assert narrowed == kept == matching == any_case and 0 < len(matching) < len(everything)
    assert said == f"following · {len(matching)} lines containing “sched_op”" and focus_back
    assert after == everything and current               # Escape left the filter, not the screen


def test_one_domains_trace_has_only_its_records(frozen_home):
    async def script(pilot, screen):
        return shown(screen), str(screen.query_one("#trace-title").render())

    lines, title = drive(frozen_home, lambda: TraceScreen(4), lambda s: s.loaded and s.named, script)
    assert title == "trace  vtpm-pcr (domain 4)"
    assert lines and all(re.match(r"^\[[ \d.]+\] d4(v\d+)? ", line) for line in lines)
    assert lines == xl(frozen_home, "trace", "-n", "1000", "4").stdout.splitlines()


def test_a_domain_that_is_not_there_says_so_in_one_line(frozen_home):
    async def script(pilot, screen):
        await until(pilot, lambda: screen.query_one("#trace-status").has_class("error"))
        return status(screen)

    assert drive(frozen_home, lambda: TraceScreen(42), lambda s: True,
                 script) == "42 is an invalid domain identifier"


def test_escape_and_q_leave(frozen_home):
    for key in ("escape", "q"):
        async def script(pilot, screen):
            await pilot.press(key)
            return pilot.app.screen is screen

        assert drive(frozen_home, lambda: TraceScreen(), loaded, script) is False
