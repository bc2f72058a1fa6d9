"""The built-in TPM 1.2 held against the real one: swtpm (libtpms) in TPM
1.2 mode gets the same command bytes and must give the same response
bytes.

The one place they differ by design is what TPM_GetRandom returns: the
built-in TPM draws from its seeded stream, swtpm from its own generator.
For that ordinal the header and the byte count are compared, not the
bytes. Every other response, success or error, is the same byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import struct

import pytest

from hv.guest.swtpm import Swtpm, SwtpmError, SwtpmMissing, available
from hv.guest.tpm12 import (
    TPM_ORD_Extend, TPM_ORD_GetRandom, TPM_ORD_PcrRead, TPM_ORD_SaveState, TPM_ORD_Startup,
    TPM_ST_CLEAR, TPM_ST_DEACTIVATED, TPM_ST_STATE, TPM_TAG_RQU_AUTH1_COMMAND, Tpm12,
    build_command, cmd_extend, cmd_get_random, cmd_pcr_read, cmd_save_state, cmd_startup,
    parse_response,
)

HELLO = hashlib.sha1(b"hello").digest()


def needs_swtpm() -> None:
    if not available():
        pytest.skip("swtpm is not installed")


def comparable(command: bytes, response: bytes) -> bytes:
    """What of a response the TPM specification fixes."""
    if len(command) >= 10 and struct.unpack_from(">I", command, 6)[0] == TPM_ORD_GetRandom:
        if parse_response(response)[0] == 0:
            return response[:14]        # header and randomBytesSize
    return response


class Pair:
    """The built-in TPM and swtpm, fed the same commands."""

    def __init__(self, builtin: Tpm12, real: Swtpm):
        self.builtin = builtin
        self.real = real

    def both(self, command: bytes) -> bytes:
        ours = self.builtin.execute(command)
        theirs = self.real.execute(command)
        assert comparable(command, ours) == comparable(command, theirs), (
            f"command {command.hex()}: built-in {ours.hex()} swtpm {theirs.hex()}")
        return ours

    def init(self) -> None:
        self.builtin.init()
        self.real.init()


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    needs_swtpm()
    tpm = Swtpm(str(tmp_path_factory.mktemp("swtpm")))
    yield tpm
    tpm.close()


# Each test starts from TPM_Init, which is what costs time with swtpm (its
# self-test makes an RSA key), not starting the process; so one process
# serves every test, reset in between.
@pytest.fixture
def pair(real, tmp_path):
    # TPM_Startup drops a TPM_SaveState blob whatever state the TPM is in.
    real.execute(cmd_startup(TPM_ST_CLEAR))
    real.init()
    return Pair(Tpm12(b"seed", str(tmp_path / "tpm12.json")), real)


@pytest.fixture
def started(pair):
    pair.both(cmd_startup(TPM_ST_CLEAR))
    return pair


def header(code: int, body: bytes = b"") -> bytes:
    return struct.pack(">HII", 0x00C4, 10 + len(body), code) + body


def resized(command: bytes, delta: int) -> bytes:
    size = struct.unpack_from(">I", command, 2)[0]
    return command[:2] + struct.pack(">I", size + delta) + command[6:]


# ------------------------------------------------------------ the main sequence
def test_measured_boot_sequence(pair):
    measured = bytes.fromhex("00629997206c7d587b4ed79aabc3db58c32e1492")
    assert measured == hashlib.sha1(bytes(20) + HELLO).digest()
    expected = [
        (cmd_pcr_read(10), header(0x26)),                        # before TPM_Startup
        (cmd_startup(TPM_ST_CLEAR), header(0)),
        (cmd_extend(10, HELLO), header(0, measured)),
        (cmd_pcr_read(10), header(0, measured)),
        (build_command(0x12345), header(0x0A)),                  # unknown ordinal
        (cmd_pcr_read(24), header(0x02)),                        # bad PCR index
        (cmd_extend(24, HELLO), header(0x02)),
        (resized(cmd_pcr_read(10), +1), header(0x19)),           # paramSize above the bytes
        (resized(cmd_pcr_read(10), -1), header(0x19)),           # and below
        (cmd_pcr_read(10), header(0, measured)),                 # none of that changed a PCR
    ]
    for command, response in expected:
        assert pair.both(command) == response, command.hex()
    random_response = pair.both(cmd_get_random(16))
    assert random_response[:14] == bytes.fromhex("00c4 0000001e 00000000 00000010")


# ------------------------------------------------------------ case by case
def test_before_startup(pair):
    # None of these changes anything, so one TPM_Init serves them all.
    for command in (cmd_pcr_read(0), cmd_extend(10, HELLO), cmd_get_random(4), cmd_save_state(),
                    build_command(0x12345), cmd_pcr_read(99), cmd_pcr_read(0) + b"\x00",
                    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01",
                                  tag=TPM_TAG_RQU_AUTH1_COMMAND)):
        pair.both(command)
    pair.both(cmd_startup(TPM_ST_CLEAR))
    pair.both(cmd_pcr_read(0))


@pytest.mark.parametrize("command", [
    cmd_startup(4),
    build_command(TPM_ORD_Startup, b"\x00"),
    build_command(TPM_ORD_Startup, b"\x00\x01", tag=TPM_TAG_RQU_AUTH1_COMMAND),
    cmd_startup(TPM_ST_STATE),
    cmd_startup(TPM_ST_DEACTIVATED),
])
def test_startup_variants(pair, command):
    pair.both(command)
    pair.both(cmd_startup(TPM_ST_CLEAR))
    for index in (0, 16, 17):
        pair.both(cmd_pcr_read(index))
    pair.both(cmd_extend(0, HELLO))
    pair.both(cmd_get_random(3))


def test_reset_values_and_localities(started):
    for index in range(24):
        started.both(cmd_pcr_read(index))
    for index in range(24):
        started.both(cmd_extend(index, HELLO))
        started.both(cmd_pcr_read(index))


MALFORMED = [
    resized(build_command(0x12345), +4),
    build_command(0),
    build_command(0x12345, tag=0x00C2),
    build_command(0x12345, tag=0x00C3),
    build_command(0x12345, tag=0x1234),
    build_command(0x12345, b"\x00" * 7),
    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00"),
    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01\x00"),
    build_command(TPM_ORD_Extend, b"\x00\x00\x00\x0a" + HELLO[:19]),
    build_command(TPM_ORD_Extend, b"\x00\x00\x00\x0a" + HELLO + b"\x00"),
    build_command(TPM_ORD_GetRandom),
    build_command(TPM_ORD_SaveState, b"\x00"),
    build_command(TPM_ORD_Startup, b"\x00\x01\x00"),
    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=0x00C2),
    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=0x00C3),
    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=0x00C4),
    build_command(TPM_ORD_Extend, b"\x00\x00\x00\x01" + HELLO, tag=0x0000),
    cmd_pcr_read(0xFFFFFFFF), cmd_extend(0x80000000, HELLO),
    # swtpm needs a whole header and takes no more than its buffer; the
    # wrapper answers these itself, as the TPM would.
    b"", bytes.fromhex("00c1 0000000a 0000"), build_command(0x12345, bytes(5000)),
    bytes(10),
]


def test_malformed_commands(started):
    for command in MALFORMED:
        started.both(command)
        started.both(cmd_pcr_read(1))


def test_get_random_sizes(started):
    for requested in (0, 1, 20, 21, 4082, 4083, 5000, 0xFFFFFFFF):
        assert len(started.both(cmd_get_random(requested))) <= 4096


# ------------------------------------------------------------ state across resets
def test_save_state_and_resume(started):
    for index in (0, 10, 15, 16, 23):
        started.both(cmd_extend(index, HELLO))
    started.both(cmd_save_state())
    started.init()
    started.both(cmd_startup(TPM_ST_STATE))
    for index in (0, 10, 15, 16, 17, 23):
        started.both(cmd_pcr_read(index))
    started.init()
    started.both(cmd_startup(TPM_ST_STATE))        # the blob was used up
    started.both(cmd_pcr_read(0))


def test_what_invalidates_a_saved_state(started):
    for between in (cmd_pcr_read(10), build_command(0x12345), cmd_pcr_read(10) + b"\x00"):
        started.both(cmd_extend(10, HELLO))
        started.both(cmd_save_state())
        started.both(between)
        started.init()
        started.both(cmd_startup(TPM_ST_STATE))
        started.both(cmd_pcr_read(10))


def test_a_tpm_init_keeps_the_saved_state_from_other_commands(started):
    started.both(cmd_save_state())
    started.init()
    started.both(cmd_pcr_read(10))
    started.both(cmd_startup(TPM_ST_STATE))


def test_failure_mode(pair):
    pair.both(cmd_startup(TPM_ST_STATE))
    for command in (cmd_pcr_read(0), cmd_extend(0, HELLO), cmd_get_random(1), cmd_save_state(),
                    cmd_startup(TPM_ST_CLEAR), build_command(0x12345), cmd_pcr_read(0) + b"\x00",
                    build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=0x00C2)):
        pair.both(command)
    pair.init()
    pair.both(cmd_startup(TPM_ST_CLEAR))
    pair.both(cmd_pcr_read(0))


def test_deactivated(pair):
    pair.both(cmd_startup(TPM_ST_DEACTIVATED))
    for command in (cmd_pcr_read(10), cmd_pcr_read(99), cmd_get_random(4), cmd_extend(10, HELLO),
                    cmd_extend(17, HELLO), cmd_extend(99, HELLO), cmd_save_state()):
        pair.both(command)
    pair.init()
    pair.both(cmd_startup(TPM_ST_STATE))
    pair.both(cmd_pcr_read(10))
    pair.both(cmd_extend(10, HELLO))


def test_a_new_instance_resumes_where_the_last_stopped(tmp_path):
    needs_swtpm()
    state_file, state_dir = str(tmp_path / "tpm12.json"), str(tmp_path / "swtpm")

    def instance() -> Pair:
        return Pair(Tpm12(b"seed", state_file), Swtpm(state_dir))

    first = instance()
    first.both(cmd_startup(TPM_ST_CLEAR))
    first.both(cmd_extend(10, HELLO))
    first.both(cmd_save_state())
    first.real.close()
    second = instance()
    try:
        # Resumed, not reset: the PCR holds its value, and no TPM_Startup is due.
        assert parse_response(second.both(cmd_pcr_read(10)))[1] == hashlib.sha1(
            bytes(20) + HELLO).digest()
        second.both(cmd_startup(TPM_ST_CLEAR))
        second.init()
    finally:
        second.real.close()
    third = instance()
    try:
        third.both(cmd_startup(TPM_ST_STATE))          # post-init, as the reset left it
        third.both(cmd_pcr_read(10))
    finally:
        third.real.close()


def test_random_walk(started):
    """Commands good and bad, in an order no one wrote by hand."""
    rng = random.Random(20060205)
    ordinals = [TPM_ORD_Startup, TPM_ORD_Extend, TPM_ORD_PcrRead, TPM_ORD_GetRandom,
                TPM_ORD_SaveState, 0x12345]
    for _ in range(300):
        if rng.random() < 0.01:
            started.init()
            continue
        ordinal = rng.choice(ordinals)
        if ordinal == TPM_ORD_Startup:
            params = struct.pack(">H", rng.choice([0, 1, 1, 2, 2, 3, 4]))
        elif ordinal == TPM_ORD_Extend:
            params = struct.pack(">I", rng.randrange(26)) + hashlib.sha1(
                rng.randbytes(4)).digest()
        elif ordinal == TPM_ORD_PcrRead:
            params = struct.pack(">I", rng.randrange(26))
        elif ordinal == TPM_ORD_GetRandom:
            params = struct.pack(">I", rng.randrange(64))
        else:
            params = b""
        tag = 0x00C1 if rng.random() < 0.9 else rng.choice([0x00C2, 0x00C3, 0x0000])
        command = build_command(ordinal, params, tag=tag)
        mangle = rng.random()
        if mangle < 0.05:
            command = command[:-1]
        elif mangle < 0.10:
            command = command + b"\x00"
        elif mangle < 0.13:
            command = resized(command, rng.choice([-1, 1]))
        started.both(command)
    for index in range(24):
        started.both(cmd_pcr_read(index))


# ------------------------------------------------------------ the process
def test_close_stops_and_reaps_swtpm(tmp_path):
    needs_swtpm()
    tpm = Swtpm(str(tmp_path / "state"))
    pid = tpm.pid
    tpm.close()
    assert tpm._process.returncode == 0           # it shut down when asked
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)                # already reaped: no zombie
    tpm.close()
    with pytest.raises(SwtpmError, match="closed"):
        tpm.execute(cmd_pcr_read(0))
    assert os.path.exists(tmp_path / "state" / "tpm-00.permall")


def test_context_manager(tmp_path):
    needs_swtpm()
    with Swtpm(str(tmp_path / "state")) as tpm:
        assert tpm.execute(cmd_startup(TPM_ST_CLEAR)) == header(0)
    assert tpm._process.returncode == 0


def test_a_state_directory_in_use_is_a_clear_error(tmp_path):
    needs_swtpm()
    with Swtpm(str(tmp_path / "state")):
        with pytest.raises(SwtpmError, match="could not start") as info:
            Swtpm(str(tmp_path / "state"))
    assert "lock" in info.value.stderr


def test_a_dead_swtpm_is_a_clear_error(tmp_path):
    needs_swtpm()
    tpm = Swtpm(str(tmp_path / "state"))
    assert tpm.execute(cmd_startup(TPM_ST_CLEAR)) == header(0)
    os.kill(tpm.pid, signal.SIGKILL)
    with pytest.raises(SwtpmError, match="stopped answering"):
        tpm.execute(cmd_pcr_read(0))
    with pytest.raises(SwtpmError, match="stopped answering"):
        tpm.execute(cmd_pcr_read(0))
    tpm.close()
    assert tpm._process.returncode == -signal.SIGKILL


def test_a_missing_swtpm_is_a_clear_error(tmp_path):
    with pytest.raises(SwtpmMissing, match="not installed"):
        Swtpm(str(tmp_path / "state"), swtpm=str(tmp_path / "no-such-swtpm"))
