"""Lines of text in a scrolling view that stays on the last line while it
follows, and stays where it is while it does not: the console's and the
trace's. A line is styled only when it comes into view."""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class LinesView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LinesView {
        background: $surface;
        overflow: auto auto;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._lines: Sequence[str] = ()

    @property
    def lines(self) -> Sequence[str]:
        return self._lines

    def update(self, lines: Sequence[str], follow: bool = True) -> None:
        """Show ``lines``; with ``follow``, scrolled to the last of them."""
        self._lines = lines
        width = max((cell_len(line) for line in lines), default=0) + 1
        self.virtual_size = Size(width, len(lines))
        if follow:
            # After the refresh, when the scrollbars know the new size.
            self.scroll_end(animate=False, x_axis=False)
        self.refresh()

    def line_text(self, index: int, line: str) -> Text:
        """How one line looks."""
        return Text(line)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        style = self.rich_style
        at = scroll_y + y
        if at >= len(self._lines):
            return Strip.blank(width, style)
        text = self.line_text(at, self._lines[at])
        text.no_wrap = True
        text.stylize_before(style)
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, at)
