"""Sets of physical CPUs as integers, bit n for CPU n (the role of Xen's
include/xen/cpumask.h). Integers keep affinity masks small, copyable and
ordered: iterating a mask always visits CPUs in number order."""

from __future__ import annotations

from typing import Iterator


def cpumask_of(cpu: int) -> int:
    return 1 << cpu


def cpumask_all(nr_cpus: int) -> int:
    return (1 << nr_cpus) - 1


def test(cpu: int, mask: int) -> bool:
    return bool(mask >> cpu & 1)


def weight(mask: int) -> int:
    return mask.bit_count()


def first(mask: int) -> int | None:
    """The lowest CPU in the mask, or None when it is empty."""
    return (mask & -mask).bit_length() - 1 if mask else None


def cycle(cpu: int, mask: int) -> int | None:
    """The next CPU in the mask after ``cpu``, wrapping round to the lowest
    (cpumask_cycle()); None when the mask is empty."""
    if not mask:
        return None
    above = mask >> (cpu + 1) << (cpu + 1)
    return first(above) if above else first(mask)


def cpus(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def parse_list(text: str, nr_cpus: int) -> int:
    """xl's cpu list syntax: "all", or numbers and ranges such as "0-3,6",
    with a leading ^ to take CPUs out. Raises ValueError naming the part it
    cannot read."""
    mask = 0
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        negate = part.startswith("^")
        body = part[1:] if negate else part
        if body == "all":
            bits = cpumask_all(nr_cpus)
        else:
            lo, _, hi = body.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise ValueError(f"cannot read CPU list entry {part!r}")
            first_cpu, last_cpu = int(lo), int(hi or lo)
            if first_cpu > last_cpu or last_cpu >= nr_cpus:
                raise ValueError(f"CPU list entry {part!r} is outside 0-{nr_cpus - 1}")
            bits = cpumask_all(last_cpu + 1) & ~cpumask_all(first_cpu)
        mask = mask & ~bits if negate else mask | bits
    return mask


def format_list(mask: int, nr_cpus: int) -> str:
    """As xl prints a CPU list: "all", or ranges such as "0-3,6"."""
    if mask & cpumask_all(nr_cpus) == cpumask_all(nr_cpus):
        return "all"
    parts, run = [], None
    for cpu in list(cpus(mask)) + [None]:
        if run is not None and cpu == run[1] + 1:
            run[1] = cpu
            continue
        if run is not None:
            parts.append(str(run[0]) if run[0] == run[1] else f"{run[0]}-{run[1]}")
        run = None if cpu is None else [cpu, cpu]
    return ",".join(parts) or "none"
