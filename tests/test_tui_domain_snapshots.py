"""The domain screen as it looks on the frozen host: ping-a as it runs,
and `minimal`, paused since it was made, after two steps. The host of this
module is changed only by those two steps, so the order here matters:
ping-a first."""

from __future__ import annotations

from tui_screen import ScreenApp, until

from textual.widgets import Footer

from tui.screens.domain import DomainScreen

SIZE = (140, 48)


def ready(steps: int = 0):
    """Until the screen shows its snapshot (after ``steps`` steps, each
    pressed once the one before has landed) and its footer its keys."""
    async def run_before(pilot) -> None:
        def shown() -> bool:
            screen = pilot.app.screen
            return isinstance(screen, DomainScreen) and screen.detail is not None
        await until(pilot, shown)
        screen = pilot.app.screen
        for n in range(1, steps + 1):
            await pilot.press("space")
            await until(pilot, lambda: screen.steps == n)
        await until(pilot, lambda: len(screen.query_one(Footer).children) > 0)
        await pilot.pause(0.05)
    return run_before


def test_ping_a(frozen_home, snap_compare):
    app = ScreenApp(frozen_home, lambda: DomainScreen(2))
    assert snap_compare(app, terminal_size=SIZE, run_before=ready())


def test_minimal_paused_after_two_steps(frozen_home, snap_compare):
    app = ScreenApp(frozen_home, lambda: DomainScreen(5))
    assert snap_compare(app, terminal_size=SIZE, run_before=ready(steps=2))
