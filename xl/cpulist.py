"""xl's CPU lists, as xl.cfg's cpus= and cpus_soft= and `xl vcpu-pin` take
them: "all", CPU numbers and ranges, "node:N" or "nodes:N-M" for a NUMA
node's CPUs, each of them taken out again with a leading ^ (libxlutil's
cpurange_parse). This machine has one node, 0, holding every CPU."""

from __future__ import annotations

# What a list is read against before the host is known (libxl's bitmaps
# are as wide as the host's CPUs; nothing here has more).
MAX_CPUS = 4096


class CpuListError(ValueError):
    """A CPU list that isn't one."""


def parse_cpulist(text: str, nr_cpus: int = MAX_CPUS) -> int:
    """The CPUs a list names, as a mask."""
    mask = 0
    everything = (1 << nr_cpus) - 1
    for raw in text.split(","):
        part = raw.strip()
        negate = part.startswith("^")
        part = part[1:] if negate else part
        if part == "all":
            bits = everything
        elif part.startswith(("node:", "nodes:")):
            bits = 0
            for node in _range(part.split(":", 1)[1], text):
                if node != 0:
                    raise CpuListError(f"{text!r}: there is no NUMA node {node} (the host has node 0)")
                bits = everything
        else:
            bits = 0
            for cpu in _range(part, text):
                bits |= 1 << cpu
        mask = mask & ~bits if negate else mask | bits
    return mask & everything


def _range(part: str, text: str) -> range:
    first, _, last = part.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise CpuListError(f"invalid cpu list {text!r}")
    lo, hi = int(first), int(last or first)
    if hi < lo:
        raise CpuListError(f"invalid cpu range {part!r} in {text!r}")
    return range(lo, hi + 1)


def vcpu_affinities(spec, nr_vcpus: int, nr_cpus: int = MAX_CPUS) -> list[int | None]:
    """Each vCPU's mask from a config's cpus= (or cpus_soft=): one list
    for every vCPU, or a list of lists, vCPU by vCPU (those past its end
    are not pinned: None)."""
    if isinstance(spec, str):
        return [parse_cpulist(spec, nr_cpus)] * nr_vcpus
    masks = [parse_cpulist(str(item), nr_cpus) for item in spec[:nr_vcpus]]
    return masks + [None] * (nr_vcpus - len(masks))


def cpus_of(mask: int) -> list[int]:
    """The CPU numbers in a mask (how libxl writes a bitmap in JSON)."""
    return [cpu for cpu in range(mask.bit_length()) if mask >> cpu & 1]
