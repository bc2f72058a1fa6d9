"""What the last step did: the trace lines the operation produced, as
`xl step` prints them."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

# Colours by the record's kind, the word after who acted.
KIND_STYLE = {"hypercall": "cyan", "evtchn": "magenta", "guest": "green", "sched": "dim",
              "xenstore": "yellow", "grant": "blue", "device": "bright_blue", "domain": "bold"}


def line_text(line: str) -> Text:
    parts = line.split(None, 3)
    kind = parts[2] if len(parts) > 2 and line.startswith("[") else ""
    return Text(line, KIND_STYLE.get(kind, ""), overflow="fold")


class StepLog(Static):
    def __init__(self, **kw):
        super().__init__(Text("space or . steps the chosen vCPU of a paused domain", "dim"), **kw)
        self.title = ""
        self.lines: list[str] = []

    def show(self, title: str, lines: list[str]) -> None:
        self.title, self.lines = title, list(lines)
        body = [line_text(line) for line in lines] or [Text("(no trace records)", "dim")]
        self.update(Group(Text(title, "bold"), *body))
