"""A domain's vCPUs: where each is and how the credit scheduler sees it,
the time it has spent in each runstate, and a strip of its recent states
over virtual time (one cell a slice, newest right)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.widgets.domain_changes import CHANGED, ns_text

# How each runstate's letter in a timeline is drawn.
STRIP = {"R": ("█", "green"), "+": ("▄", "green"), "r": ("▆", "yellow"), "b": ("▁", "blue"),
         "o": ("·", "red"), " ": (" ", "")}
STATE_STYLE = {"running": "bold green", "runnable": "yellow", "blocked": "blue", "offline": "red"}


def strip_text(letters: str) -> Text:
    return Text.assemble(*[STRIP.get(c, (c, "")) for c in letters])


class VcpuPanel(Static):
    def __init__(self, **kw):
        super().__init__("", **kw)
        self.detail: dict | None = None

    def update_detail(self, detail: dict, changed: frozenset, selected: int) -> None:
        self.detail = detail
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), expand=False)
        for name, justify in (("", "left"), ("vCPU", "right"), ("state", "left"),
                              ("pCPU", "right"), ("credit", "right"), ("pri", "left"),
                              ("running", "right"), ("runnable", "right"), ("blocked", "right"),
                              ("offline", "right")):
            table.add_column(name, justify=justify, header_style="bold")
        for v in detail["vcpus"]:
            n = v["vcpu"]

            def cell(field: str, text: str, style: str = "") -> Text:
                return Text(text, CHANGED if ("vcpu", n, field) in changed else style)

            times = v["runstate_ns"]
            table.add_row(
                Text("▶" if n == selected else " ", "bold"),
                Text(str(n), "bold" if n == selected else ""),
                cell("state", v["state"], STATE_STYLE.get(v["state"], "")),
                cell("cpu", str(v["cpu"])),
                cell("credit", "-" if v["credit"] is None else str(v["credit"])),
                cell("priority", v["priority"]),
                *[Text(ns_text(times[s])) for s in ("running", "runnable", "blocked", "offline")],
            )
        span = detail["timeline"]["cells"] * detail["timeline"]["cell_ns"]
        cells = detail["timeline"]["cells"]
        middle = f"{ns_text(detail['timeline']['cell_ns'])} a cell"
        left = f"-{ns_text(span)}"
        axis = Text(" " * 6 + left + middle.center(cells - len(left) - 3) + "now", "dim")
        strips = [Text.assemble(("▶" if v["vcpu"] == selected else " ", "bold"),
                                f"v{v['vcpu']:<3d}", "│", strip_text(v["timeline"]), "│")
                  for v in detail["vcpus"]]
        legend = Text.assemble(
            "      ", *[part for letter, name in (("R", "running"), ("+", "ran too"),
                                                   ("r", "runnable"), ("b", "blocked"),
                                                   ("o", "offline"))
                        for part in ((STRIP[letter][0], STRIP[letter][1]), f" {name}  ")])
        self.update(Group(table, Text(), *strips, axis, legend))
