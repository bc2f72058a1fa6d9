"""Guest programs: every verb, and errors that say where."""

import pytest

from hv.guest.image import read_module, workload_module
from hv.guest.workload import WorkloadError, parse_duration, parse_size, parse_workload
from hv.public.sched import SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend


def test_every_verb_parses_to_plain_data():
    program = parse_workload([
        "burn 100%", "burn 25%", "compute 5ms", "sleep 1.5s", "echo hello world",
        "balloon 64M", "balloon 1G", "shutdown poweroff", "shutdown reboot",
        "shutdown suspend", "crash", "idle", "loop",
    ])
    assert program == (
        ("burn", 100), ("burn", 25), ("compute", 5_000_000), ("sleep", 1_500_000_000),
        ("echo", "hello world"), ("balloon", 64 << 20), ("balloon", 1 << 30),
        ("shutdown", SHUTDOWN_poweroff), ("shutdown", SHUTDOWN_reboot),
        ("shutdown", SHUTDOWN_suspend), ("crash",), ("idle",), ("loop",),
    )


def test_blank_lines_and_comments_are_skipped():
    assert parse_workload("\n  # warm up\nsleep 10ms  # a little\n\necho hi\n") == \
        (("sleep", 10_000_000), ("echo", "hi"))


@pytest.mark.parametrize("lines, line, column, words", [
    (["sleep 10ms", "jump 3"], 2, 1, "unknown operation 'jump'"),
    (["  burn 150%"], 1, 8, "burn takes a percentage from 1% to 100%"),
    (["burn"], 1, 6, "burn takes a percentage"),
    (["sleep"], 1, 7, "sleep needs a duration"),
    (["sleep 10 minutes"], 1, 7, "'10 minutes' is not a duration"),
    (["balloon 512k"], 1, 9, "below 1 MiB"),
    (["balloon lots"], 1, 9, "'lots' is not a size"),
    (["shutdown halt"], 1, 10, "shutdown takes one of poweroff, reboot, suspend"),
    (["idle now"], 1, 6, "idle takes no argument"),
])
def test_errors_name_the_line_and_column(lines, line, column, words):
    with pytest.raises(WorkloadError) as e:
        parse_workload(lines)
    assert (e.value.line, e.value.column) == (line, column)
    assert words in e.value.message
    assert str(e.value).startswith(f"line {line}, column {column}: ")


@pytest.mark.parametrize("text, ns", [("10ns", 10), ("250us", 250_000), ("3ms", 3_000_000),
                                      ("2s", 2_000_000_000), ("0.5s", 500_000_000)])
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text, size", [("4096", 4096), ("512k", 512 << 10), ("64M", 64 << 20),
                                        ("64MiB", 64 << 20), ("2G", 2 << 30), ("1gb", 1 << 30)])
def test_sizes(text, size):
    assert parse_size(text) == size


def test_a_program_travels_as_the_kernels_initrd():
    module = workload_module(["echo hi", "idle"])
    assert module.startswith(b"#!xenlab-workload\n")
    assert read_module(module) == ["echo hi", "idle"]
    assert read_module(b"\x7fELF...") is None
