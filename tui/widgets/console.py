"""A domain's console: what it wrote, as a terminal would show it, and
the keys typed into it, handed on as messages (the screen sends them)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message

from tui.widgets.lines import LinesView

# Where the kept output starts being forgotten.
MAX_LINES = 5000
# What a terminal sends for the keys that have no character of their own.
KEY_BYTES = {"up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D",
             "home": "\x1b[H", "end": "\x1b[F", "delete": "\x1b[3~"}
# The keys that stay with the dashboard: Escape leaves, as Ctrl-] does.
LEAVE_KEYS = ("escape", "ctrl+right_square_bracket")


class TerminalText:
    """Output as a line-mode terminal shows it: a line ends at CR LF, LF or
    a lone CR (a typed Enter, echoed back); backspace and DEL take back a
    character of the current line; tabs go to the next stop of 8; other
    control characters show in caret notation (^A) rather than vanish."""

    def __init__(self, max_lines: int = MAX_LINES):
        self.max_lines = max_lines
        self.lines: list[str] = [""]
        self._after_cr = False

    def feed(self, data: str) -> None:
        line = self.lines[-1]
        for ch in data:
            if ch == "\n" and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = ch == "\r"
            if ch in "\r\n":
                self.lines[-1] = line
                self.lines.append("")
                line = ""
            elif ch in "\b\x7f":
                line = line[:-1]
            elif ch == "\t":
                line += " " * (8 - len(line) % 8)
            elif ch < " ":
                line += "^" + chr(ord(ch) + 64)
            else:
                line += ch
        self.lines[-1] = line
        if len(self.lines) > self.max_lines:
            del self.lines[:len(self.lines) - self.max_lines]

    def text(self) -> str:
        return "\n".join(self.lines)


def key_bytes(event: events.Key) -> str | None:
    """What a terminal would send the guest for a key, or None for the
    keys the dashboard keeps."""
    if event.key in LEAVE_KEYS:
        return None
    if event.key in KEY_BYTES:
        return KEY_BYTES[event.key]
    if event.key == "backspace":
        return "\x7f"
    if event.key == "enter":
        return "\r"
    if event.character and (event.is_printable or event.character in "\t\x08"
                            or ord(event.character[0]) < 0x20):
        return event.character
    return None


class ConsoleView(LinesView):
    """The console's lines, the last at the bottom; what is typed while it
    has focus goes out as ``Typed``."""

    @dataclass
    class Typed(Message):
        data: str

    COMPONENT_CLASSES = {"consoleview--cursor"}
    DEFAULT_CSS = """
    ConsoleView > .consoleview--cursor {
        text-style: reverse;
    }
    """

    def show(self, terminal: TerminalText) -> None:
        self.update(list(terminal.lines))

    def line_text(self, index: int, line: str) -> Text:
        text = Text(line)
        if index == len(self.lines) - 1:
            # Where what is typed will appear.
            text.append(" ", self.get_component_rich_style("consoleview--cursor"))
        return text

    def on_key(self, event: events.Key) -> None:
        data = key_bytes(event)
        if data is None:
            return
        # Tab, Enter and the rest belong to the guest here, not to the
        # dashboard's bindings.
        event.stop()
        event.prevent_default()
        self.post_message(self.Typed(data))
