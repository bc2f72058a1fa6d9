"""The `xl top` application: the host service's answers through one
Source, and the main screen (tui/screens/top.py), from which every
other is opened."""

from __future__ import annotations

from textual.app import App

from tui.options import Options
from tui.screens.top import TopScreen
from tui.source import Source


class TopApp(App):
    TITLE = "xl top"

    def __init__(self, source: Source, options: Options | None = None):
        super().__init__()
        self.source = source
        self.options = options or Options()

    def on_mount(self) -> None:
        # Pushed, not made the default screen: a default screen's CSS_PATH
        # is never loaded.
        self.push_screen(TopScreen(self.options))


def run(options: Options, source: Source) -> int:
    app = TopApp(source, options)
    app.run()
    return app.return_code or 0
