"""The line the domain screen asks for a stretch of virtual time on
("10ms", "2s", "250us"): Enter runs the clock on by it, Escape lets it be."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_duration(text: str) -> int:
    """"100ms", "1.5s", "250us" in ns, as `xl clock run` reads them."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ns|us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"{text.strip()!r} is not a duration (say 10ms, 2s, 250us)")
    ns = int(float(m.group(1)) * _UNITS[m.group(2)])
    if ns <= 0:
        raise ValueError("a duration above 0, please")
    return ns


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
