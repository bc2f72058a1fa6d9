"""The domain screen's top lines: which domain, its state and memory, the
clock everything was read by, and what the last key did."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from tui.widgets.domain_changes import CHANGED


def kib_text(kib: int | None) -> str:
    if kib is None:
        return "-"
    return f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib} KiB"


class DomainHeader(Static):
    def __init__(self, **kw):
        super().__init__("", **kw)
        self.detail: dict | None = None
        self.changed: frozenset = frozenset()
        self.selected = 0
        self.status = ""
        self.status_is_error = False

    def update_detail(self, detail: dict, changed: frozenset, selected: int) -> None:
        self.detail, self.changed, self.selected = detail, changed, selected
        self._show()

    def set_status(self, text: str, error: bool = False) -> None:
        self.status, self.status_is_error = text, error
        self._show()

    def _show(self) -> None:
        d, changed = self.detail, self.changed
        if d is None:
            self.update(Text(self.status, "bold red" if self.status_is_error else "italic"))
            return
        clock = d["clock"]
        how = "frozen" if clock["frozen"] else "running"
        title = Text.assemble(
            (f"{d['name']} (d{d['domid']})", "bold"), "  ",
            (d["state"], CHANGED if ("domain", "state") in changed else "bold cyan"),
            ("  paused" if d["paused"] else "", "bold yellow"),
            ("  dying" if d["dying"] else "", "bold red"),
            "   clock ", (f"{d['now_ns'] / 1e9:.9f} s", "bold"),
            f" {how}, speed {clock['speed']:g}x",
            f"   stepping vCPU {self.selected}")
        m = d["memory"]

        def mem(field: str) -> Text:
            return Text(kib_text(m[field]), CHANGED if ("memory", field) in changed else "bold")

        memory = Text.assemble("memory ", mem("current_kib"), " of max ", mem("max_kib"),
                               ", balloon target ", mem("target_kib"),
                               " (static-max ", mem("static_max_kib"), ")")
        status = Text(self.status or " ", "bold red" if self.status_is_error else "italic")
        self.update(Group(title, memory, status))
