"""A question to answer before something is done: y does it, n or Escape
does not. Enter does nothing here: it is the key that opens a domain on
the screen below, and a stray one must not destroy it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = "../styles/confirm.tcss"
    BINDINGS = [Binding("y,Y", "dismiss(True)", "Yes"),
                Binding("n,N,escape", "dismiss(False)", "No")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.question, id="confirm-question")
            yield Label("y: yes   n: no", id="confirm-keys")
