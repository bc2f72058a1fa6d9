"""The scenario table (tests/xs_scenarios.py) held against Xen 4.17's own C
xenstored, so that every answer written there is the real daemon's (but for
the steps marked stale_errno, where any error is).

run_scenario() replays a scenario on any xenstored socket and returns its
normalised answers, one per step; compare() tells two such runs apart,
step by step:

    answers = run_scenario(socket_path, scenario)
    problems = compare(scenario.expected(), answers, scenario)
    assert not problems, problems

A scenario assumes a store holding only what a freshly started daemon holds
(/tool/xenstored): run_scenario first removes every other top-level node and
restores the default permissions of /, @introduceDomain and @releaseDomain.
"""

from __future__ import annotations

import difflib

import pytest

from hv.public.io.xs_wire import (
    XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR, XS_READ, XS_RESET_WATCHES, XS_RM, XS_SET_PERMS,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_WATCH, XS_WRITE,
)
from tests.xs_scenarios import (
    SCENARIOS, Answer, Normaliser, Scenario, Step, event_item, render, reply_item,
)
from tests.xs_scenarios import stale_errno as stale_errno_rows
from tests.xswire import (
    ConnectionClosed, WireClient, nul_join, start_real_xenstored, stop_real_xenstored,
)

# What a freshly started C xenstored holds at the top level.
KEEP_AT_TOP = {"tool"}
NO_SUCH_TX = 0xFFFFFFFF


# ------------------------------------------------------------------ runner
def wipe(socket_path: str, timeout: float = 5.0) -> None:
    """Bring a daemon's store back to its start-up state, as far as the
    scenarios can tell."""
    with WireClient(socket_path, timeout) as c:
        # A daemon that cannot set these cannot have had them changed either.
        for path in ("/", "@introduceDomain", "@releaseDomain"):
            c.request(XS_SET_PERMS, nul_join(path, "n0"))
        top = c.request(XS_DIRECTORY, nul_join("/"))
        assert top.type == XS_DIRECTORY, f"cannot list /: {top}"
        for name in top.payload.split(b"\0")[:-1]:
            if name.decode() not in KEEP_AT_TOP:
                r = c.request(XS_RM, b"/" + name + b"\0")
                assert r.payload == b"OK\0", f"cannot remove /{name.decode()}: {r}"


class _Run:
    def __init__(self, socket_path: str, scenario: Scenario, timeout: float):
        self.scenario = scenario
        self.conns = [WireClient(socket_path, timeout) for _ in range(scenario.conns)]
        self.state = ["open"] * len(self.conns)
        self.tx_ids: dict[str, int] = {}
        self.open_tx: list[set[int]] = [set() for _ in self.conns]
        self.norm = Normaliser()
        self.auto_tx = 0

    def close(self) -> None:
        for c in self.conns:
            c.close()

    def _lost(self, k: int, how: str) -> None:
        self.state[k] = how
        self.open_tx[k].clear()
        self.conns[k].close()

    def _event(self, k: int, msg, items: list) -> None:
        items.append(event_item(k, msg.payload))
        if msg.req_id or msg.tx_id:
            items.append(("BAD_ECHO", f"event with req_id {msg.req_id} tx_id {msg.tx_id}"))

    def _sync(self, k: int, items: list) -> None:
        """Collect the events queued for connection k so far: READ / is
        answered after them."""
        if self.state[k] != "open":
            return
        c = self.conns[k]
        try:
            rid = c.send(XS_READ, b"/\0")
            while True:
                msg = c.recv()
                if msg.is_event:
                    self._event(k, msg, items)
                elif msg.req_id == rid:
                    return
                else:
                    items.append(("STRAY_REPLY", k, *reply_item(msg.type, msg.payload)))
        except ConnectionClosed:
            items.append(("CLOSED", k))
            self._lost(k, "closed")
        except TimeoutError:
            items.append(("NO_REPLY", k))
            self._lost(k, "abandoned")

    def step(self, step: Step) -> Answer:
        req = step.req
        k = req.conn
        items: list = []
        if isinstance(req.tx, str):
            tx_id = self.tx_ids.get(req.tx)
            if tx_id is None:
                items.append(("UNBOUND_TX", req.tx))
                tx_id = NO_SUCH_TX
        else:
            tx_id = req.tx
        if self.state[k] != "open":
            items.append(("CLOSED",) if self.state[k] == "closed" else ("ABANDONED",))
        else:
            self._request(k, req, tx_id, items)
        for j in [k] + [j for j in range(len(self.conns)) if j != k]:
            self._sync(j, items)
        return tuple(items)

    def _request(self, k: int, req, tx_id: int, items: list) -> None:
        c = self.conns[k]
        try:
            rid = c.send(req.op, req.payload, tx_id)
            while True:
                msg = c.recv()
                if msg.is_event:
                    self._event(k, msg, items)
                    continue
                break
        except ConnectionClosed:
            items.append(("CLOSED",))
            self._lost(k, "closed")
            return
        except TimeoutError:
            items.append(("NO_REPLY",))
            self._lost(k, "abandoned")
            return
        item = reply_item(msg.type, msg.payload)
        if msg.type == XS_TRANSACTION_START and req.op == XS_TRANSACTION_START:
            name = req.start
            if name is None:
                self.auto_tx += 1
                name = f"T{self.auto_tx}"
            item, new_id = self.norm.tx_reply(item, name, self.open_tx[k])
            if new_id is not None:
                self.tx_ids[name] = new_id
                self.open_tx[k].add(new_id)
        elif msg.type == XS_DIRECTORY_PART:
            item = self.norm.directory_part(item)
        if req.op == XS_TRANSACTION_END and not (
                msg.type == XS_ERROR and msg.payload in (b"EINVAL\0", b"ENOENT\0")):
            self.open_tx[k].discard(tx_id)
        if req.op == XS_RESET_WATCHES and msg.type == XS_RESET_WATCHES:
            self.open_tx[k].clear()
        items.append(item)
        if msg.req_id != rid or msg.tx_id != tx_id:
            items.append(("BAD_ECHO", f"sent req_id {rid} tx_id {tx_id}, "
                                      f"reply has req_id {msg.req_id} tx_id {msg.tx_id}"))


def run_scenario(socket_path: str, scenario: Scenario, timeout: float = 5.0) -> list[Answer]:
    """Replay `scenario` on the xenstored listening at socket_path; one
    normalised answer per step (see tests/xs_scenarios.py for their form)."""
    wipe(socket_path, timeout)
    run = _Run(socket_path, scenario, timeout)
    try:
        return [run.step(step) for step in scenario.steps]
    finally:
        run.close()


# --------------------------------------------------------------- comparing
def _one_error(answer: Answer) -> bool:
    return len(answer) == 1 and answer[0][0] == "ERROR" and len(answer[0]) == 3 and answer[0][2] == ""


def compare(real: list[Answer], ours: list[Answer], scenario: Scenario, strict: bool = False,
            labels: tuple[str, str] = ("real", "ours")) -> str:
    """'' when the two runs agree, else a readable account of each step they
    disagree on.  Steps marked knows_domains may differ unless strict; steps
    marked stale_errno match as long as both answers are an error."""
    out: list[str] = []
    for i, step in enumerate(scenario.steps):
        a = real[i] if i < len(real) else ("<no answer>",)
        b = ours[i] if i < len(ours) else ("<no answer>",)
        if a == b or (step.knows_domains and not strict):
            continue
        if step.stale_errno and _one_error(a) and _one_error(b):
            continue
        out.append(f"  step {i}: {step.req.describe()}")
        ra = [render(x) for x in a] if a and isinstance(a[0], tuple) else [str(a)]
        rb = [render(x) for x in b] if b and isinstance(b[0], tuple) else [str(b)]
        for line in difflib.ndiff(ra, rb):
            tag = {"-": f"{labels[0]:>6}", "+": f"{labels[1]:>6}", " ": "  both"}.get(line[0])
            if tag:
                out.append(f"    {tag}  {line[2:]}")
    if len(real) != len(ours):
        out.append(f"  {labels[0]} has {len(real)} answers, {labels[1]} {len(ours)}")
    if not out:
        return ""
    return f"scenario {scenario.name} ({scenario.doc}):\n" + "\n".join(out)


# ------------------------------------------------------------------- tests
class _Daemon:
    """One real daemon for the module, started again should a scenario kill
    it, so that one crash fails one test rather than all that follow."""

    def __init__(self, tmp_path_factory):
        self.factory = tmp_path_factory
        self.proc = None
        self.path = ""

    def socket(self) -> str:
        if self.proc is None or self.proc.poll() is not None:
            self.proc, self.path = start_real_xenstored(self.factory.mktemp("xenstored"))
        return self.path

    def stop(self) -> None:
        if self.proc is not None:
            stop_real_xenstored(self.proc)


@pytest.fixture(scope="module")
def _daemon(tmp_path_factory):
    daemon = _Daemon(tmp_path_factory)
    yield daemon
    daemon.stop()


@pytest.fixture
def xenstored(_daemon):
    path = _daemon.socket()
    yield path
    if _daemon.proc.poll() is not None:
        pytest.fail(f"xenstored died during the test (status {_daemon.proc.returncode})",
                    pytrace=False)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_real_xenstored_answers_as_the_table_says(xenstored, scenario):
    got = run_scenario(xenstored, scenario)
    problems = compare(scenario.expected(), got, scenario, strict=True,
                       labels=("table", "C xsd"))
    if problems:
        pytest.fail(problems, pytrace=False)


def test_scenarios_do_not_depend_on_what_ran_before(xenstored):
    """Replayed backwards on the same daemon, every scenario answers the same:
    the wipe works and the normaliser hides what accumulates (transaction
    ids, generation counts)."""
    problems = []
    for scenario in reversed(SCENARIOS):
        diff = compare(scenario.expected(), run_scenario(xenstored, scenario), scenario,
                       strict=True, labels=("table", "C xsd"))
        if diff:
            problems.append(diff)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_client_keeps_events_met_while_waiting_for_a_reply(xenstored):
    wipe(xenstored)
    with WireClient(xenstored) as a, WireClient(xenstored) as b:
        assert a.request(XS_WATCH, nul_join("/ev", "tok")).payload == b"OK\0"
        first = a.wait_event(timeout=5)
        assert (first.payload, first.req_id, first.tx_id) == (b"/ev\0tok\0", 0, 0)
        assert b.request(XS_WRITE, b"/ev/x\0v").payload == b"OK\0"
        got = a.wait_event(timeout=5)
        assert got is not None and got.payload == b"/ev/x\0tok\0"
        assert a.wait_event(timeout=0.2) is None
        # Our own write: its event comes before its acknowledgement.
        assert a.request(XS_WRITE, b"/ev/y\0v").payload == b"OK\0"
        assert [e.payload for e in a.events] == [b"/ev/y\0tok\0"]
        assert a.wait_event(timeout=0).payload == b"/ev/y\0tok\0"
        assert a.events == []


def test_transaction_reply_echoes_ids(xenstored):
    wipe(xenstored)
    with WireClient(xenstored) as c:
        rid = c.send(XS_TRANSACTION_START, b"\0", req_id=0xDEADBEEF)
        r = c.reply_to(rid)
        assert (r.type, r.req_id, r.tx_id) == (XS_TRANSACTION_START, 0xDEADBEEF, 0)
        tx = int(r.payload.rstrip(b"\0"))
        r = c.request(XS_TRANSACTION_END, b"F\0", tx_id=tx)
        assert (r.payload, r.tx_id) == (b"OK\0", tx)


# ----------------------------------------------- the comparison, on its own
def _toy() -> Scenario:
    from tests.xs_scenarios import err, is_introduced, ok, scenario, strings, write
    return scenario(
        "toy", "two steps",
        (write("/a", "v"), ok("WRITE")),
        (is_introduced(5, knows_domains=True), strings("IS_DOMAIN_INTRODUCED", "F")),
        (write("/b", "v"), err("EINVAL")),
    )


def test_compare_is_silent_when_runs_agree():
    toy = _toy()
    assert compare(toy.expected(), toy.expected(), toy) == ""


def test_compare_tolerates_domain_dependent_steps_unless_strict():
    toy = _toy()
    ours = toy.expected()
    ours[1] = (("IS_DOMAIN_INTRODUCED", "T", ""),)
    assert compare(toy.expected(), ours, toy) == ""
    diff = compare(toy.expected(), ours, toy, strict=True)
    assert "step 1: IS_DOMAIN_INTRODUCED" in diff and "'F'" in diff and "'T'" in diff


def test_compare_names_the_step_and_both_answers():
    toy = _toy()
    ours = toy.expected()
    ours[2] = (("WRITE", "OK", ""), ("EVENT", 1, "/b", "t", ""))
    diff = compare(toy.expected(), ours, toy)
    assert diff.startswith("scenario toy (two steps):")
    assert "step 2: WRITE b'/b\\x00v'" in diff
    assert "real  ERROR | 'EINVAL' | ''" in diff
    assert "ours  WRITE | 'OK' | ''" in diff
    assert "ours  EVENT on conn 1: '/b' | 't' | ''" in diff
    assert "step 0" not in diff


def test_compare_takes_any_error_for_a_stale_errno_step():
    from tests.xs_scenarios import err, raw, scenario
    toy = scenario("stale", "one step", *stale_errno_rows(raw(XS_READ, b"")))
    real = toy.expected()
    real[1] = (err("ENOENT"),)
    assert compare(toy.expected(), real, toy, strict=True) == ""
    ours = toy.expected()
    ours[1] = (("READ", ""),)
    assert "step 1: READ b''" in compare(real, ours, toy)


def test_normaliser_maps_ids_and_generations_to_names():
    from tests.xs_scenarios import Normaliser
    n = Normaliser()
    assert n.tx_reply(("TRANSACTION_START", "17", ""), "t", set()) == (("TRANSACTION_START", "t", ""), 17)
    # 0 is "no transaction", and an id still open cannot be handed out again.
    assert n.tx_reply(("TRANSACTION_START", "0", ""), "t", set())[1] is None
    assert n.tx_reply(("TRANSACTION_START", "17", ""), "u", {17})[1] is None
    assert n.tx_reply(("TRANSACTION_START", "x", ""), "u", set())[1] is None
    assert n.directory_part(("DIRECTORY_PART", "900", "a", "", "")) == ("DIRECTORY_PART", "G1", "a", "", "")
    assert n.directory_part(("DIRECTORY_PART", "905", "", "")) == ("DIRECTORY_PART", "G2", "", "")
    assert n.directory_part(("DIRECTORY_PART", "900", "", "")) == ("DIRECTORY_PART", "G1", "", "")
