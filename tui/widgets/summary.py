"""xentop's summary lines above the table (the time, Xen's version, the
domains by state, memory, pCPUs), and a line of the dashboard's own: the
virtual clock, the delay, the sort column and the filter."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.xentop import FIELDS, Sample, View, summary_lines


class Summary(Static):
    def update_from(self, sample: Sample, view: View, clock: dict, delay: float) -> None:
        lines = summary_lines(sample)
        state = "frozen" if clock["frozen"] else f"running at {clock['speed']:g}x"
        ours = (f"virtual time {clock['now_ns'] / 1e9:.6f} s, {state}; every {delay:g} s; "
                f"sorted by {FIELDS[view.sort_field].header}")
        if view.filter:
            ours += f"; names with {view.filter!r}"
        text = Text("\n".join(lines) + "\n")
        text.append(ours, style="dim")
        self.update(text)
