"""`xl top` on a frozen host that nothing here changes: the service's
`top` answer against what `xl list` says, the batch mode's text, the
options, every xentop key of the main screen, snapshots of its views, a
check that neither the dashboard nor its batch mode loads hv/, and the
real command in a real terminal under tmux."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui_host import XL, xl
from tests.tui_pilot import drive, first_frame, top_app, until
from tui.source import Source
from tui.xentop import HISTORY, FIELDS

HEADER = ("      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
          "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID")
NAMES = ["Domain-0", "ping-b", "ping-a", "disk-writer", "vtpm-pcr", "minimal"]


def top_answer(home) -> dict:
    source = Source(str(home))
    try:
        return source.call("top")
    finally:
        source.close()


def listed(home) -> dict[str, dict]:
    return {d["name"]: d for d in json.loads(xl(home, "list", "--json").stdout)}


def columns(row: str) -> list[str]:
    return row.split()


# ---------------------------------------------------------------- the service op

def test_the_top_answer_agrees_with_xl_list_and_leaves_no_trace(frozen_home):
    trace_before = xl(frozen_home, "trace", "-n", "5").stdout
    answer = top_answer(frozen_home)
    again = top_answer(frozen_home)
    assert xl(frozen_home, "trace", "-n", "5").stdout == trace_before
    assert answer == again                          # frozen: the same machine
    rows = listed(frozen_home)
    assert [d["name"] for d in answer["domains"]] == NAMES
    order = "rbps-d"
    for d in answer["domains"]:
        row = rows[d["name"]]
        assert d["domid"] == row["domid"]
        assert d["cur_mem"] // (1 << 20) == row["mem_mib"]
        assert sum(v["online"] for v in d["vcpus"]) == row["vcpus"] == d["num_vcpus"]
        assert d["cpu_ns"] / 1e9 == pytest.approx(row["cpu_time_s"])
        letters = row["state"]
        for i, name in enumerate(("running", "blocked", "paused", "shutdown")):
            assert d[name] == (letters[i] == order[i]), (d["name"], name)
    by_name = {d["name"]: d for d in answer["domains"]}
    for name in ("ping-a", "ping-b"):
        (net,) = by_name[name]["networks"]
        assert net["rpackets"] > 0 and net["tpackets"] > 0   # they pinged each other
    (vbd,) = by_name["disk-writer"]["vbds"]
    assert vbd["dev"] == 51712 and vbd["wr_reqs"] > 0 and vbd["wr_sects"] >= 8 * vbd["wr_reqs"]
    status = json.loads(xl(frozen_home, "host", "status", "--json").stdout)
    assert answer["cpus"] == status["cpus"] and answer["tot_mem"] == status["memory_bytes"]
    assert answer["clock"]["frozen"] and len(answer["pcpu_idle_ns"]) == answer["cpus"]
    assert answer["time_of_day"] == xl(frozen_home, "uptime", "-s").stdout.split()[0]


# ---------------------------------------------------------------- batch mode

def test_batch_prints_xentops_table_each_iteration(frozen_home):
    got = xl(frozen_home, "top", "-b", "-i", "2", "-d", "0.1")
    assert got.returncode == 0 and got.stderr == ""
    lines = got.stdout.splitlines()
    assert lines[0] == HEADER and lines.count(HEADER) == 2 and len(lines) == 2 * (1 + len(NAMES))
    first, second = lines[1:7], lines[8:14]
    assert first == second                              # a frozen clock: the same figures
    answer = {d["name"]: d for d in top_answer(frozen_home)["domains"]}
    # Sorted by name as strcasecmp orders them; names cut to ten columns.
    assert [columns(r)[0] for r in first] == [n[:10] for n in sorted(answer, key=str.lower)]
    ends = [m.end() for m in re.finditer(r"\S+", HEADER)]
    for row in first:
        assert len(row) == len(HEADER)
        assert [m.end() for m in re.finditer(r"\S+", row)] == ends   # right-aligned as the header
        name = next(n for n in answer if n[:10] == columns(row)[0])
        d = answer[name]
        c = columns(row)
        assert c[1] == "".join(ch if d[s] else "-" for s, ch in (
            ("dying", "d"), ("shutdown", "s"), ("blocked", "b"), ("crashed", "c"),
            ("paused", "p"), ("running", "r")))
        assert int(c[2]) == d["cpu_ns"] // 10**9 and c[3] == "0.0"
        assert int(c[4]) == d["cur_mem"] // 1024 and int(c[6]) == d["max_mem"] // 1024
        assert int(c[8]) == d["num_vcpus"] and int(c[9]) == len(d["networks"])
        assert int(c[10]) == sum(n["tbytes"] for n in d["networks"]) // 1024
        assert int(c[12]) == len(d["vbds"])
        assert int(c[15]) == sum(v["wr_reqs"] for v in d["vbds"])
        assert int(c[17]) == sum(v["wr_sects"] for v in d["vbds"])


def test_batch_shows_vcpus_networks_vbds_and_pcpus_below_the_rows(frozen_home):
    got = xl(frozen_home, "top", "-bnxvpz", "--iterations=1", "--full-name")
    assert got.returncode == 0
    lines = got.stdout.splitlines()
    rows = [line for line in lines if re.match(r"\s*\S+ [-dsbcpr]{6} ", line)]
    assert columns(rows[0])[0] == "Domain-0"                    # -z: dom0 first
    assert "disk-writer" in [columns(r)[0] for r in rows]       # -f: names whole
    assert sum(line.startswith("VCPUs(sec): ") for line in lines) == len(NAMES)
    assert re.search(r"^VCPUs\(sec\):   0: +\d+s  1: +\d+s  2: +\d+s  3: +\d+s$", got.stdout, re.M)
    nets = [line for line in lines if line.startswith("Net0 RX: ")]
    assert len(nets) == 2
    assert re.fullmatch(r"Net0 RX: +\d+bytes +\d+pkts +0err +0drop  TX: +\d+bytes +\d+pkts +0err +0drop",
                        nets[0])
    (vbd,) = [line for line in lines if line.startswith("VBD ")]
    assert vbd.startswith("VBD BlkBack 51712 [ca: 0]  OO:        0   RD: ")
    at = lines.index("Physical CPU Usage:")
    assert lines[at - 1] == "" and lines[at + 1:at + 4] == ["+-------+--------+", "| Core  | Usage  |",
                                                            "+-------+--------+"]
    assert lines[at + 4:at + 8] == [f"| {cpu:<5d} |   0.0% |" for cpu in range(4)]


@pytest.mark.parametrize("args, says", [
    (["-q"], "option -q not recognized"),
    (["--bogus"], "option --bogus not recognized"),
    (["-d"], "option -d requires argument"),
    (["-d", "soon"], "the delay is a number of seconds from 0.1, not 'soon'"),
    (["-d", "0"], "the delay is a number of seconds from 0.1, not '0'"),
    (["-d", "1e-9"], "the delay is a number of seconds from 0.1, not '1e-9'"),
    (["-i", "0"], "the iterations are a whole number above 0, not '0'"),
    (["now"], "top takes options only, not 'now'"),
])
def test_a_bad_option_is_one_line_and_a_failure(frozen_home, args, says):
    got = xl(frozen_home, "top", *args, check=False)
    assert got.returncode == 1 and got.stdout == ""
    assert got.stderr.count("\n") == 1 and says in got.stderr and got.stderr.startswith("xl: ")


def test_help_and_a_missing_terminal(frozen_home):
    got = xl(frozen_home, "top", "-h")
    assert got.returncode == 0 and "-z, --dom0-first" in got.stdout and "-p, --pcpus" in got.stdout
    got = xl(frozen_home, "top", check=False)          # stdout is a pipe here
    assert got.returncode == 1 and got.stderr == "xl: top needs a terminal; -b prints plain text instead\n"


def test_the_dashboard_and_its_batch_mode_load_nothing_of_hv(frozen_home):
    code = (
        "import sys\n"
        "import tui.app, tui.screens.top, tui.batch, tui.command\n"
        "from tui.command import top_command\n"
        f"top_command(['-b', '-i', '1', '-n', '-x', '-v', '-p'], {str(frozen_home)!r})\n"
        "print(sorted(m for m in sys.modules if m == 'hv' or m.startswith('hv.')))\n"
        "print('textual' in sys.modules)\n")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    *table, loaded, textual = got.stdout.splitlines()
    assert table[0] == HEADER and loaded == "[]" and textual == "True"
    batch = subprocess.run([sys.executable, "-c", "import sys\nfrom tui.command import top_command\n"
                            f"top_command(['-b', '-i', '1'], {str(frozen_home)!r})\n"
                            "print([m for m in sys.modules if m.startswith(('hv', 'textual'))])"],
                           capture_output=True, text=True, timeout=60)
    assert batch.returncode == 0 and batch.stdout.splitlines()[-1] == "[]"


# ---------------------------------------------------------------- xentop's keys

def table_texts(pilot) -> list[str]:
    return pilot.app.screen.query_one("#domains").texts


def test_n_b_v_show_the_lines_under_each_domain_in_either_case(frozen_home):
    async def script(pilot):
        screen = pilot.app.screen
        plain = table_texts(pilot)
        await pilot.press("n")
        assert screen.view.networks and sum(t.startswith("Net0 RX:") for t in table_texts(pilot)) == 2
        await pilot.press("N")
        assert table_texts(pilot) == plain
        await pilot.press("B")
        assert [t for t in table_texts(pilot) if t.startswith("VBD ")][0].startswith("VBD BlkBack 51712")
        await pilot.press("b", "v")                  # each vCPU's figures are fetched now
        await until(pilot, lambda: sum(t.startswith("VCPUs(sec):")
                                       for t in table_texts(pilot)) == len(NAMES))
        await pilot.press("V")
        assert table_texts(pilot) == plain
    drive(top_app(frozen_home), script)


def test_r_repeats_the_header_and_s_cycles_the_sort_column(frozen_home):
    async def script(pilot):
        screen = pilot.app.screen
        table = screen.query_one("#domains")
        await pilot.press("R")
        assert table_texts(pilot).count(table_texts(pilot)[0]) == len(NAMES)
        await pilot.press("r", "s")
        assert screen.view.sort_field == 1
        header = table_texts(pilot)[0]
        start, end = table._header.sort_span
        assert header[start:end].strip() == "STATE"
        # STATE puts the paused domain after the blocked ones (xentop's order).
        assert table_texts(pilot)[-1].split()[0] == "minimal"
        await pilot.press("S", "s")                           # CPU(%): its header bold now
        start, end = table._header.sort_span
        assert table_texts(pilot)[0][start:end].strip() == "CPU(%)"
        for _ in range(len(FIELDS) - 3):
            await pilot.press("s")
        assert screen.view.sort_field == 0
        assert "sorted by NAME" in str(screen.query_one("#summary").render())
    drive(top_app(frozen_home), script)


def test_arrows_move_the_selection_and_keep_it_in_view(frozen_home):
    async def script(pilot):
        table = pilot.app.screen.query_one("#domains")
        order = table.domids
        assert table.selected == order[0]
        await pilot.press("down", "down")
        assert table.selected == order[2]
        await pilot.press("up")
        assert table.selected == order[1]
        await pilot.press("end")
        assert table.selected == order[-1]
        await pilot.press("pageup")
        assert table.selected == order[0]
        await pilot.press("n", "b", "v")                      # a taller table: it scrolls
        await until(pilot, lambda: any(t.startswith("VCPUs") for t in table_texts(pilot)))
        await pilot.press("end")
        assert table.selected == order[-1] and table.scroll_y > 0
        await pilot.press("home")
        assert table.selected == order[0] and table.scroll_y == 0
    drive(top_app(frozen_home), script, size=(200, 16))


def test_left_and_right_scroll_a_table_wider_than_the_terminal(frozen_home):
    async def script(pilot):
        table = pilot.app.screen.query_one("#domains")
        await pilot.press("right", "right")
        assert table.scroll_x > 0
        await pilot.press("left", "left")
        assert table.scroll_x == 0
    drive(top_app(frozen_home), script, size=(120, 30))


def test_d_prompts_for_the_delay_and_esc_leaves_a_prompt(frozen_home):
    async def script(pilot):
        screen = pilot.app.screen
        await pilot.press("D")
        assert screen.prompting == "delay" and screen.query_one("#prompt").display
        await pilot.press("q", "escape")                  # typed into the prompt, then left
        assert pilot.app.is_running and screen.prompting is None and screen.delay == 3600
        await pilot.press("d", "2", ".", "5", "enter")
        assert screen.delay == 2.5 and "every 2.5 s" in str(screen.query_one("#summary").render())
        fetched = screen.sample
        await until(pilot, lambda: screen.sample is not fetched, timeout=10)   # the new delay runs
        await pilot.press("d", "x", "enter")
        assert screen.delay == 2.5
        assert "the delay is a number of seconds from 0.1" in str(screen.query_one("#status").render())
    drive(top_app(frozen_home), script)


def test_slash_filters_by_name(frozen_home):
    async def script(pilot):
        screen = pilot.app.screen
        await pilot.press("slash", *"PING", "enter")
        names = [t.split()[0] for t in table_texts(pilot)[1:]]
        assert names == ["ping-a", "ping-b"] and screen.view.filter == "PING"
        assert "names with 'PING'" in str(screen.query_one("#summary").render())
        assert "6 domains" in str(screen.query_one("#summary").render())  # the summary is all
        await pilot.press("slash", "backspace", "backspace", "backspace", "backspace", "enter")
        assert len(table_texts(pilot)) == 1 + len(NAMES)
    drive(top_app(frozen_home), script)


@pytest.mark.parametrize("keys", [["q"], ["Q"], ["escape"]])
def test_q_or_esc_quits(frozen_home, keys):
    app = top_app(frozen_home)

    async def script(pilot):
        await pilot.press(*keys)
        await pilot.pause()
        return pilot.app.is_running
    assert drive(app, script) is False and app.return_code == 0


def test_iterations_end_the_dashboard_too(frozen_home):
    app = top_app(frozen_home, iterations=1)

    async def script(pilot):
        await until(pilot, lambda: not pilot.app.is_running)
    drive(app, script)
    assert app.return_code == 0


# ---------------------------------------------------------------- snapshots

def snapshot_of(snap_compare, home, keys=(), size=(200, 30), **options):
    return snap_compare(top_app(home, **options), press=keys, terminal_size=size,
                        run_before=first_frame)


def test_snapshot_main_screen(frozen_home, snap_compare):
    assert snapshot_of(snap_compare, frozen_home)


def test_snapshot_networks(frozen_home, snap_compare):
    assert snapshot_of(snap_compare, frozen_home, ["n", "down"])


def test_snapshot_block_devices(frozen_home, snap_compare):
    assert snapshot_of(snap_compare, frozen_home, ["b", "down"])


def test_snapshot_vcpus(frozen_home, snap_compare):
    # Started as `xl top -v`: the V key fetches each vCPU's figures anew,
    # and a snapshot must not race that fetch (the pilot test presses V).
    assert snapshot_of(snap_compare, frozen_home, ["down"], vcpus=True)


# ---------------------------------------------------------------- a real terminal

class Terminal:
    """A real terminal: a tmux session of its own server, 200x50, running
    a command under a shell that writes the command's exit status to a
    file once it has ended (tmux itself does not always report it)."""

    def __init__(self, env: dict, status_file):
        self.env = {**env, "TERM": "xterm-256color"}
        self.tmux = ["tmux", "-L", f"xenlab-test-{os.getpid()}", "-f", "/dev/null"]
        self.status_file = status_file

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run([*self.tmux, *args], capture_output=True, text=True, env=self.env,
                              check=check).stdout

    def start(self, *argv: str) -> None:
        command = " ".join(f"'{arg}'" for arg in argv)
        self.run("new-session", "-d", "-x", "200", "-y", "50", "-s", "top",
                 f"{command}; echo $? > '{self.status_file}'")
        self.run("set-option", "-t", "top", "remain-on-exit", "on")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "top")

    def wait_for(self, predicate, what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{what} did not show:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "top", *keys)

    def exit_status(self, timeout: float = 20) -> str | None:
        """The command's exit status once it has ended and the pane with
        it (None if it has not, in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = self.run("display-message", "-p", "-t", "top", "#{pane_dead}").strip()
            if dead == "1" and self.status_file.exists():
                return self.status_file.read_text().strip()
            time.sleep(0.1)
        return None

    def close(self) -> None:
        self.run("kill-server", check=False)


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


@needs_tmux
def test_xl_top_in_a_real_terminal(frozen_home, tmp_path):
    term = Terminal({**os.environ, "XL_HOME": str(frozen_home)}, tmp_path / "status")
    try:
        term.start(XL, "top")
        screen = term.wait_for(lambda s: "VBD_WSECT" in s, "the table")
        assert all(f.header in screen for f in FIELDS)
        assert "xentop - 00:00:02   Xen 4.17.0-xenlab" in screen
        assert "6 domains: 0 running, 5 blocked, 1 paused, 0 crashed, 0 dying, 0 shutdown" in screen
        term.keys("N")
        term.wait_for(lambda s: s.count("Net0 RX:") == 2, "each vif's line")
        term.keys("q")
        assert term.exit_status() == "0", term.screen()
    finally:
        term.close()


@needs_tmux
def test_make_demo_shows_xl_top_on_a_terminal(tmp_path):
    demo = tmp_path / "demo"
    term = Terminal({**os.environ, "XENLAB_DEMO_HOME": str(demo)}, tmp_path / "status")
    try:
        term.start(sys.executable, "-m", "xl.demo")
        examples = [p.stem for p in sorted((Path(__file__).parent.parent / "examples" / "domains").iterdir())
                    if p.suffix in (".cfg", ".yaml", ".toml")]
        screen = term.wait_for(lambda s: "CPU(%) HISTORY" in s and "vtpm-pcr" in s, "xl top", 60)
        assert f"{len(examples) + 1} domains:" in screen
        # Each row: its CPU history (HISTORY wide), then xentop's columns.
        shown = {line[HISTORY + 1:].split()[0] for line in screen.splitlines()[5:]
                 if line[HISTORY + 1:].strip()}
        assert {name[:10] for name in examples} <= shown
        term.keys("q")
        assert term.exit_status() == "0", term.screen()
    finally:
        term.close()
        subprocess.run([XL, "host", "stop"], env={**os.environ, "XL_HOME": str(demo)},
                       capture_output=True)
