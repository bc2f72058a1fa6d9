"""`xl top`'s main screen: xentop's summary, table and keys, fetched from
the host service every delay in a worker; and what xentop has not: a CPU
sparkline and a colour for each domain's state, a filter, actions on the
selected domain (with a question first), creating an example domain, and
the ways into the other screens."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from tui.examples import ExampleError, list_examples, read_config
from tui.options import Options, UsageError, parse_delay
from tui.widgets.domain_table import DomainTable
from tui.widgets.key_bar import KeyBar
from tui.widgets.summary import Summary
from tui.xentop import FIELDS, CpuHistory, Sample, table
from xl.client import XlError

# The actions on a domain: the service op `xl` uses, and what is said after.
ACTIONS = {"pause": "paused", "unpause": "unpaused", "shutdown": "asked to shut down",
           "destroy": "destroyed"}


@dataclass
class Fetched(Message):
    """A `top` answer, or why there is none."""
    node: dict | None
    error: str = ""


@dataclass
class Done(Message):
    """What an action or a create came to, in one line."""
    text: str


def key(*letters: str) -> str:
    """xentop's keys work in either case."""
    return ",".join(f"{c.lower()},{c.upper()}" for c in letters)


class TopScreen(Screen):
    CSS_PATH = "../styles/top.tcss"
    BINDINGS = [
        Binding(key("d"), "prompt('delay')", "Delay"),
        Binding(key("n"), "toggle('networks')", "Networks"),
        Binding(key("b"), "toggle('vbds')", "vBds"),
        Binding(key("v"), "toggle('vcpus')", "VCPUs"),
        Binding(key("r"), "toggle('repeat_header')", "Repeat header"),
        Binding(key("s"), "sort", "Sort order"),
        Binding(key("q"), "quit", "Quit"),
        Binding("escape", "escape", "Quit", show=False),
        Binding("slash", "prompt('filter')", "Filter"),
        Binding(key("a"), "act", "Action"),
        Binding(key("c"), "create", "Create"),
        Binding("enter", "open('domain')", "Domain"),
        Binding(key("x"), "open('xenstore')", "Xenstore"),
        Binding(key("o"), "open('console')", "Console"),
        Binding(key("t"), "open('trace')", "Trace"),
    ]
    PROMPTS = {"delay": "Delay(sec)", "filter": "Filter (part of a name)"}

    def __init__(self, options: Options | None = None):
        super().__init__()
        options = options or Options()
        self.delay = options.delay
        self.frames_left = options.iterations
        self.view = replace(options.view)        # the keys change it: a copy of the options'

        self.sample: Sample | None = None
        self.history = CpuHistory()
        self.clock: dict = {}
        self.prompting: str | None = None
        self._timer = None
        self.service_down = False

    def compose(self) -> ComposeResult:
        yield Summary(id="summary")
        yield DomainTable(id="domains")
        with Horizontal(id="prompt"):
            yield Label("", id="prompt-label")
            yield Input(id="prompt-input")
        yield Static("", id="status")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.query_one(KeyBar).update_from(self.view)
        self.query_one(DomainTable).focus()
        self._timer = self.set_interval(self.delay, self.fetch, pause=True)

    def on_screen_resume(self) -> None:
        # Shown, first or again once the screen above it has gone: fresh
        # figures at once, then every delay.
        self._timer.resume()
        self.fetch()

    def on_screen_suspend(self) -> None:
        # Another screen is on top: nothing here is seen until it goes.
        self._timer.pause()

    # ------------------------------------------------------------ data
    @work(thread=True, exclusive=True, group="fetch", exit_on_error=False)
    def fetch(self) -> None:
        try:
            self.post_message(Fetched(self.app.source.call("top", vcpus=self.view.vcpus)))
        except XlError as e:
            self.post_message(Fetched(None, str(e)))

    def on_fetched(self, message: Fetched) -> None:
        if message.node is None:
            self.say(f"the host service: {message.error}")
            self.service_down = True
            return
        if self.service_down:
            self.say("")                # it answers again
            self.service_down = False
        self.clock = message.node["clock"]
        self.sample = Sample(message.node, self.sample)
        self.history.add(self.sample)
        self.show()
        if self.frames_left is not None:
            self.frames_left -= 1
            if not self.frames_left:
                self.app.exit(0)

    def show(self) -> None:
        """Render what was fetched last as the view now asks."""
        if self.sample is None:
            return
        self.query_one(Summary).update_from(self.sample, self.view, self.clock, self.delay)
        sample, history = self.sample, self.history
        self.query_one(DomainTable).update(table(sample, self.view),
                                           lambda domid: history.sparkline(sample.by_id[domid]))
        self.query_one(KeyBar).update_from(self.view)

    def say(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    @property
    def selected(self) -> dict | None:
        domid = self.query_one(DomainTable).selected
        if self.sample is None or domid is None:
            return None
        return self.sample.by_id.get(domid)

    # ------------------------------------------------------------ xentop's keys
    def action_toggle(self, setting: str) -> None:
        setattr(self.view, setting, not getattr(self.view, setting))
        self.show()
        if setting == "vcpus" and self.view.vcpus:
            self.fetch()            # each vCPU's figures come only when asked for

    def action_sort(self) -> None:
        self.view.sort_field = (self.view.sort_field + 1) % len(FIELDS)
        self.show()

    def action_quit(self) -> None:
        self.app.exit(0)

    def action_escape(self) -> None:
        if self.prompting:
            self.end_prompt()
        else:
            self.app.exit(0)

    def action_prompt(self, what: str) -> None:
        self.prompting = what
        self.query_one("#prompt-label", Label).update(f"{self.PROMPTS[what]}: ")
        field = self.query_one("#prompt-input", Input)
        field.value = self.view.filter if what == "filter" else ""
        self.query_one("#prompt").add_class("shown")
        field.focus()

    def end_prompt(self) -> None:
        self.prompting = None
        self.query_one("#prompt").remove_class("shown")
        self.query_one(DomainTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        what, value = self.prompting, event.value.strip()
        self.end_prompt()
        if what == "delay":
            try:
                self.delay = parse_delay(value)
            except UsageError as e:
                self.say(str(e))
                return
            self._timer.stop()
            self._timer = self.set_interval(self.delay, self.fetch)
            self.say(f"updating every {self.delay:g} s")
        elif what == "filter":
            self.view.filter = value
        self.show()

    # ------------------------------------------------------------ actions
    def action_act(self) -> None:
        d = self.selected
        if d is None:
            self.say("no domain selected")
            return
        from tui.screens.choice import ChoiceScreen
        from tui.screens.confirm import ConfirmScreen
        who = f"{d['name']} ({d['domid']})"

        def chosen(op: str | None) -> None:
            if op:
                self.app.push_screen(ConfirmScreen(f"{op.capitalize()} {who}?"),
                                     lambda yes: yes and self.run_action(op, d["domid"], who))
        self.app.push_screen(ChoiceScreen(f"Action on {who}",
                                          [(op, op) for op in ACTIONS]), chosen)

    @work(thread=True, group="act", exit_on_error=False)
    def run_action(self, op: str, domid: int, who: str) -> None:
        try:
            self.app.source.call(op, domain=domid)
            self.post_message(Done(f"{who} {ACTIONS[op]}"))
        except XlError as e:
            self.post_message(Done(f"{op} {who}: {e}"))

    def action_create(self) -> None:
        from tui.screens.choice import ChoiceScreen
        examples = list_examples()
        if not examples:
            self.say("no example domains to create from")
            return

        def chosen(name: str | None) -> None:
            if name:
                path = next(p for p in examples if p.name == name)
                try:
                    config, warnings = read_config(path)
                except ExampleError as e:
                    self.say(str(e))
                    return
                self.run_create(config, name, warnings)
        self.app.push_screen(ChoiceScreen("Create a domain from examples/domains/",
                                          [(p.name, p.name) for p in examples]), chosen)

    @work(thread=True, group="act", exit_on_error=False)
    def run_create(self, config: dict, name: str, warnings: list[str]) -> None:
        try:
            made = self.app.source.call("create", config=config)
            said = f"created {made['name']} (domain {made['domid']}) from {name}"
        except XlError as e:
            said = f"creating from {name}: {e}"
        self.post_message(Done("; ".join([said, *warnings])))

    def on_done(self, message: Done) -> None:
        self.say(message.text)
        self.fetch()

    # ------------------------------------------------------------ other screens
    def action_open(self, which: str) -> None:
        d = self.selected
        if which != "xenstore" and d is None:
            self.say("no domain selected")
            return
        name = {"domain": "DomainScreen", "xenstore": "XenstoreScreen",
                "console": "ConsoleScreen", "trace": "TraceScreen"}[which]
        module = f"tui.screens.{which}"
        try:
            screen_class = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            self.say(f"no {which} screen in this build")
            return
        self.app.push_screen(screen_class() if which == "xenstore" else screen_class(d["domid"]))
