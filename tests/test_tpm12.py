"""The built-in TPM 1.2: its answers, byte for byte, to the commands a
measured boot sends, to every malformed command, across TPM_SaveState and
TPM_Init, and across instances sharing a state file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct

import pytest

from hv.guest.tpm12 import (
    MAX_RANDOM_BYTES, TPM_BAD_LOCALITY, TPM_BAD_ORDINAL, TPM_BAD_PARAM_SIZE, TPM_BAD_PARAMETER,
    TPM_BADINDEX, TPM_BADTAG, TPM_DEACTIVATED, TPM_FAILEDSELFTEST, TPM_INVALID_POSTINIT,
    TPM_ORD_Extend, TPM_ORD_GetRandom, TPM_ORD_PcrRead, TPM_ORD_Startup, TPM_ST_CLEAR,
    TPM_ST_DEACTIVATED, TPM_ST_STATE, TPM_SUCCESS, TPM_TAG_RQU_AUTH1_COMMAND, Tpm12,
    build_command, cmd_extend, cmd_get_random, cmd_pcr_read, cmd_save_state, cmd_startup,
    parse_response,
)

HELLO = hashlib.sha1(b"hello").digest()
ZEROS = bytes(20)
ONES = b"\xff" * 20


def run(tpm, command: bytes) -> tuple[int, bytes]:
    return parse_response(tpm.execute(command))


def error_response(code: int) -> bytes:
    return struct.pack(">HII", 0x00C4, 10, code)


def extended(value: bytes, digest: bytes) -> bytes:
    return hashlib.sha1(value + digest).digest()


def random_stream(seed: bytes, count: int) -> bytes:
    blocks = b"".join(hashlib.sha1(seed + i.to_bytes(8, "big")).digest()
                      for i in range(count // 20 + 1))
    return blocks[:count]


@pytest.fixture
def tpm() -> Tpm12:
    return Tpm12(b"test seed")


@pytest.fixture
def started(tpm) -> Tpm12:
    assert tpm.execute(cmd_startup(TPM_ST_CLEAR)) == error_response(TPM_SUCCESS)
    return tpm


# ------------------------------------------------------------ the wire format
def test_commands_are_tpm12_bytes():
    assert cmd_startup(TPM_ST_CLEAR) == bytes.fromhex("00c1 0000000c 00000099 0001")
    assert cmd_pcr_read(10) == bytes.fromhex("00c1 0000000e 00000015 0000000a")
    assert cmd_get_random(8) == bytes.fromhex("00c1 0000000e 00000046 00000008")
    assert cmd_save_state() == bytes.fromhex("00c1 0000000a 00000098")
    assert cmd_extend(10, HELLO) == bytes.fromhex("00c1 00000022 00000014 0000000a") + HELLO


def test_extend_wants_a_sha1_digest():
    with pytest.raises(ValueError):
        cmd_extend(10, HELLO[:19])


@pytest.mark.parametrize("response", [
    bytes.fromhex("00c4 0000000a 0000"),                 # shorter than a header
    bytes.fromhex("00c4 0000000b 00000000"),             # paramSize says one more byte
    bytes.fromhex("00c1 0000000a 00000000"),             # a request's tag
])
def test_parse_response_refuses_malformed(response):
    with pytest.raises(ValueError):
        parse_response(response)


# ------------------------------------------------------------ TPM_Startup
@pytest.mark.parametrize("command", [
    cmd_pcr_read(0), cmd_extend(10, HELLO), cmd_get_random(4), cmd_save_state(),
])
def test_everything_before_startup_is_invalid_postinit(tpm, command):
    assert tpm.execute(command) == error_response(TPM_INVALID_POSTINIT)


def test_startup_clear_gives_pc_client_reset_values(started):
    for index in range(24):
        expected = ONES if 17 <= index <= 22 else ZEROS
        assert run(started, cmd_pcr_read(index)) == (TPM_SUCCESS, expected), index


def test_a_second_startup_is_invalid_postinit(started):
    assert run(started, cmd_startup(TPM_ST_CLEAR))[0] == TPM_INVALID_POSTINIT


@pytest.mark.parametrize("command, code", [
    (cmd_startup(0), TPM_BAD_PARAMETER),
    (cmd_startup(7), TPM_BAD_PARAMETER),
    (build_command(TPM_ORD_Startup, b"\x00"), TPM_BAD_PARAM_SIZE),
    (build_command(TPM_ORD_Startup, b"\x00\x01\x00"), TPM_BAD_PARAM_SIZE),
    (build_command(TPM_ORD_Startup, b"\x00\x01", tag=TPM_TAG_RQU_AUTH1_COMMAND), TPM_BADTAG),
])
def test_a_failed_startup_still_ends_post_init(tpm, command, code):
    assert run(tpm, command)[0] == code
    assert run(tpm, cmd_startup(TPM_ST_CLEAR))[0] == TPM_INVALID_POSTINIT
    assert run(tpm, cmd_pcr_read(0)) == (TPM_SUCCESS, ZEROS)


def test_init_asks_for_startup_again_and_resets_pcrs(started):
    run(started, cmd_extend(10, HELLO))
    started.init()
    assert run(started, cmd_pcr_read(10))[0] == TPM_INVALID_POSTINIT
    run(started, cmd_startup(TPM_ST_CLEAR))
    assert run(started, cmd_pcr_read(10)) == (TPM_SUCCESS, ZEROS)


# ------------------------------------------------------------ PCRs
def test_extend_of_hello_into_a_fresh_pcr(started):
    # SHA-1(20 zero bytes || SHA-1("hello")), as a TPM computes it.
    expected = bytes.fromhex("00629997206c7d587b4ed79aabc3db58c32e1492")
    assert started.execute(cmd_extend(10, HELLO)) == (
        bytes.fromhex("00c4 0000001e 00000000") + expected)
    assert started.execute(cmd_pcr_read(10)) == bytes.fromhex("00c4 0000001e 00000000") + expected


def test_extend_chain(started):
    value = ZEROS
    for event in (b"bios", b"bootloader", b"kernel", b"initrd", b"x" * 1000):
        digest = hashlib.sha1(event).digest()
        value = extended(value, digest)
        assert run(started, cmd_extend(4, digest)) == (TPM_SUCCESS, value)
    assert run(started, cmd_pcr_read(4)) == (TPM_SUCCESS, value)
    assert run(started, cmd_pcr_read(5)) == (TPM_SUCCESS, ZEROS)


@pytest.mark.parametrize("index", [16, 23])
def test_debug_and_application_pcrs_extend_from_zero(started, index):
    assert run(started, cmd_extend(index, HELLO)) == (TPM_SUCCESS, extended(ZEROS, HELLO))


@pytest.mark.parametrize("index", range(17, 23))
def test_dynamic_launch_pcrs_refuse_locality_zero(started, index):
    assert started.execute(cmd_extend(index, HELLO)) == error_response(TPM_BAD_LOCALITY)
    assert run(started, cmd_pcr_read(index)) == (TPM_SUCCESS, ONES)


@pytest.mark.parametrize("command", [
    cmd_pcr_read(24), cmd_pcr_read(0xFFFFFFFF), cmd_extend(24, HELLO), cmd_extend(0x80000000, HELLO),
])
def test_bad_pcr_index(started, command):
    assert started.execute(command) == error_response(TPM_BADINDEX)


# ------------------------------------------------------------ malformed commands
def _resized(command: bytes, delta: int) -> bytes:
    size = struct.unpack_from(">I", command, 2)[0]
    return command[:2] + struct.pack(">I", size + delta) + command[6:]


@pytest.mark.parametrize("command, code", [
    (build_command(0x12345), TPM_BAD_ORDINAL),
    (build_command(0x0), TPM_BAD_ORDINAL),
    (_resized(cmd_pcr_read(1), +1), TPM_BAD_PARAM_SIZE),      # paramSize above the bytes
    (_resized(cmd_pcr_read(1), -1), TPM_BAD_PARAM_SIZE),      # and below
    (_resized(build_command(0x12345), +4), TPM_BAD_PARAM_SIZE),  # size is checked first
    (cmd_pcr_read(1) + b"\x00", TPM_BAD_PARAM_SIZE),           # both wrong
    (build_command(TPM_ORD_PcrRead, b"\x00\x00\x00"), TPM_BAD_PARAM_SIZE),
    (build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01\x00"), TPM_BAD_PARAM_SIZE),
    (build_command(TPM_ORD_Extend, b"\x00\x00\x00\x0a" + HELLO[:19]), TPM_BAD_PARAM_SIZE),
    (build_command(TPM_ORD_GetRandom), TPM_BAD_PARAM_SIZE),
    (build_command(0x98, b"\x00"), TPM_BAD_PARAM_SIZE),
    (build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=TPM_TAG_RQU_AUTH1_COMMAND), TPM_BADTAG),
    (build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=0x00C4), TPM_BADTAG),
    (b"", TPM_BAD_PARAM_SIZE),
    (bytes.fromhex("00c1 0000000a 0000"), TPM_BAD_PARAM_SIZE),
    (build_command(0x12345, bytes(5000)), TPM_BAD_PARAM_SIZE),  # beyond the 4096-byte buffer
])
def test_malformed_commands(started, command, code):
    assert started.execute(command) == error_response(code)


def test_state_is_checked_before_the_tag(tpm):
    command = build_command(TPM_ORD_PcrRead, b"\x00\x00\x00\x01", tag=TPM_TAG_RQU_AUTH1_COMMAND)
    assert run(tpm, command)[0] == TPM_INVALID_POSTINIT


@pytest.mark.parametrize("tag, response_tag", [
    (0x00C1, 0x00C4), (0x00C2, 0x00C5), (0x00C3, 0x00C6), (0x1234, 0x00C4),
])
def test_bad_ordinal_answers_in_the_request_tags_kind(started, tag, response_tag):
    assert started.execute(build_command(0x12345, tag=tag)) == struct.pack(
        ">HII", response_tag, 10, TPM_BAD_ORDINAL)


def test_unknown_ordinals_are_bad_before_startup_too(tpm):
    assert run(tpm, build_command(0x12345))[0] == TPM_BAD_ORDINAL


# ------------------------------------------------------------ GetRandom
def test_get_random_is_the_seeded_stream(started):
    expected = random_stream(b"test seed", 37)
    assert started.execute(cmd_get_random(7)) == (
        bytes.fromhex("00c4 00000015 00000000 00000007") + expected[:7])
    assert run(started, cmd_get_random(30)) == (TPM_SUCCESS, struct.pack(">I", 30) + expected[7:])


def test_get_random_is_deterministic_per_seed():
    def draw(seed):
        tpm = Tpm12(seed)
        run(tpm, cmd_startup(TPM_ST_CLEAR))
        return [run(tpm, cmd_get_random(n)) for n in (1, 20, 21, 100)]
    assert draw(b"a") == draw(b"a")
    assert draw(b"a") != draw(b"b")


@pytest.mark.parametrize("requested, given", [(0, 0), (4082, 4082), (4083, 4082), (0xFFFFFFFF, 4082)])
def test_get_random_gives_at_most_a_buffer(started, requested, given):
    response = started.execute(cmd_get_random(requested))
    assert len(response) <= 4096
    code, body = parse_response(response)
    assert code == TPM_SUCCESS
    assert struct.unpack(">I", body[:4])[0] == given == len(body) - 4 <= MAX_RANDOM_BYTES


# ------------------------------------------------------------ ST_DEACTIVATED
def test_deactivated_tpm_measures_but_does_not_tell(tpm):
    assert run(tpm, cmd_startup(TPM_ST_DEACTIVATED)) == (TPM_SUCCESS, b"")
    assert run(tpm, cmd_pcr_read(10))[0] == TPM_DEACTIVATED
    assert run(tpm, cmd_pcr_read(99))[0] == TPM_DEACTIVATED      # the state before the index
    assert run(tpm, cmd_get_random(4))[0] == TPM_DEACTIVATED
    assert run(tpm, cmd_extend(10, HELLO)) == (TPM_SUCCESS, ZEROS)
    assert run(tpm, cmd_extend(99, HELLO))[0] == TPM_BADINDEX
    # The extend did happen: a resume from a saved state shows it.
    assert run(tpm, cmd_save_state())[0] == TPM_SUCCESS
    tpm.init()
    assert run(tpm, cmd_startup(TPM_ST_STATE))[0] == TPM_SUCCESS
    assert run(tpm, cmd_pcr_read(10))[0] == TPM_DEACTIVATED
    tpm.init()
    run(tpm, cmd_startup(TPM_ST_CLEAR))
    assert run(tpm, cmd_pcr_read(10)) == (TPM_SUCCESS, ZEROS)


# ------------------------------------------------------------ SaveState and ST_STATE
def test_startup_state_brings_back_pcrs_0_to_15_only(started):
    for index in (0, 10, 15, 16, 23):
        run(started, cmd_extend(index, HELLO))
    assert run(started, cmd_save_state()) == (TPM_SUCCESS, b"")
    started.init()
    assert run(started, cmd_startup(TPM_ST_STATE)) == (TPM_SUCCESS, b"")
    for index in (0, 10, 15):
        assert run(started, cmd_pcr_read(index)) == (TPM_SUCCESS, extended(ZEROS, HELLO))
    for index in (16, 23):
        assert run(started, cmd_pcr_read(index)) == (TPM_SUCCESS, ZEROS)
    assert run(started, cmd_pcr_read(17)) == (TPM_SUCCESS, ONES)


def test_startup_state_without_a_saved_state_is_failure_mode(tpm):
    assert tpm.execute(cmd_startup(TPM_ST_STATE)) == error_response(TPM_FAILEDSELFTEST)
    assert run(tpm, cmd_pcr_read(0))[0] == TPM_FAILEDSELFTEST
    assert run(tpm, cmd_extend(0, HELLO))[0] == TPM_FAILEDSELFTEST
    assert run(tpm, cmd_get_random(1))[0] == TPM_FAILEDSELFTEST
    assert run(tpm, cmd_save_state())[0] == TPM_FAILEDSELFTEST
    assert run(tpm, cmd_startup(TPM_ST_CLEAR))[0] == TPM_INVALID_POSTINIT
    assert run(tpm, build_command(0x12345))[0] == TPM_BAD_ORDINAL
    assert run(tpm, cmd_pcr_read(0) + b"\x00")[0] == TPM_BAD_PARAM_SIZE
    tpm.init()      # only a platform reset leaves failure mode
    assert run(tpm, cmd_startup(TPM_ST_CLEAR))[0] == TPM_SUCCESS
    assert run(tpm, cmd_pcr_read(0)) == (TPM_SUCCESS, ZEROS)


@pytest.mark.parametrize("next_command", [
    cmd_pcr_read(10), cmd_get_random(1), build_command(0x12345), cmd_extend(99, HELLO),
])
def test_any_command_after_save_state_invalidates_it(started, next_command):
    run(started, cmd_save_state())
    started.execute(next_command)
    started.init()
    assert run(started, cmd_startup(TPM_ST_STATE))[0] == TPM_FAILEDSELFTEST


def test_after_tpm_init_only_startup_touches_the_saved_state(started):
    run(started, cmd_extend(10, HELLO))
    run(started, cmd_save_state())
    started.init()
    assert run(started, cmd_pcr_read(10))[0] == TPM_INVALID_POSTINIT
    assert run(started, build_command(0x12345))[0] == TPM_BAD_ORDINAL
    assert run(started, cmd_startup(TPM_ST_STATE))[0] == TPM_SUCCESS
    assert run(started, cmd_pcr_read(10)) == (TPM_SUCCESS, extended(ZEROS, HELLO))


def test_a_command_of_the_wrong_size_does_not_reach_the_saved_state(started):
    run(started, cmd_extend(10, HELLO))
    run(started, cmd_save_state())
    started.execute(cmd_pcr_read(10) + b"\x00")
    started.init()
    assert run(started, cmd_startup(TPM_ST_STATE))[0] == TPM_SUCCESS
    assert run(started, cmd_pcr_read(10)) == (TPM_SUCCESS, extended(ZEROS, HELLO))


def test_startup_consumes_the_saved_state(started):
    run(started, cmd_save_state())
    started.init()
    assert run(started, cmd_startup(TPM_ST_CLEAR))[0] == TPM_SUCCESS
    started.init()
    assert run(started, cmd_startup(TPM_ST_STATE))[0] == TPM_FAILEDSELFTEST


# ------------------------------------------------------------ persistence
def test_a_new_instance_on_the_same_file_resumes(tmp_path):
    path = str(tmp_path / "vtpm.json")
    first = Tpm12(b"seed", path)
    run(first, cmd_startup(TPM_ST_CLEAR))
    value = run(first, cmd_extend(10, HELLO))[1]
    drawn = run(first, cmd_get_random(10))[1][4:]

    second = Tpm12(b"seed", path)
    assert run(second, cmd_pcr_read(10)) == (TPM_SUCCESS, value)
    assert run(second, cmd_startup(TPM_ST_CLEAR))[0] == TPM_INVALID_POSTINIT
    # The random stream goes on; it does not start over.
    assert run(second, cmd_get_random(10))[1][4:] == random_stream(b"seed", 20)[10:]
    assert drawn == random_stream(b"seed", 10)


def test_state_files_are_per_instance(tmp_path):
    one = Tpm12(b"seed", str(tmp_path / "1.json"))
    two = Tpm12(b"seed", str(tmp_path / "2.json"))
    for tpm in (one, two):
        run(tpm, cmd_startup(TPM_ST_CLEAR))
    run(one, cmd_extend(10, HELLO))
    assert run(Tpm12(b"seed", str(tmp_path / "2.json")), cmd_pcr_read(10)) == (TPM_SUCCESS, ZEROS)


def test_init_and_saved_state_persist(tmp_path):
    path = str(tmp_path / "vtpm.json")
    tpm = Tpm12(b"seed", path)
    run(tpm, cmd_startup(TPM_ST_CLEAR))
    run(tpm, cmd_extend(10, HELLO))
    run(tpm, cmd_save_state())
    tpm.init()
    again = Tpm12(b"seed", path)
    assert "awaiting TPM_Startup" in again.dump()
    assert run(again, cmd_startup(TPM_ST_STATE))[0] == TPM_SUCCESS
    assert run(again, cmd_pcr_read(10)) == (TPM_SUCCESS, extended(ZEROS, HELLO))


def test_a_fresh_file_is_written_at_once(tmp_path):
    path = tmp_path / "vtpm.json"
    Tpm12(b"seed", str(path))
    assert json.loads(path.read_text())["post_init"] is True


def test_writes_leave_no_temporary_files(tmp_path):
    tpm = Tpm12(b"seed", str(tmp_path / "vtpm.json"))
    run(tpm, cmd_startup(TPM_ST_CLEAR))
    for i in range(20):
        run(tpm, cmd_extend(i % 16, HELLO))
    assert os.listdir(tmp_path) == ["vtpm.json"]


def test_without_a_path_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tpm = Tpm12(b"seed")
    run(tpm, cmd_startup(TPM_ST_CLEAR))
    run(tpm, cmd_extend(1, HELLO))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"{}", b"not json", b'{"format": "xenlab-tpm12/1"}'])
def test_a_damaged_state_file_is_refused(tmp_path, content):
    path = tmp_path / "vtpm.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a TPM 1.2 state file"):
        Tpm12(b"seed", str(path))


def test_a_snapshot_goes_on_as_the_original(started):
    run(started, cmd_extend(10, HELLO))
    copy = pickle.loads(pickle.dumps(started))
    for command in (cmd_extend(10, HELLO), cmd_get_random(9), cmd_pcr_read(10)):
        assert copy.execute(command) == started.execute(command)


def test_dump_names_the_measured_pcrs(started):
    run(started, cmd_extend(10, HELLO))
    text = started.dump()
    assert "operational" in text and "PCR-10: " + extended(ZEROS, HELLO).hex() in text
    assert "PCR-11" not in text


def test_ordinal_constants_are_the_spec_values():
    assert (TPM_ORD_Extend, TPM_ORD_PcrRead, TPM_ORD_GetRandom, TPM_ORD_Startup) == (
        0x14, 0x15, 0x46, 0x99)
