"""xentop's screen as text (tools/xentop/xentop.c): the summary lines, the
nineteen fields with their headers, widths, formats and sort orders, and
the lines a domain gets for its vCPUs, networks and block devices; the
-p table of pCPUs. Built from the service's `top` answers (libxenstat's
node) and shared by the batch mode and the dashboard. Plain Python.

Rates are per virtual second between two answers. When no virtual time
passed between them (a frozen clock) there is no new rate to give, and
the last one stands."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

# xentop's state letters, in its order: dying, shutdown, blocked, crashed,
# paused, running.
STATES = (("dying", "d"), ("shutdown", "s"), ("blocked", "b"), ("crashed", "c"),
          ("paused", "p"), ("running", "r"))
HISTORY = 20
SPARK = "▁▂▃▄▅▆▇█"


class Sample:
    """One node and what it takes the one before to know: each domain's
    CPU% and each pCPU's use over the virtual time between them."""

    def __init__(self, node: dict, prev: "Sample | None" = None):
        self.node = node
        self.domains: list[dict] = node["domains"]
        self.by_id = {d["domid"]: d for d in self.domains}
        for d in self.domains:
            d["totals"] = totals(d)
        self.cpu_pct: dict[int, float] = {}
        self.pcpu_pct: list[float] = [0.0] * len(node.get("pcpu_idle_ns", ()))
        if prev is None:
            self.cpu_pct = {d["domid"]: 0.0 for d in self.domains}
            return
        elapsed = node["now_ns"] - prev.node["now_ns"]
        for d in self.domains:
            old = prev.by_id.get(d["domid"])
            if old is None:
                self.cpu_pct[d["domid"]] = 0.0
            elif elapsed > 0:
                self.cpu_pct[d["domid"]] = (d["cpu_ns"] - old["cpu_ns"]) * 100.0 / elapsed
            else:
                self.cpu_pct[d["domid"]] = prev.cpu_pct.get(d["domid"], 0.0)
        idle, old_idle = node.get("pcpu_idle_ns", []), prev.node.get("pcpu_idle_ns", [])
        for cpu, now_idle in enumerate(idle):
            if elapsed > 0 and cpu < len(old_idle):
                usage = 100.0 * (1.0 - (now_idle - old_idle[cpu]) / elapsed)
                self.pcpu_pct[cpu] = min(100.0, max(0.0, usage))
            elif cpu < len(prev.pcpu_pct):
                self.pcpu_pct[cpu] = prev.pcpu_pct[cpu]


def state_letters(d: dict) -> str:
    return "".join(letter if d[name] else "-" for name, letter in STATES)


def state_name(d: dict, order=("running", "blocked", "paused", "shutdown", "crashed", "dying")) -> str:
    """The one state a domain is counted in: the first it is of the
    summary's order."""
    for name in order:
        if d[name]:
            return name
    return "none"


def colour_state(d: dict) -> str:
    """The state a domain's line is coloured by: the one that most wants
    seeing (a paused domain whose vCPU is blocked is paused here)."""
    return state_name(d, ("crashed", "dying", "shutdown", "paused", "running", "blocked"))


VBD_TOTALS = (("oo", "oo_reqs"), ("rd", "rd_reqs"), ("wr", "wr_reqs"), ("rsect", "rd_sects"),
              ("wsect", "wr_sects"))


def totals(d: dict) -> dict:
    """What the columns add up over a domain's devices: tot_net_bytes()
    each way, and tot_vbd_reqs() over the vbds read without error (None
    when every one failed; a domain with none shows 0)."""
    tx = rx = 0
    for n in d["networks"]:
        tx += n["tbytes"]
        rx += n["rbytes"]
    out = {"tx": tx, "rx": rx, "oo": 0, "rd": 0, "wr": 0, "rsect": 0, "wsect": 0}
    good = [v for v in d["vbds"] if not v["error"]]
    if d["vbds"] and not good:
        out.update(dict.fromkeys(("oo", "rd", "wr", "rsect", "wsect")))
    for v in good:
        for name, key in VBD_TOTALS:
            out[name] += v[key]
    return out


@dataclass
class Field:
    header: str
    width: int
    sort_key: Callable[[dict, Sample], object]
    text: Callable[[dict, Sample, int], str]


def _vbd_field(header: str, name: str, width: int) -> Field:
    def text(d, s, w):
        total = d["totals"][name]
        return f"{'-':>{w}}" if total is None else f"{total:{w}d}"
    return Field(header, width, lambda d, s: -(d["totals"][name] or 0), text)


def _max_mem(d: dict) -> int:
    return (1 << 64) - 1 if d["max_mem"] is None else d["max_mem"]


def _name_text(d: dict, s: Sample, w: int) -> str:
    """%10.10s, or with -f %*s in a column as wide as the longest name."""
    return f"{d['name'][:w]:>{w}}"


FIELDS = [
    Field("NAME", 10, lambda d, s: d["name"].lower(), _name_text),
    Field("STATE", 6, lambda d, s: tuple(not d[n] for n, _ in STATES),
          lambda d, s, w: state_letters(d)),
    Field("CPU(sec)", 10, lambda d, s: -d["cpu_ns"], lambda d, s, w: f"{d['cpu_ns'] // 10**9:10d}"),
    Field("CPU(%)", 6, lambda d, s: -s.cpu_pct[d["domid"]],
          lambda d, s, w: f"{s.cpu_pct[d['domid']]:6.1f}"),
    Field("MEM(k)", 10, lambda d, s: -d["cur_mem"], lambda d, s, w: f"{d['cur_mem'] // 1024:10d}"),
    Field("MEM(%)", 6, lambda d, s: -d["cur_mem"],
          lambda d, s, w: f"{d['cur_mem'] / s.node['tot_mem'] * 100:6.1f}"),
    Field("MAXMEM(k)", 10, lambda d, s: -_max_mem(d),
          lambda d, s, w: f"{'no limit':>10}" if d["max_mem"] is None else f"{d['max_mem'] // 1024:10d}"),
    Field("MAXMEM(%)", 9, lambda d, s: -_max_mem(d),
          lambda d, s, w: f"{'n/a':>9}" if d["max_mem"] is None
          else f"{d['max_mem'] / s.node['tot_mem'] * 100:9.1f}"),
    Field("VCPUS", 5, lambda d, s: -d["num_vcpus"], lambda d, s, w: f"{d['num_vcpus']:5d}"),
    Field("NETS", 4, lambda d, s: -len(d["networks"]), lambda d, s, w: f"{len(d['networks']):4d}"),
    Field("NETTX(k)", 8, lambda d, s: -d["totals"]["tx"],
          lambda d, s, w: f"{d['totals']['tx'] // 1024:{w}d}"),
    Field("NETRX(k)", 8, lambda d, s: -d["totals"]["rx"],
          lambda d, s, w: f"{d['totals']['rx'] // 1024:{w}d}"),
    Field("VBDS", 4, lambda d, s: -len(d["vbds"]), lambda d, s, w: f"{len(d['vbds']):4d}"),
    _vbd_field("VBD_OO", "oo", 8),
    _vbd_field("VBD_RD", "rd", 8),
    _vbd_field("VBD_WR", "wr", 8),
    _vbd_field("VBD_RSECT", "rsect", 10),
    _vbd_field("VBD_WSECT", "wsect", 10),
    Field("SSID", 4, lambda d, s: d["ssid"], lambda d, s, w: f"{d['ssid']:4d}"),
]
NAME, NETTX, NETRX, VBD_RD, VBD_WR, VBD_RSECT, VBD_WSECT = 0, 10, 11, 14, 15, 16, 17


def field_widths(domains: list[dict], full_name: bool) -> list[int]:
    """reset_field_widths() and adjust_field_widths(): the counting
    columns widen to fit their largest figure, and with -f the name
    column to fit the longest name."""
    widths = [f.width for f in FIELDS]
    if not domains:
        return widths
    if full_name:
        widths[NAME] = max(widths[NAME], *(len(d["name"]) for d in domains))
    for i, name, scale in ((NETTX, "tx", 1024), (NETRX, "rx", 1024), (VBD_RD, "rd", 1),
                           (VBD_WR, "wr", 1), (VBD_RSECT, "rsect", 1), (VBD_WSECT, "wsect", 1)):
        largest = max((d["totals"][name] or 0) // scale for d in domains)
        widths[i] = max(widths[i], len(str(largest + 1)))
    return widths


def sort_domains(sample: Sample, sort_field: int, dom0_first: bool) -> list[dict]:
    """The domains in the order of the sort field (ties keep the id
    order); with -z, Domain-0 first, out of the sort."""
    domains = list(sample.domains)
    first = []
    if dom0_first:
        first = [d for d in domains if d["name"] == "Domain-0"][:1]
        domains = [d for d in domains if d not in first]
    key = FIELDS[sort_field].sort_key
    return first + sorted(domains, key=lambda d: key(d, sample))


def summary_lines(sample: Sample) -> list[str]:
    """do_summary(): the time and version; the domains by state (each
    counted once, the first of running, blocked, paused, shutdown,
    crashed, dying it is); memory; pCPUs."""
    node = sample.node
    counts = dict.fromkeys(("running", "blocked", "paused", "shutdown", "crashed", "dying"), 0)
    for d in sample.domains:
        name = state_name(d)
        if name in counts:
            counts[name] += 1
    used = node["tot_mem"] - node["free_mem"]
    return [
        f"xentop - {node['time_of_day']}   Xen {node['xen_version']}",
        f"{len(sample.domains)} domains: {counts['running']} running, {counts['blocked']} blocked, "
        f"{counts['paused']} paused, {counts['crashed']} crashed, {counts['dying']} dying, "
        f"{counts['shutdown']} shutdown ",
        f"Mem: {node['tot_mem'] // 1024}k total, {used // 1024}k used, {node['free_mem'] // 1024}k free"
        f"    CPUs: {node['cpus']} @ {node['cpu_hz'] // 1_000_000}MHz",
    ]


class Line:
    """One line of the table: what it is, the domain it belongs to, its
    state, where the sort column is in it (bold on the screen), and its
    text, made when first asked for: a screen asks only for the lines in
    view, however many domains there are."""

    __slots__ = ("kind", "domid", "state", "sort_span", "width", "_text", "_make")

    def __init__(self, kind: str, text: str | None = None, domid: int | None = None,
                 state: str = "", sort_span: tuple[int, int] | None = None,
                 make: Callable[[], str] | None = None, width: int | None = None):
        self.kind = kind                  # header, domain, vcpu, net, vbd, pcpu
        self.domid = domid
        self.state = state
        self.sort_span = sort_span
        self._text = text
        self._make = make
        self.width = len(text) if width is None else width

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._make()
        return self._text


@dataclass
class View:
    """What the interactive keys and the options choose."""
    sort_field: int = 0
    networks: bool = False
    vbds: bool = False
    vcpus: bool = False
    repeat_header: bool = False
    full_name: bool = False
    dom0_first: bool = False
    pcpus: bool = False
    filter: str = ""

    def shown(self, sample: Sample) -> list[dict]:
        domains = sort_domains(sample, self.sort_field, self.dom0_first)
        if self.filter:
            needle = self.filter.lower()
            domains = [d for d in domains if needle in d["name"].lower()]
        return domains


def _sort_span(widths: list[int], sort_field: int) -> tuple[int, int]:
    start = sum(widths[:sort_field]) + sort_field
    return start, start + widths[sort_field]


def header_line(widths: list[int], sort_field: int) -> Line:
    text = " ".join(f"{f.header:>{w}}" for f, w in zip(FIELDS, widths))
    return Line("header", text, sort_span=_sort_span(widths, sort_field))


def domain_text(d: dict, sample: Sample, widths: list[int]) -> str:
    """do_domain(): each field as xentop prints it, one space apart."""
    return " ".join(f.text(d, sample, w) for f, w in zip(FIELDS, widths))


def domain_line(d: dict, sample: Sample, widths: list[int], span: tuple[int, int]) -> Line:
    return Line("domain", domid=d["domid"], state=colour_state(d), sort_span=span,
                make=lambda: domain_text(d, sample, widths), width=sum(widths) + len(widths) - 1)


def vcpu_lines(d: dict) -> list[str]:
    """do_vcpu(): the online vCPUs' seconds, five to a line."""
    text = "VCPUs(sec): "
    for i, v in enumerate(d["vcpus"]):
        if v["online"]:
            if i and i % 5 == 0:
                text += "\n        "
            text += f" {i:2d}: {v['ns'] // 10**9:10d}s"
    return text.split("\n")


def network_lines(d: dict) -> list[str]:
    return [f"Net{i} RX: {n['rbytes']:8d}bytes {n['rpackets']:8d}pkts {n['rerrs']:8d}err "
            f"{n['rdrop']:8d}drop  TX: {n['tbytes']:8d}bytes {n['tpackets']:8d}pkts "
            f"{n['terrs']:8d}err {n['tdrop']:8d}drop" for i, n in enumerate(d["networks"])]


VBD_TYPES = ("Unidentified", "BlkBack", "BlkTap", "Tapdisk3")


def vbd_lines(d: dict) -> list[str]:
    """do_vbd(): with the device's major and minor as <linux/kdev_t.h>
    splits it."""
    lines = []
    for v in d["vbds"]:
        head = f"VBD {VBD_TYPES[v['type']]} {v['dev']:4d} [{v['dev'] >> 8:2x}:{v['dev'] & 0xff:2x}] "
        if v["error"]:
            lines.append(f"{head} OO: {'-':>8}   RD: {'-':>8}   WR: {'-':>8}   "
                         f"RSECT: {'-':>10}   WSECT: {'-':>10}")
        else:
            lines.append(f"{head} OO: {v['oo_reqs']:8d}   RD: {v['rd_reqs']:8d}   "
                         f"WR: {v['wr_reqs']:8d}   RSECT: {v['rd_sects']:10d}   "
                         f"WSECT: {v['wr_sects']:10d}")
    return lines


def pcpu_lines(sample: Sample) -> list[str]:
    """print_pcpu_stats_display(): each pCPU's use over the last interval."""
    rule = "+-------+--------+"
    return ["", "Physical CPU Usage:", rule, "| Core  | Usage  |", rule,
            *(f"| {cpu:<5d} | {pct:5.1f}% |" for cpu, pct in enumerate(sample.pcpu_pct)), rule]


def table(sample: Sample, view: View) -> list[Line]:
    """top()'s table: a header, then each domain and the lines under it;
    the header again before each domain with repeat-header; the pCPUs'
    table after them with -p."""
    domains = view.shown(sample)
    widths = field_widths(domains, view.full_name)
    header = header_line(widths, view.sort_field)
    lines: list[Line] = []
    for n, d in enumerate(domains):
        if n == 0 or view.repeat_header:
            lines.append(header)
        lines.append(domain_line(d, sample, widths, header.sort_span))
        if view.vcpus and d["vcpus"]:       # asked for only once the view is on
            lines += [Line("vcpu", t, d["domid"]) for t in vcpu_lines(d)]
        if view.networks:
            lines += [Line("net", t, d["domid"]) for t in network_lines(d)]
        if view.vbds:
            lines += [Line("vbd", t, d["domid"]) for t in vbd_lines(d)]
    if not domains:
        lines.append(header)
    if view.pcpus:
        lines += [Line("pcpu", t) for t in pcpu_lines(sample)]
    return lines


@dataclass
class CpuHistory:
    """Each domain's last CPU% figures, for its sparkline."""
    length: int = HISTORY
    figures: dict[int, deque] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        for domid in list(self.figures):
            if domid not in sample.by_id:
                del self.figures[domid]
        for d in sample.domains:
            self.figures.setdefault(d["domid"], deque(maxlen=self.length)).append(
                sample.cpu_pct[d["domid"]])

    def sparkline(self, d: dict) -> str:
        """One block a figure, its height the share of all the domain's
        vCPUs it used: the lowest block for none at all."""
        full = 100.0 * max(1, d["num_vcpus"])
        out = []
        for pct in self.figures.get(d["domid"], ()):
            level = 0 if pct <= 0 else 1 + min(len(SPARK) - 2, int(pct / full * (len(SPARK) - 1)))
            out.append(SPARK[level])
        return "".join(out)
