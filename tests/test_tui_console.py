"""`xl top`'s console screen on a frozen host: what the domain wrote, keys
typed into its console ring (its kernel echoes them once it runs), the
ways out, and a console that isn't there; and the terminal it draws."""

from __future__ import annotations

from tui_host import xl
from tui_screen import ScreenApp, drive, off_loop, until, waiting_for

from tui.screens.console import ConsoleScreen
from tui.source import Source
from tui.widgets.console import ConsoleView, TerminalText

BOOT = "xenlab PV kernel: domain 2, 8192 pages, 1 vCPUs"


def attached(screen) -> bool:
    """the first read came back"""
    return screen.attached


def test_snapshot_of_a_domains_console(frozen_home, snap_compare):
    app = ScreenApp(frozen_home, lambda: ConsoleScreen(2))
    assert snap_compare(app, terminal_size=(90, 16),
                        run_before=waiting_for(ConsoleScreen, lambda s: s.attached and s.named))


def test_it_shows_what_the_domain_wrote(frozen_home):
    async def script(pilot, screen):
        return list(screen.query_one(ConsoleView).lines), str(screen.query_one("#console-title").render())

    lines, title = drive(frozen_home, lambda: ConsoleScreen(2), lambda s: s.attached and s.named,
                         script)
    dumped = xl(frozen_home, "console", "--dump", "ping-a").stdout
    assert lines[0] == BOOT and lines == dumped.split("\n")
    assert title == "console  ping-a (domain 2)"


def test_typed_keys_reach_the_guest_which_echoes_them(frozen_home):
    async def script(pilot, screen):
        view = screen.query_one(ConsoleView)
        assert view.has_focus
        await pilot.press("l", "s", "tab", "x", "backspace", "q", "enter")
        # Nothing runs on a frozen clock: the guest takes the keys when it does.
        await pilot.pause(0.3)
        assert "ls" not in screen.terminal.lines[-1]
        await off_loop(xl, frozen_home, "clock", "run", "50ms")
        await until(pilot, lambda: screen.terminal.lines[-1:] == [""] and "ls" in screen.terminal.lines[-2])
        return screen.terminal.lines[-2:], list(view.lines[-2:]), screen.is_current, view.has_focus

    tail, shown, current, focused = drive(frozen_home, lambda: ConsoleScreen(2), attached, script)
    assert tail == ["ls      q", ""]             # to the tab stop; backspace took the x back
    assert shown == tail and current and focused  # q and tab went to the guest, not the screen
    kept = Source(str(frozen_home)).call("console_read", domain=2)["data"]
    assert kept.endswith("ls\tx\x7fq\r")          # the kernel's echo, byte for byte


def test_escape_and_ctrl_bracket_leave(frozen_home):
    for key in ("escape", "ctrl+right_square_bracket"):
        async def script(pilot, screen):
            await pilot.press(key)
            return pilot.app.screen is screen

        assert drive(frozen_home, lambda: ConsoleScreen(2), attached, script) is False


def test_a_console_that_is_not_there_says_so_in_one_line(frozen_home):
    async def script(pilot, screen):
        status = screen.query_one("#console-status")
        await until(pilot, lambda: status.has_class("error"))
        return str(status.render())

    assert drive(frozen_home, lambda: ConsoleScreen(42), lambda s: True,
                 script) == "42 is an invalid domain identifier"


def test_the_terminal_ends_lines_takes_back_characters_and_shows_controls():
    term = TerminalText(max_lines=3)
    term.feed("one\r\ntwo\rthr")
    term.feed("ee\x7fe\bE\tx\x01\x1b")
    assert term.lines == ["one", "two", "threE   x^A^["]
    term.feed("\r")
    term.feed("\nlast")                           # CR LF split between two reads: one line end
    assert term.lines == ["two", "threE   x^A^[", "last"]


def test_an_open_console_leaves_the_machine_and_its_trace_alone(frozen_home):
    source = Source(str(frozen_home))

    def seq() -> int:
        return source.call("trace", limit=1)["seq"]

    async def script(pilot, screen):
        before = await off_loop(seq)
        await pilot.pause(1.0)                  # five polls at least
        return before, await off_loop(seq)

    before, after = drive(frozen_home, lambda: ConsoleScreen(2), attached, script)
    assert after == before
