"""The programs guests run: a few lines, one operation each.

    burn 100%          use the CPU on every vCPU until the domain stops
                       (a smaller percentage is a duty cycle)
    compute 5ms        use the CPU for a while, then go on
    sleep 100ms        wait, vCPU blocked
    echo hello         write a line to the domain's console
    balloon 64M        give memory back to Xen, or take it again, until
                       the domain holds that much
    shutdown poweroff  shut the domain down (poweroff, reboot, suspend)
    crash              panic
    idle               nothing more (also what a program that ends does)
    loop               start again from the first line
    xs-read PATH       xenstore, through the domain's store ring; each
    xs-write PATH VAL  prints its outcome on the console (a value, a
    xs-mkdir PATH      listing, OK, or the error), and xs-watch prints
    xs-rm PATH         each event as it comes: "xs-watch-event PATH".
    xs-ls PATH         PATH may be relative to the domain's home,
    xs-watch PATH      /local/domain/<domid>.
    xs-unwatch PATH
    dd write xvda 4M   write a pattern made of the domain's name and each
                       sector's number from sector 0 (bs=SIZE sets the
                       request size), reporting throughput as dd does
    dd verify xvda 4M  read it back and check it: "verify ok", or the first
                       bad sector
    dd read xvda 4M    read, for the throughput alone
    flush xvda         flush the disk's cache (BLKIF_OP_FLUSH_DISKCACHE)
    ping 10.0.0.2 -c 5 ping over eth0 (-i SECONDS between; default 1), printing
                       what ping prints, times in virtual time
    udp-send 10.0.0.2 9000 1000 [64]
                       send 1000 datagrams (of 64 bytes) to port 9000 as
                       fast as the ring takes them; report the rate
    udp-echo 9000 1000 echo datagrams on port 9000 until 1000 came; report
    tpm extend 10 hi   extend the vTPM's PCR 10 with SHA-1("hi")
    tpm read 10        print PCR 10: "PCR-10: <40 hex digits>"
    tpm random 16      print 16 bytes from the vTPM's generator, in hex

A parsed program is a tuple of plain tuples, so that where a guest is in it
is plain data too: a snapshot carries it, stepping shows it.
"""

from __future__ import annotations

import re

from hv.public.sched import SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend

_DURATION_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
SHUTDOWN_REASONS = {"poweroff": SHUTDOWN_poweroff, "reboot": SHUTDOWN_reboot,
                    "suspend": SHUTDOWN_suspend}
XS_VERBS = ("xs-read", "xs-write", "xs-mkdir", "xs-rm", "xs-ls", "xs-watch", "xs-unwatch")
VERBS = ("burn", "compute", "sleep", "echo", "balloon", "shutdown", "crash", "idle",
         "loop", "dd", "flush", "ping", "udp-send", "udp-echo", "tpm") + XS_VERBS
DD_MODES = ("write", "verify", "read")
# Without bs=, a request carries as much as the disk takes in one.
DD_BS_DEFAULT = 0

Op = tuple


class WorkloadError(ValueError):
    """A line the guest cannot run: where, and why."""

    def __init__(self, line: int, column: int, message: str):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message


def parse_duration(text: str) -> int:
    """"100ms", "1.5s", "250us" in ns."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ns|us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration (say 100ms, 2s, 250us)")
    value = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    return int(value * _DURATION_UNITS[m.group(2)])


def parse_size(text: str) -> int:
    """"64M", "1G", "512k", "64MiB" in bytes; a bare number is bytes."""
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)(i?[bB])?", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size (say 64M or 1G)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def parse_workload(lines) -> tuple[Op, ...]:
    """Parse a program. ``lines`` is a list of lines (or one string);
    blank lines and # comments are skipped."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    program = []
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        indent = len(text) - len(text.lstrip())
        verb, _, rest = text.strip().partition(" ")
        arg_column = indent + len(verb) + 2
        try:
            program.append(_parse_op(verb, rest.strip()))
        except _BadVerb:
            raise WorkloadError(number, indent + 1,
                                f"unknown operation {verb!r} (one of {', '.join(VERBS)})") from None
        except ValueError as e:
            raise WorkloadError(number, arg_column, str(e)) from None
    return tuple(program)


class _BadVerb(Exception):
    pass


def _parse_op(verb: str, arg: str) -> Op:
    if verb == "burn":
        m = re.fullmatch(r"(\d+)%", arg)
        if not m or not 1 <= int(m.group(1)) <= 100:
            raise ValueError(f"burn takes a percentage from 1% to 100%, not {arg!r}")
        return ("burn", int(m.group(1)))
    if verb in ("compute", "sleep"):
        if not arg:
            raise ValueError(f"{verb} needs a duration (say 100ms)")
        return (verb, parse_duration(arg))
    if verb == "echo":
        return ("echo", arg)
    if verb == "balloon":
        if not arg:
            raise ValueError("balloon needs a size (say 64M)")
        size = parse_size(arg)
        if size < 1 << 20:
            raise ValueError(f"balloon target {arg!r} is below 1 MiB")
        return ("balloon", size)
    if verb == "shutdown":
        if arg not in SHUTDOWN_REASONS:
            raise ValueError(f"shutdown takes one of {', '.join(SHUTDOWN_REASONS)}, not {arg!r}")
        return ("shutdown", SHUTDOWN_REASONS[arg])
    if verb in XS_VERBS:
        path, _, value = arg.partition(" ")
        if not path:
            raise ValueError(f"{verb} needs a path")
        if verb == "xs-write" and not value:
            raise ValueError("xs-write needs a path and a value")
        if verb != "xs-write" and value:
            raise ValueError(f"{verb} takes a path only")
        return ("xs", verb[3:], path, value)
    if verb == "dd":
        return _parse_dd(arg)
    if verb in ("ping", "udp-send", "udp-echo"):
        return _parse_net(verb, arg.split())
    if verb == "flush":
        if not arg or " " in arg:
            raise ValueError("flush takes a disk (say xvda)")
        return ("dev", "blk", "flush", arg, 0, 0)
    if verb == "tpm":
        return _parse_tpm(arg)
    if verb in ("crash", "idle", "loop"):
        if arg:
            raise ValueError(f"{verb} takes no argument")
        return (verb,)
    raise _BadVerb(verb)


def _parse_dd(arg: str) -> Op:
    words = arg.split()
    if len(words) not in (3, 4) or words[0] not in DD_MODES:
        raise ValueError(f"dd takes {'|'.join(DD_MODES)} DISK SIZE [bs=SIZE], not {arg!r}")
    mode, disk, size = words[:3]
    nbytes = parse_size(size)
    bs = DD_BS_DEFAULT
    if len(words) == 4:
        if not words[3].startswith("bs="):
            raise ValueError(f"dd's fourth word is bs=SIZE, not {words[3]!r}")
        bs = parse_size(words[3][3:])
        if not bs or bs % 512:
            raise ValueError(f"bs must be a whole number of 512-byte sectors, not {words[3][3:]!r}")
    if not nbytes or nbytes % 512:
        raise ValueError(f"dd size must be a whole number of 512-byte sectors, not {size!r}")
    return ("dev", "blk", mode, disk, nbytes, bs)


TPM_ACTIONS = ("extend", "read", "random")
TPM_PCRS = 24                 # a TPM 1.2 PC client's PCRs
TPM_RANDOM_MAX = 256


def _parse_tpm(arg: str) -> Op:
    action, _, rest = arg.partition(" ")
    if action not in TPM_ACTIONS:
        raise ValueError(f"tpm takes {'|'.join(TPM_ACTIONS)}, not {action or 'nothing'!r}")
    number, _, text = rest.strip().partition(" ")
    text = text.strip()
    if action == "random":
        if not number.isdigit() or not 1 <= int(number) <= TPM_RANDOM_MAX or text:
            raise ValueError(f"tpm random takes a byte count from 1 to {TPM_RANDOM_MAX}, "
                             f"not {rest.strip()!r}")
        return ("dev", "tpm", "random", int(number), "")
    if not number.isdigit() or int(number) >= TPM_PCRS:
        raise ValueError(f"tpm {action} takes a PCR from 0 to {TPM_PCRS - 1}, not {number!r}")
    if action == "extend" and not text:
        raise ValueError("tpm extend takes a PCR and the text to measure (say tpm extend 10 hello)")
    if action == "read" and text:
        raise ValueError("tpm read takes a PCR only")
    return ("dev", "tpm", action, int(number), text)


def _ipv4(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"{text!r} is not an IPv4 address")
    return text


def _count(text: str, what: str, low: int = 1, high: int = 1 << 31) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{what} must be a number from {low} to {high}, not {text!r}")
    return int(text)


def _parse_net(verb: str, words: list[str]) -> Op:
    if verb == "ping":
        if not words:
            raise ValueError("ping needs an address (say ping 10.0.0.2 -c 5)")
        dst, count, interval = _ipv4(words[0]), 4, 1_000_000_000
        rest = words[1:]
        while rest:
            if len(rest) < 2 or rest[0] not in ("-c", "-i"):
                raise ValueError(f"ping takes -c COUNT and -i SECONDS, not {' '.join(rest)!r}")
            if rest[0] == "-c":
                count = _count(rest[1], "ping's count")
            else:
                interval = parse_duration(rest[1] if rest[1][-1:].isalpha() else rest[1] + "s")
            rest = rest[2:]
        return ("dev", "net", "ping", dst, count, interval)
    if verb == "udp-send":
        if len(words) not in (3, 4):
            raise ValueError("udp-send takes ADDRESS PORT COUNT [SIZE]")
        size = _count(words[3], "the datagram size", 4, 1472) if len(words) == 4 else 64
        return ("dev", "net", "udp-send", _ipv4(words[0]), _count(words[1], "the port", 1, 65535),
                _count(words[2], "the count"), size)
    if len(words) != 2:
        raise ValueError("udp-echo takes PORT COUNT")
    return ("dev", "net", "udp-echo", _count(words[0], "the port", 1, 65535),
            _count(words[1], "the count"))

