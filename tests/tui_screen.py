"""One of the dashboard's screens alone, on a host service, as the main
screen opens it: for pilot tests and snapshots of that screen."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from textual.app import App
from textual.screen import Screen

from tui.source import Source


class ScreenApp(App):
    def __init__(self, home, make_screen: Callable[[], Screen]):
        super().__init__()
        self.source = Source(str(home))
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


async def until(pilot, condition: Callable[[], object], timeout: float = 15.0) -> None:
    """Let the app run until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition.__doc__ or condition}")
        await pilot.pause(0.02)


def waiting_for(kind: type[Screen], ready: Callable[[Screen], object]):
    """An async run_before for snap_compare: until the screen is up and
    ``ready``, and then one more refresh."""
    async def wait(pilot) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, kind) and ready(pilot.app.screen))
        await pilot.pause(0.05)
    return wait


def drive(home, make_screen: Callable[[], Screen], ready: Callable[[Screen], object], script,
          size=(100, 30)):
    """Open the screen, wait until ``ready(screen)``, and run
    ``script(pilot, screen)``; its result is returned."""
    async def run():
        app = ScreenApp(home, make_screen)
        async with app.run_test(size=size) as pilot:
            screen = await _opened(pilot)
            await until(pilot, lambda: ready(screen))
            return await script(pilot, screen)
    return asyncio.run(run())


async def _opened(pilot) -> Screen:
    await until(pilot, lambda: len(pilot.app.screen_stack) > 1)
    return pilot.app.screen


async def off_loop(function, *args):
    """A blocking call (a subprocess, say) while the app goes on."""
    return await asyncio.to_thread(function, *args)
