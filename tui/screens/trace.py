"""The machine's trace as it scrolls, as `xl trace -f` follows it: every
hypercall, event and state change, for one domain or for all, fetched by
sequence number in a worker. p holds the view still (what comes meanwhile
is kept, and shown on p again); / narrows it to the lines that contain a
text."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from tui.widgets.trace import TraceView
from xl.client import XlError

# How often the service is asked for what came since.
POLL_S = 0.25
# How much of the trace the screen opens with, and keeps at most.
FIRST_LINES = 1000
MAX_LINES = 5000


@dataclass
class Named(Message):
    name: str


@dataclass
class Traced(Message):
    lines: list[str]


@dataclass
class Failed(Message):
    reason: str


class TraceScreen(Screen):
    CSS_PATH = "../styles/trace.tcss"
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("q", "leave", "Back", show=False),
        Binding("p", "pause", "Pause"),
        Binding("space", "pause", "Pause", show=False),
        Binding("slash", "filter", "Filter"),
    ]

    def __init__(self, domid: int | None = None):
        super().__init__()
        self.domid = domid
        self.kept: deque[str] = deque(maxlen=MAX_LINES)
        self.paused = False
        self.still: list[str] = []      # what was kept when the view was paused
        self.held = 0                   # lines that came while paused
        self.needle = ""
        self.loaded = False             # the first answer came
        self.named = False              # and, for one domain, its name

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="trace-title")
        yield TraceView(id="trace-view")
        yield Input(placeholder="show only lines containing…", id="trace-filter")
        yield Static("", id="trace-status")
        yield Footer()

    def _title(self, name: str | None = None) -> str:
        if self.domid is None:
            return "trace  all domains"
        return f"trace  {name} (domain {self.domid})" if name else f"trace  domain {self.domid}"

    def on_mount(self) -> None:
        self.query_one(TraceView).focus()
        self._follow()

    # ------------------------------------------------------------ fetching
    @work(thread=True, group="trace")
    def _follow(self) -> None:
        worker = get_current_worker()
        source = self.app.source
        args = {} if self.domid is None else {"domain": self.domid}
        try:
            if self.domid is not None:
                self.post_message(Named(source.call("domname", domid=self.domid)))
            got = source.call("trace", limit=FIRST_LINES, **args)
            self.post_message(Traced(got["lines"]))
            while not worker.is_cancelled:
                seq = got["seq"]
                _nap(worker)
                if worker.is_cancelled:
                    break
                got = source.call("trace", since=seq, limit=MAX_LINES, **args)
                if got["lines"]:
                    self.post_message(Traced(got["lines"]))
        except XlError as e:
            self.post_message(Failed(str(e)))

    def on_named(self, message: Named) -> None:
        self.named = True
        self.query_one("#trace-title", Static).update(self._title(message.name))

    def on_traced(self, message: Traced) -> None:
        self.loaded = True
        self.kept.extend(message.lines)
        if self.paused:
            self.held += len(message.lines)
            self._show_status()
        else:
            self._show()

    def on_failed(self, message: Failed) -> None:
        status = self.query_one("#trace-status", Static)
        status.set_classes("error")
        status.update(message.reason)

    # ------------------------------------------------------------ showing
    def shown_lines(self) -> list[str]:
        lines = self.still if self.paused else self.kept
        if not self.needle:
            return list(lines)
        needle = self.needle.lower()
        return [line for line in lines if needle in line.lower()]

    def _show(self) -> None:
        self.query_one(TraceView).update(self.shown_lines(), follow=not self.paused)
        self._show_status()

    def _show_status(self) -> None:
        status = self.query_one("#trace-status", Static)
        if status.has_class("error"):
            return
        shown = len(self.query_one(TraceView).lines)
        text = f"{shown} lines"
        if self.needle:
            text += f" containing “{self.needle}”"
        if self.paused:
            text = f"paused · {text} · {self.held} new held · p goes on"
        else:
            text = f"following · {text}"
        status.set_class(self.paused, "paused")
        status.update(text)

    # ------------------------------------------------------------ keys
    def action_leave(self) -> None:
        filter_input = self.query_one("#trace-filter", Input)
        if filter_input.has_focus:
            filter_input.value = ""     # Escape in the filter drops it
            self._close_filter()
            return
        self.dismiss()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self.still, self.held = list(self.kept), 0
            self._show_status()
        else:
            self.still = []
            self._show()

    def action_filter(self) -> None:
        filter_input = self.query_one("#trace-filter", Input)
        filter_input.add_class("shown")
        filter_input.focus()

    @on(Input.Changed, "#trace-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value
        self._show()

    @on(Input.Submitted, "#trace-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#trace-filter", Input).remove_class("shown")
        self.query_one(TraceView).focus()
        self.needle = self.query_one("#trace-filter", Input).value
        self._show()


def _nap(worker) -> None:
    """POLL_S, cut short when the screen goes."""
    deadline = time.monotonic() + POLL_S
    while not worker.is_cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
