"""The line the domain screen asks for a stretch of virtual time on
("10ms", "2s", "250us"): Enter runs the clock on by it, Escape lets it be.
The service reads the duration, as it does `xl clock run`'s."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

class DurationPrompt(Input):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    @dataclass
    class Cancelled(Message):
        pass

    def __init__(self, **kw):
        super().__init__(placeholder="run the clock on by (say 10ms, 2s) - Enter runs, Esc cancels",
                         **kw)

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())
