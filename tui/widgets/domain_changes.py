"""What the domain screen compares and how it writes figures: a domain's
snapshot (the service's domain_detail) flattened to one value per thing
shown, so that two snapshots differ exactly where the screen would; and
throughput between two snapshots taken at different virtual times."""

from __future__ import annotations

# How a figure that changed since the snapshot before is drawn.
CHANGED = "bold black on yellow"


def flatten(detail: dict | None) -> dict[tuple, object]:
    """One key per figure on screen. Times that run on by themselves (the
    runstate totals, the timeline) are left out: they are not news."""
    if not detail:
        return {}
    out: dict[tuple, object] = {("domain", "state"): detail["state"],
                                ("domain", "paused"): detail["paused"]}
    for v in detail["vcpus"]:
        for field in ("state", "cpu", "credit", "priority", "upcall_pending", "upcall_mask",
                      "pending_sel"):
            out[("vcpu", v["vcpu"], field)] = v[field]
    for field, value in detail["memory"].items():
        out[("memory", field)] = value
    for e in detail["evtchns"]:
        for field, value in e.items():
            out[("evtchn", e["port"], field)] = value
    for g in detail["grants"]["entries"]:
        for field in ("flags", "domid", "frame", "active", "mapped_by"):
            out[("grant", g["ref"], field)] = repr(g[field])
    for dev in detail["devices"]:
        key = (dev["class"], dev["devid"])
        for field in ("state", "backend_state", "evtchn", "backend_evtchn", "error"):
            out[("dev", *key, field)] = dev.get(field)
        for ring in dev["rings"]:
            for field, value in ring.items():
                if field not in ("name", "kind", "commands"):
                    out[("ring", *key, ring["name"], field)] = value
    return out


def changes(before: dict | None, after: dict | None) -> frozenset:
    """The figures that differ between two snapshots (none when there is
    nothing to compare with)."""
    if not before or not after:
        return frozenset()
    a, b = flatten(before), flatten(after)
    return frozenset(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def counters(detail: dict) -> dict[tuple, int]:
    """What throughput is counted from: each ring's requests (its req_prod),
    each byte ring's bytes (its prod), each vTPM's commands."""
    out = {}
    for dev in detail["devices"]:
        for ring in dev["rings"]:
            key = (dev["class"], dev["devid"], ring["name"])
            value = ring.get("req_prod") if ring["kind"] == "ring" else \
                ring.get("prod") if ring["kind"] == "bytes" else ring.get("commands")
            if value is not None:
                out[key] = value
    return out


def rates(earlier: dict | None, later: dict) -> dict[tuple, float]:
    """Per virtual second between two snapshots; none when no virtual
    time passed between them (a frozen clock, or a step)."""
    if earlier is None:
        return {}
    dt = later["now_ns"] - earlier["now_ns"]
    if dt <= 0:
        return {}
    before = counters(earlier)
    return {k: ((v - before[k]) & 0xFFFFFFFF) * 1e9 / dt
            for k, v in counters(later).items() if k in before}


def ns_text(ns: int | None) -> str:
    """A span of virtual time in three figures and the unit that suits it."""
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            value = ns / scale
            return f"{value:.0f}{unit}" if value >= 100 else \
                f"{value:.1f}{unit}" if value >= 10 else f"{value:.2f}{unit}"
    return f"{ns}ns"


def rate_text(rate: float | None, unit: str) -> str:
    if rate is None:
        return f"- {unit}/s"
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M {unit}/s"
    if rate >= 1e3:
        return f"{rate / 1e3:.2f}k {unit}/s"
    return f"{rate:.1f} {unit}/s"
