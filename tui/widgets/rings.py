"""A domain's devices with their rings drawn as rings: 32 cells round a
loop, clockwise from the top left, slot 0 first, each cell standing for an
equal share of the ring's slots and coloured by what its slots hold;
the four indices inside the loop, the rest beside it."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from tui.widgets.domain_changes import CHANGED, rate_text

WRAP = 1 << 32
CELLS = 32
CELL = 2                           # characters a cell is wide
# The loops: a top row, a right side, a bottom row and a left side, 32
# cells round; a ring.h ring has four indices to write inside, a byte
# ring two.
IO_LOOP = (12, 4)
BYTE_LOOP = (14, 2)
# What a slot holds, most telling first (a cell shows the first it has).
REGIONS = (
    ("req", "█", "magenta"),       # published by the producer, not yet taken
    ("busy", "▓", "yellow"),       # taken by the backend, not yet answered
    ("rsp", "▒", "green"),         # answered, not yet consumed by the frontend
    ("data", "█", "cyan"),         # a byte ring's unread bytes
)
FREE = ("░", "bright_black")
KEY = Text.assemble(*[part for name, glyph, style in REGIONS
                      for part in ((glyph * 2, style), (f" {name}  ", ""))],
                    (FREE[0] * 2, FREE[1]), " free")


def _span(start: int, end: int, size: int) -> range:
    """The slots a run of free-running indices covers (at most the ring)."""
    length = min((end - start) % WRAP, size)
    return range(start, start + length)


def cell_glyphs(size: int, runs: list[tuple[str, int, int]]) -> list[tuple[str, str]]:
    """(glyph, style) for each of the loop's cells; ``runs`` are (region,
    from index, to index), most telling first."""
    slots: list[str | None] = [None] * size
    for name, start, end in reversed(runs):
        for idx in _span(start, end, size):
            slots[idx % size] = name
    per_cell = max(size // CELLS, 1)
    cells = min(CELLS, size)
    out = []
    for cell in range(cells):
        held = {s for s in slots[cell * per_cell:(cell + 1) * per_cell] if s}
        for name, glyph, style in REGIONS:
            if name in held:
                out.append((glyph, style))
                break
        else:
            out.append(FREE)
    out += [(" ", "")] * (CELLS - cells)
    return out


def loop(glyphs: list[tuple[str, str]], inside: list[Text], shape: tuple[int, int]) -> list[Text]:
    """The loop's rows, ``inside`` written within it."""
    width, height = shape
    top = glyphs[:width]
    right = glyphs[width:width + height]
    bottom = list(reversed(glyphs[width + height:2 * width + height]))
    left = list(reversed(glyphs[2 * width + height:]))
    room = (width - 2) * CELL

    def cells(row) -> Text:
        return Text.assemble(*[(g * CELL, s) for g, s in row])

    rows = [cells(top)]
    for i in range(height):
        middle = (inside[i] if i < len(inside) else Text()).copy()
        middle.truncate(room, pad=True)
        rows.append(Text.assemble(cells([left[i]]), middle, cells([right[i]])))
    rows.append(cells(bottom))
    return rows


def figure(name: str, value, changed: bool, width: int = 0) -> Text:
    shown = "-" if value is None else str(value)
    text = Text(f" {name} ")
    text.append(shown.rjust(width), CHANGED if changed else "bold")
    return text


class DevicePanel(Static):
    """Each device: a line saying what it is, then its rings."""

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.detail: dict | None = None

    def update_detail(self, detail: dict, changed: frozenset, rates: dict) -> None:
        self.detail = detail
        parts: list[Text] = [KEY]
        for dev in detail["devices"]:
            parts.append(Text())
            parts.append(self._title(dev, changed))
            if dev.get("error"):
                parts.append(Text(f"  {dev['error']}", "red"))
            for ring in dev["rings"]:
                parts += self._ring(dev, ring, changed, rates)
        if not detail["devices"]:
            parts.append(Text("no devices", "italic"))
        self.update(Group(*parts))

    @staticmethod
    def _title(dev: dict, changed: frozenset) -> Text:
        """Which device, both ends' xenbus states and event channels."""
        key = ("dev", dev["class"], dev["devid"])

        def lit(field: str) -> str:
            return CHANGED if (*key, field) in changed else ""

        text = Text.assemble((f"{dev['class']} {dev['devid']}", "bold underline"))
        if dev.get("state") is not None:
            text.append("  ")
            text.append(str(dev["state"]), lit("state"))
        back = dev.get("backend_id")
        if back is not None:
            text.append(f" <-> d{back}")
            if dev.get("backend_state") is not None:
                text.append(" ")
                text.append(str(dev["backend_state"]), lit("backend_state"))
        if dev.get("evtchn") is not None:
            text.append("  port ")
            text.append(str(dev["evtchn"]), lit("evtchn"))
            if dev.get("backend_evtchn"):
                text.append(f" <-> d{back}:")
                text.append(str(dev["backend_evtchn"]), lit("backend_evtchn"))
        return text

    def _ring(self, dev: dict, ring: dict, changed: frozenset, rates: dict) -> list[Text]:
        key = ("ring", dev["class"], dev["devid"], ring["name"])
        rate = rates.get((dev["class"], dev["devid"], ring["name"]))

        def ch(field: str) -> bool:
            return (*key, field) in changed

        name = Text.assemble((f" {ring['name']}", "bold"))
        # A byte ring's page is its device's: the grant is told there.
        where = ring if ring["kind"] != "bytes" else dev
        if where.get("ref") is not None:
            name.append(f"  grant {where['ref']}")
        if where.get("frame") is not None:
            name.append(f" -> frame {where['frame']:#x}")
        if ring.get("error"):
            return [name, Text(f"   {ring['error']}", "red")]
        if ring["kind"] == "tpmif":
            return [name] + self._tpm(ring, ch, rate)
        if ring["kind"] == "bytes":
            size, prod, cons = ring["size"], ring["prod"], ring["cons"]
            shape = BYTE_LOOP
            glyphs = cell_glyphs(size, [("data", cons, prod)])
            inside = [figure("prod", prod, ch("prod"), 10), figure("cons", cons, ch("cons"), 10)]
            beside = [name, Text(f" {size} bytes, unread {(prod - cons) % WRAP}"),
                      Text(f" {rate_text(rate, 'B')}")]
        else:
            size = ring["size"]
            rsp_cons = ring["rsp_cons"] if ring.get("rsp_cons") is not None else ring["rsp_prod"]
            runs = [("req", ring["req_cons"] if ring.get("req_cons") is not None else ring["rsp_prod"],
                     ring["req_prod"])]
            if ring.get("req_cons") is not None:
                runs.append(("busy", ring["rsp_prod"], ring["req_cons"]))
            runs.append(("rsp", rsp_cons, ring["rsp_prod"]))
            shape = IO_LOOP
            glyphs = cell_glyphs(size, runs)
            inside = [figure("req_prod", ring["req_prod"], ch("req_prod"), 10),
                      figure("req_cons", ring.get("req_cons"), ch("req_cons"), 10),
                      figure("rsp_prod", ring["rsp_prod"], ch("rsp_prod"), 10),
                      figure("rsp_cons", ring.get("rsp_cons"), ch("rsp_cons"), 10)]
            beside = [name,
                      Text(f" {size} slots, occupancy {(ring['req_prod'] - rsp_cons) % WRAP}"),
                      figure("req_event", ring["req_event"], ch("req_event")),
                      figure("rsp_event", ring["rsp_event"], ch("rsp_event")),
                      Text(f" {rate_text(rate, 'req')}")]
        rows = loop(glyphs, inside, shape)
        return [Text.assemble(" ", row, beside[i] if i < len(beside) else "")
                for i, row in enumerate(rows)]

    @staticmethod
    def _tpm(page: dict, ch, rate) -> list[Text]:
        """tpmif's page goes round: the frontend submits, the backend
        finishes, the frontend takes the answer and idles (a cancel, asked
        for mid-command, goes back to idle too). The turn it is at is lit."""
        now = page.get("state")

        def stop(name: str) -> Text:
            return Text(f" {name} ", (CHANGED if ch("state") else "bold reverse") if name == now else "")

        return [
            Text.assemble("   ╭─▶", stop("idle"), "──▶", stop("submit"), "──▶", stop("finish"), "─╮"),
            Text.assemble("   ╰─", stop("cancel"), "─" * 22, "╯"),
            Text.assemble(figure("length", page.get("length"), ch("length")),
                          figure("locality", page.get("locality"), ch("locality")),
                          Text(f"  commands {page.get('commands', '-')}, "
                               f"{rate_text(rate, 'cmd')}")),
        ]
