"""A domain's grant table: each entry in use with its flags decoded, the
domain it grants to and the frame, Xen's pins on it, and who maps it
(the mappers' maptrack handles)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.widgets.domain_changes import CHANGED

_PINS = (("host_rw", "hw"), ("host_ro", "hr"), ("dev_rw", "dw"), ("dev_ro", "dr"))


def pins_text(active: dict | None) -> str:
    """Xen's four pin counters, those that are not zero."""
    if not active:
        return ""
    shown = [f"{short}{active[name]}" for name, short in _PINS if active[name]]
    return " ".join(shown) or "0"


def mappers_text(mapped_by: list[dict]) -> str:
    return ", ".join(f"d{m['domid']} #{m['handle']} {m['how']}" for m in mapped_by)


class GrantPanel(Static):
    def __init__(self, **kw):
        super().__init__("", **kw)
        self.detail: dict | None = None

    def update_detail(self, detail: dict, changed: frozenset) -> None:
        self.detail = detail
        g = detail["grants"]
        entries = g["entries"]
        mapped = sum(1 for e in entries if e["mapped_by"])
        head = Text(f"{len(entries)} entries in use, {mapped} mapped; "
                    f"{g['nr_frames']} of at most {g['max_frames']} frames", "dim")
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
        for name, justify in (("ref", "right"), ("flags", "left"), ("to", "right"),
                              ("frame", "right"), ("pins", "left"), ("mapped by", "left")):
            table.add_column(name, justify=justify, header_style="bold")
        for e in entries:
            ref = e["ref"]

            def cell(field: str, text: str) -> Text:
                return Text(text, CHANGED if ("grant", ref, field) in changed else "")

            table.add_row(Text(str(ref), "bold"),
                          cell("flags", ",".join(e["flag_names"])),
                          cell("domid", f"d{e['domid']}"),
                          cell("frame", f"{e['frame']:#x}"),
                          cell("active", pins_text(e["active"])),
                          cell("mapped_by", mappers_text(e["mapped_by"])))
        self.update(Group(head, table))
