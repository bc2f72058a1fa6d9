"""Pick one of a few things (an action, an example domain): arrows and
Enter, or the first letter; Escape picks nothing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class ChoiceScreen(ModalScreen[str | None]):
    CSS_PATH = "../styles/choice.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]]):
        """``choices``: (what is returned, what is shown) each."""
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="choice"):
            yield Label(self.title_text, id="choice-title")
            yield OptionList(*(Option(shown, id=value) for value, shown in self.choices),
                             id="choice-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def on_key(self, event) -> None:
        """A letter picks the first choice shown with it."""
        if event.character and event.character.isalpha():
            for value, shown in self.choices:
                if shown.lower().startswith(event.character.lower()):
                    event.stop()
                    self.dismiss(value)
                    return
