"""A domain's event channels, as `xl debug-keys e` lists them: each port's
kind, its other end, the vCPU it notifies, and its pending and mask bits
as they stand in the domain's shared_info page; above them, each vCPU's
own flags there (evtchn_upcall_pending, evtchn_upcall_mask and the
selector of words with pending ports)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.widgets.domain_changes import CHANGED


def remote_text(e: dict) -> str:
    kind = e["kind"]
    if kind == "interdomain":
        return f"d{e['remote_dom']}:{e['remote_port']}"
    if kind == "unbound":
        return f"for d{e['remote_dom']}"
    if kind == "virq":
        return f"VIRQ_{e['virq']}"
    if kind == "pirq":
        return f"pirq {e['pirq']}"
    return ""


def bit_text(value: bool | None, on: str) -> str:
    return "?" if value is None else on if value else "·"


class EventChannelPanel(Static):
    def __init__(self, **kw):
        super().__init__("", **kw)
        self.detail: dict | None = None

    def update_detail(self, detail: dict, changed: frozenset) -> None:
        self.detail = detail
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
        for name, justify in (("port", "right"), ("kind", "left"), ("remote", "left"),
                              ("vCPU", "right"), ("pending", "center"), ("mask", "center")):
            table.add_column(name, justify=justify, header_style="bold")
        for e in detail["evtchns"]:
            port = e["port"]

            def cell(field: str, text: str, style: str = "") -> Text:
                return Text(text, CHANGED if ("evtchn", port, field) in changed else style)

            new = ("evtchn", port, "port") in changed
            table.add_row(
                Text(str(port), CHANGED if new else "bold"),
                cell("kind", e["kind"]),
                cell("remote_port", remote_text(e)) if ("evtchn", port, "remote_dom") not in changed
                else Text(remote_text(e), CHANGED),
                cell("vcpu", str(e["vcpu"])),
                cell("pending", bit_text(e["pending"], "P"), "bold red" if e["pending"] else ""),
                cell("masked", bit_text(e["masked"], "M"), "bold" if e["masked"] else ""),
            )
        if not detail["evtchns"]:
            table.add_row("", Text("no ports in use", "italic"))
        self.update(Group(*[self._vcpu_flags(v, changed) for v in detail["vcpus"]], table))

    @staticmethod
    def _vcpu_flags(v: dict, changed: frozenset) -> Text:
        n = v["vcpu"]
        if v["upcall_pending"] is None:
            return Text(f"v{n}: no vcpu_info to read", "dim")

        def flag(field: str, text: str) -> Text:
            return Text(text, CHANGED if ("vcpu", n, field) in changed else "bold")

        return Text.assemble(f"v{n}: upcall_pending ", flag("upcall_pending", str(v["upcall_pending"])),
                             "  upcall_mask ", flag("upcall_mask", str(v["upcall_mask"])),
                             "  pending_sel ", flag("pending_sel", f"{v['pending_sel']:#x}"))
