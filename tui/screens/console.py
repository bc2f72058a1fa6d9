"""A domain's console, as `xl console` attaches to it: what it has written
so far and what it writes as it comes (read from the console daemon by
offset, in a worker), and the keys typed here going into its console ring.
Escape or Ctrl-] leaves, as Ctrl-] leaves xenconsole."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from tui.widgets.console import ConsoleView, TerminalText
from xl.client import XlError

# How often the console daemon is asked for more when nothing was typed
# (each ask looks the domain up, with a hypercall the trace shows).
POLL_S = 0.2
HINT = "keys go to the guest · Esc or Ctrl-] leaves"


@dataclass
class Named(Message):
    name: str


@dataclass
class Output(Message):
    data: str


@dataclass
class Dropped(Message):
    count: int


@dataclass
class Failed(Message):
    reason: str


class ConsoleScreen(Screen):
    CSS_PATH = "../styles/console.tcss"
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("ctrl+right_square_bracket", "leave", "Back", show=False),
    ]

    def __init__(self, domid: int):
        super().__init__()
        self.domid = domid
        self.terminal = TerminalText()
        self.attached = False           # the first read came back
        self.named = False              # and the domain's name
        self._typed: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._wake = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static(f"console  domain {self.domid}", id="console-title")
        yield ConsoleView(id="console-view")
        yield Static(HINT, id="console-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ConsoleView).focus()
        self._follow()

    def action_leave(self) -> None:
        self.dismiss()

    def on_console_view_typed(self, message: ConsoleView.Typed) -> None:
        self._typed.put(message.data)
        self._wake.set()

    @work(thread=True, group="console")
    def _follow(self) -> None:
        """Send what was typed, read what came, and again, until the
        screen goes (or the domain does)."""
        worker = get_current_worker()
        source = self.app.source
        try:
            self.post_message(Named(source.call("domname", domid=self.domid)))
            offset, first = 0, True
            while not worker.is_cancelled:
                typed = self._take_typed()
                if typed:
                    took = source.call("console_write", domid=self.domid, data=typed)
                    size = len(typed.encode(errors="surrogateescape"))
                    if took < size:
                        self.post_message(Dropped(size - took))
                got = source.call("console_read", domain=self.domid, offset=offset)
                if got["data"] or first:
                    self.post_message(Output(got["data"]))
                    first = False
                offset = got["offset"]
                self._wake.wait(POLL_S)
                self._wake.clear()
        except XlError as e:
            self.post_message(Failed(str(e)))

    def _take_typed(self) -> str:
        keys = []
        while True:
            try:
                keys.append(self._typed.get_nowait())
            except queue.Empty:
                return "".join(keys)

    def on_named(self, message: Named) -> None:
        self.named = True
        self.query_one("#console-title", Static).update(
            f"console  {message.name} (domain {self.domid})")

    def on_output(self, message: Output) -> None:
        self.attached = True
        self.terminal.feed(message.data)
        self.query_one(ConsoleView).show(self.terminal)

    def on_dropped(self, message: Dropped) -> None:
        self.query_one("#console-status", Static).update(
            f"the console ring is full: {message.count} typed bytes were not taken")

    def on_failed(self, message: Failed) -> None:
        status = self.query_one("#console-status", Static)
        status.add_class("error")
        status.update(message.reason)
