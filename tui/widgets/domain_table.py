"""xentop's table: its header kept on the top line, each domain coloured by
its state with a sparkline of its CPU history after it, the lines under a
domain (vCPUs, networks, block devices), and a cursor on one domain that
the arrows move. Only the lines in view are rendered, so a thousand
domains cost what a screenful does."""

from __future__ import annotations

from typing import Callable, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.xentop import HISTORY, Line

HISTORY_HEADER = "CPU(%) HISTORY"
STATE_STYLES = ("running", "blocked", "paused", "shutdown", "crashed", "dying")


class DomainTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "domain-table--header", "domain-table--sort", "domain-table--cursor",
        "domain-table--detail", "domain-table--history",
        "domain-table--running", "domain-table--blocked", "domain-table--paused",
        "domain-table--shutdown", "domain-table--crashed", "domain-table--dying",
    }
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1000000000)", "First", show=False),
        Binding("end", "move(1000000000)", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._header: Line | None = None
        self._body: list[Line] = []
        self._spark: Callable[[int], str] = lambda domid: ""
        self._rows: list[int] = []            # body index of each domain's line
        self.selected: int | None = None      # the domid under the cursor

    # ------------------------------------------------------------ content
    def update(self, lines: list[Line], sparkline: Callable[[int], str]) -> None:
        """Show a table (tui.xentop.table's lines), each domain with its
        sparkline (asked for by domid as its line comes into view); the
        cursor stays on its domain wherever it went, or moves to the
        first."""
        self._header = lines[0] if lines and lines[0].kind == "header" else None
        self._body = lines[1:] if self._header else list(lines)
        self._spark = sparkline
        self._rows = [i for i, line in enumerate(self._body) if line.kind == "domain"]
        domids = [self._body[i].domid for i in self._rows]
        if self.selected not in domids:
            self.selected = domids[0] if domids else None
        width = max((line.width for line in lines), default=0) + 1 + HISTORY
        self.virtual_size = Size(width, len(self._body) + 1)
        self._keep_cursor_in_view()
        self.refresh()

    @property
    def texts(self) -> list[str]:
        """The table's lines as text, the header first (without sparklines)."""
        return [line.text for line in ([self._header] if self._header else []) + self._body]

    @property
    def domids(self) -> list[int]:
        """The domains shown, in their order."""
        return [self._body[i].domid for i in self._rows]

    # ------------------------------------------------------------ cursor
    def _cursor_row(self) -> int | None:
        for n, i in enumerate(self._rows):
            if self._body[i].domid == self.selected:
                return n
        return None

    def action_move(self, by: int) -> None:
        row = self._cursor_row()
        if row is None:
            return
        row = max(0, min(len(self._rows) - 1, row + by))
        self.select(self._body[self._rows[row]].domid)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 2))

    def select(self, domid: int) -> None:
        if domid in self.domids:
            self.selected = domid
            self._keep_cursor_in_view()
            self.refresh()

    def _keep_cursor_in_view(self) -> None:
        row = self._cursor_row()
        if row is None:
            return
        at = self._rows[row]
        visible = max(1, self.size.height - 1)
        top = round(self.scroll_y)
        if at < top:
            self.scroll_to(y=at, animate=False, immediate=True)
        elif at >= top + visible:
            self.scroll_to(y=at - visible + 1, animate=False, immediate=True)

    def on_click(self, event) -> None:
        if event.y >= 1:
            at = round(self.scroll_y) + event.y - 1
            if 0 <= at < len(self._body) and self._body[at].domid is not None:
                self.select(self._body[at].domid)

    # ------------------------------------------------------------ drawing
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            line, at = self._header, -1
        else:
            at = scroll_y + y - 1
            line = self._body[at] if at < len(self._body) else None
        if line is None:
            return Strip.blank(width, base)
        strip = Strip(self._segments(line, base))
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, at + 1)

    def _segments(self, line: Line, base: Style) -> list[Segment]:
        def style(name: str) -> Style:
            # Whole styles: a partial one loses the colours blended with the
            # background ($text-muted, a background at 40%).
            return self.get_component_rich_style(f"domain-table--{name}")
        history = None
        # The sparkline comes first, where it is always in view, and
        # xentop's columns follow it as xentop has them.
        if line.kind == "header":
            look = style("header")
            spark = f"{HISTORY_HEADER:<{HISTORY}} "
        elif line.kind == "domain":
            look = style(line.state) if line.state in STATE_STYLES else base
            if line.domid == self.selected:
                look += Style(bgcolor=style("cursor").bgcolor)
            else:
                history = look + Style(color=style("history").color)
            spark = f"{self._spark(line.domid):<{HISTORY}} "
        else:
            look = style("detail")
            spark = " " * (HISTORY + 1)
        text = line.text
        if line.sort_span is None:
            parts = [Segment(text, look)]
        else:
            start, end = line.sort_span
            bold = self.get_component_rich_style("domain-table--sort", partial=True)
            parts = [Segment(text[:start], look), Segment(text[start:end], look + bold),
                     Segment(text[end:], look)]
        return [Segment(spark, history or look)] + parts
