"""Driving `xl top`'s app headless for the tests: the app on a frozen
host's service, and waiting for what a worker brings."""

from __future__ import annotations

import asyncio
import time

from tui.app import TopApp
from tui.options import Options
from tui.xentop import View
from tui.source import Source

# Long enough that a test sees exactly one fetch unless it asks for more.
QUIET_DELAY = 3600.0


def top_app(home, **options) -> TopApp:
    """The dashboard on ``home``'s service; options as xl top's (the view's
    ones, networks=True say, go to its View)."""
    options.setdefault("delay", QUIET_DELAY)
    view = {key: options.pop(key) for key in list(options) if hasattr(View, key)}
    return TopApp(Source(str(home)), Options(**options, view=View(**view)))


async def until(pilot, condition, timeout: float = 15.0) -> None:
    """Let the app run until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition.__doc__ or condition}")
        await pilot.pause(0.02)


async def first_frame(pilot) -> None:
    """The main screen has shown its first answer."""
    from tui.screens.top import TopScreen

    def shown():
        screen = pilot.app.screen
        return isinstance(screen, TopScreen) and screen.sample is not None
    await until(pilot, shown)
    await pilot.pause()


def drive(app: TopApp, script, size=(200, 40)):
    """Run ``script(pilot)`` against the app once its first frame is up;
    its result is returned."""
    async def run():
        async with app.run_test(size=size) as pilot:
            await first_frame(pilot)
            return await script(pilot)
    return asyncio.run(run())
