"""One domain laid open, and the stepper.

It shows what the service's domain_detail answers: the vCPUs with their
timelines, memory, event channels with their pending and mask bits, the
grant table, and every device's rings; asked again every second, and after
every key that changes something. What changed since the snapshot before
is lit (a ring index that moved, a pending bit that got set), and stays
lit until something else changes.

The keys drive the machine as `xl` does: F freezes or thaws the clock, P
pauses or unpauses the domain, space (or .) steps one operation of the
chosen vCPU (arrows or 0-9 choose) and shows the trace lines the step
produced, R asks for a stretch of virtual time and runs the frozen clock
on by it, + and - double and halve the clock's speed. Escape or q leaves."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input

from tui.widgets.domain_changes import changes, rates
from tui.widgets.domain_header import DomainHeader
from tui.widgets.duration_prompt import DurationPrompt
from tui.widgets.evtchns import EventChannelPanel
from tui.widgets.grants import GrantPanel
from tui.widgets.rings import DevicePanel
from tui.widgets.step_log import StepLog
from tui.widgets.vcpus import VcpuPanel
from xl.client import XlError

REFRESH_S = 1.0
# The clock's speed stays within what the service accepts.
MAX_SPEED = 1e6


class Pane(VerticalScroll, can_focus=False):
    """A scrolling pane the keys leave alone: arrows choose vCPUs here."""


class DomainScreen(Screen):
    CSS_PATH = "../styles/domain.tcss"
    # Nothing takes the keys but the screen itself (and the prompt, while asked).
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("escape,q", "leave", "Back"),
        Binding("space,full_stop", "step", "Step"),
        Binding("p,P", "pause", "Pause/unpause"),
        Binding("f,F", "freeze", "Freeze/thaw"),
        Binding("r,R", "run", "Run for"),
        Binding("plus", "speed(2)", "Faster"),
        Binding("minus", "speed(0.5)", "Slower"),
        Binding("up,left", "choose(-1)", "vCPU", show=False),
        Binding("down,right", "choose(1)", "vCPU", show=False),
        *[Binding(str(n), f"pick({n})", f"vCPU {n}", show=False) for n in range(10)],
        Binding("pageup", "scroll_grants(-1)", "Grants", show=False),
        Binding("pagedown", "scroll_grants(1)", "Grants", show=False),
    ]

    @dataclass
    class Loaded(Message):
        ticket: int
        detail: dict

    @dataclass
    class Stepped(Message):
        ticket: int
        vcpu: int
        lines: list
        detail: dict

    @dataclass
    class Acted(Message):
        ticket: int
        status: str
        detail: dict

    @dataclass
    class Failed(Message):
        reason: str

    def __init__(self, domid: int):
        super().__init__()
        self.domid = domid
        self.detail: dict | None = None
        self.earlier: dict | None = None       # the last snapshot at an earlier virtual time
        self.changed: frozenset = frozenset()
        self.selected = 0
        self.steps = 0
        self._order = threading.Lock()
        self._issued = 0
        self._applied = 0
        self._fetching = False

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield DomainHeader(id="domain-header")
        with Horizontal(id="domain-body"):
            with Vertical(id="domain-left"):
                yield Pane(VcpuPanel(id="vcpus"), id="vcpus-pane")
                yield Pane(EventChannelPanel(id="evtchns"), id="evtchns-pane")
                yield Pane(GrantPanel(id="grants"), id="grants-pane")
            with Vertical(id="domain-right"):
                yield Pane(DevicePanel(id="devices"), id="devices-pane")
                yield Pane(StepLog(id="step-log"), id="step-pane")
        yield DurationPrompt(id="run-prompt")
        yield Footer()

    def on_mount(self) -> None:
        for pane, title in (("#vcpus-pane", "vCPUs"), ("#evtchns-pane", "event channels"),
                            ("#grants-pane", "grant table"), ("#devices-pane", "devices and rings"),
                            ("#step-pane", "last step")):
            self.query_one(pane).border_title = title
        self.refresh_bindings()         # the footer shows the screen's keys, with nothing focused
        self.query_one(DomainHeader).set_status(f"reading domain {self.domid}...")
        self.refresh_detail()
        self.set_interval(REFRESH_S, self.refresh_detail)

    # ------------------------------------------------------------ talking to the service
    def _call(self, *requests: tuple[str, dict]) -> tuple[int, list]:
        """Requests made back to back, none of anyone else's between them,
        and a ticket saying in which order their answers were had."""
        with self._order:
            self._issued += 1
            ticket = self._issued
            return ticket, [self.app.source.call(op, **args) for op, args in requests]

    def _detail_request(self) -> tuple[str, dict]:
        return "domain_detail", {"domain": self.domid}

    def refresh_detail(self) -> None:
        if not self._fetching:
            self._fetching = True
            self.run_worker(self._fetch, thread=True, group="domain-fetch")

    def _fetch(self) -> None:
        try:
            ticket, (detail,) = self._call(self._detail_request())
            self.post_message(self.Loaded(ticket, detail))
        except XlError as e:
            self.post_message(self.Failed(str(e)))
        finally:
            self._fetching = False

    def _act(self, status: str, *requests: tuple[str, dict]) -> None:
        """Change something, then read the domain again."""
        def work() -> None:
            try:
                self._call(*requests)
            except XlError as e:
                self.post_message(self.Failed(str(e)))
                return
            # The change was made: say so even if the domain can't be read
            # again (it may be gone).
            try:
                ticket, (detail,) = self._call(self._detail_request())
                self.post_message(self.Acted(ticket, status, detail))
            except XlError as e:
                self.post_message(self.Failed(f"{status}; the domain: {e}"))
        self.run_worker(work, thread=True, group="domain-act")

    # ------------------------------------------------------------ answers
    def _fresh(self, ticket: int) -> bool:
        if ticket < self._applied:
            return False            # overtaken by a later answer
        self._applied = ticket
        return True

    def _show(self, detail: dict, lit: frozenset | None = None) -> None:
        """Show a snapshot. ``lit`` is what to light; by default what
        differs from the snapshot before, or, when nothing does, what was
        lit already."""
        before = self.detail
        if lit is None:
            lit = changes(before, detail) or self.changed
        if before is not None and detail["now_ns"] > before["now_ns"]:
            self.earlier = before
        self.detail, self.changed = detail, lit
        self.selected = min(self.selected, max(len(detail["vcpus"]) - 1, 0))
        self.query_one(DomainHeader).update_detail(detail, lit, self.selected)
        self.query_one(VcpuPanel).update_detail(detail, lit, self.selected)
        self.query_one(EventChannelPanel).update_detail(detail, lit)
        self.query_one(GrantPanel).update_detail(detail, lit)
        self.query_one(DevicePanel).update_detail(detail, lit, rates(self.earlier, detail))

    def on_domain_screen_loaded(self, message: Loaded) -> None:
        if self._fresh(message.ticket):
            if self.detail is None:
                self.query_one(DomainHeader).set_status("")
            self._show(message.detail)

    def on_domain_screen_stepped(self, message: Stepped) -> None:
        if not self._fresh(message.ticket):
            return
        self.steps += 1
        # A step lights what it changed, and nothing if it changed nothing.
        self._show(message.detail, changes(self.detail, message.detail))
        self.query_one(StepLog).show(
            f"step {self.steps}: vCPU {message.vcpu}, {len(message.lines)} trace lines",
            message.lines)
        self.query_one(DomainHeader).set_status(f"stepped d{self.domid}v{message.vcpu}")

    def on_domain_screen_acted(self, message: Acted) -> None:
        if self._fresh(message.ticket):
            self._show(message.detail)
            self.query_one(DomainHeader).set_status(message.status)

    def on_domain_screen_failed(self, message: Failed) -> None:
        self.query_one(DomainHeader).set_status(message.reason, error=True)

    # ------------------------------------------------------------ keys
    def action_leave(self) -> None:
        self.dismiss()

    def action_step(self) -> None:
        vcpu = self.selected

        def work() -> None:
            try:
                ticket, (lines, detail) = self._call(
                    ("step", {"domain": self.domid, "count": 1, "vcpu": vcpu}),
                    self._detail_request())
                self.post_message(self.Stepped(ticket, vcpu, lines, detail))
            except XlError as e:
                self.post_message(self.Failed(str(e)))
        self.run_worker(work, thread=True, group="domain-act")

    def action_pause(self) -> None:
        if self.detail is None:
            return
        op = "unpause" if self.detail["paused"] else "pause"
        self._act(f"{op}d d{self.domid}", (op, {"domain": self.domid}))

    def action_freeze(self) -> None:
        if self.detail is None:
            return
        action = "thaw" if self.detail["clock"]["frozen"] else "freeze"
        self._act(f"clock {'thawed' if action == 'thaw' else 'frozen'}",
                  ("clock", {"action": action}))

    def action_speed(self, factor: float) -> None:
        if self.detail is None:
            return
        speed = self.detail["clock"]["speed"] * factor
        if not 0 < speed <= MAX_SPEED:
            self.query_one(DomainHeader).set_status(f"the speed stays at {speed / factor:g}x",
                                                    error=True)
            return
        self._act(f"speed {speed:g}x", ("clock", {"action": "speed", "value": speed}))

    def action_run(self) -> None:
        prompt = self.query_one(DurationPrompt)
        prompt.value = ""
        prompt.display = True
        prompt.focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        self._close_prompt()
        self._act(f"ran {message.value.strip()} of virtual time",
                  ("clock", {"action": "run", "value": message.value.strip()}))

    def on_duration_prompt_cancelled(self, message: DurationPrompt.Cancelled) -> None:
        self._close_prompt()

    def _close_prompt(self) -> None:
        prompt = self.query_one(DurationPrompt)
        prompt.display = False
        self.set_focus(None)

    def action_choose(self, delta: int) -> None:
        if self.detail is not None:
            self._select((self.selected + delta) % max(len(self.detail["vcpus"]), 1))

    def action_pick(self, vcpu: int) -> None:
        if self.detail is None:
            return
        if vcpu >= len(self.detail["vcpus"]):
            self.query_one(DomainHeader).set_status(
                f"d{self.domid} has {len(self.detail['vcpus'])} vCPUs", error=True)
            return
        self._select(vcpu)

    def _select(self, vcpu: int) -> None:
        self.selected = vcpu
        self._show(self.detail, self.changed)

    def action_scroll_grants(self, pages: int) -> None:
        pane = self.query_one("#grants-pane", Pane)
        pane.scroll_to(y=pane.scroll_y + pages * max(pane.size.height - 2, 1), animate=False)
