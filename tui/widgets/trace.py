"""The machine's trace, a record a line as `xl trace` prints it, with the
time, who acted and the kind of record each in its own colour."""

from __future__ import annotations

import re

from rich.text import Text

from tui.widgets.lines import LinesView

# "[    1.271855285] d2v0     hypercall sched_op:block = 0"
RECORD = re.compile(r"^(\[[ \d.]+\]) (\S+\s+)(\S+)(.*)$")
KINDS = ("hypercall", "evtchn", "sched", "vcpu", "domain", "guest", "xenstore", "device",
         "grant", "memory", "console")


class TraceView(LinesView):
    COMPONENT_CLASSES = {"traceview--time", "traceview--who", "traceview--kind",
                         *(f"traceview--{kind}" for kind in KINDS)}
    DEFAULT_CSS = """
    TraceView > .traceview--time { color: $text-muted; }
    TraceView > .traceview--who { text-style: bold; }
    """

    def line_text(self, index: int, line: str) -> Text:
        match = RECORD.match(line)
        if match is None:
            return Text(line)
        time, who, kind, rest = match.groups()
        style = self.get_component_rich_style
        kind_class = f"traceview--{kind}" if kind in KINDS else "traceview--kind"
        return Text.assemble((time, style("traceview--time")), " ", (who, style("traceview--who")),
                             (kind, style(kind_class)), rest)
