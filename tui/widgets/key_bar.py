"""xentop's bottom line: each key's letter in reverse, the views it turns
on highlighted; then the dashboard's own keys."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widgets import Static

from tui.xentop import View

# (before the key, the key, after it, the View setting it shows, if any)
XENTOP_KEYS = (("", "D", "elay", None), ("", "N", "etworks", "networks"),
               ("v", "B", "ds", "vbds"), ("", "V", "CPUs", "vcpus"),
               ("", "R", "epeat header", "repeat_header"), ("", "S", "ort order", None),
               ("", "Q", "uit", None))
OWN_KEYS = (("", "/", "filter", None), ("", "A", "ction", None), ("", "C", "reate", None),
            ("", "Enter", " domain", None), ("", "X", "enstore", None),
            ("c", "O", "nsole", None), ("", "T", "race", None))


class KeyBar(Static):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key", "key-bar--on"}

    def update_from(self, view: View) -> None:
        key = self.get_component_rich_style("key-bar--key", partial=True)
        on = self.get_component_rich_style("key-bar--on", partial=True)
        text = Text("  ")
        for before, letter, after, setting in XENTOP_KEYS + OWN_KEYS:
            lit = on if setting and getattr(view, setting) else None
            text.append(before, style=lit)
            text.append(letter, style=key)
            text.append(after, style=lit)
            text.append("  ")
        self.update(text)
