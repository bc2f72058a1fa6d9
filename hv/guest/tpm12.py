"""The TPM behind a vTPM backend: a TPM 1.2 (PC Client) that answers real
TPM 1.2 command bytes with real response bytes.

Commands are big-endian: tag (TPM_TAG_RQU_COMMAND), paramSize, ordinal,
then the parameters; responses carry tag (TPM_TAG_RSP_COMMAND), paramSize,
returnCode, then the results. The subset is the one a measured boot needs:
TPM_Startup, TPM_Extend, TPM_PcrRead, TPM_GetRandom, and TPM_SaveState
(without which TPM_Startup(ST_STATE) could never succeed). Every other
ordinal is TPM_BAD_ORDINAL.

Behaviour follows the TCG TPM 1.2 Main specification (rev 116) and the PC
Client TIS, and where those leave a choice, libtpms (the TPM inside swtpm),
so the same bytes give the same answer from either; tests/test_swtpm.py
holds the two side by side. In particular:

- the checks run in libtpms' order: paramSize against the byte count,
  the ordinal, then per ordinal: parameter bytes present, TPM state
  (failure mode, post-init, deactivated), tag, no bytes left over,
  parameter values (TPM_Startup looks at its tag and size before the
  state);
- PCRs 0-16 and 23 start at zeros and 17-22 (the dynamic-launch PCRs) at
  0xFF..FF; the guest speaks at locality 0, where PCRs 17-22 may not be
  extended (TPM_BAD_LOCALITY);
- TPM_Startup clears the post-init state even when it fails, and consumes
  any TPM_SaveState blob; until the next TPM_Init, every other command,
  even an unknown one, invalidates that blob;
- TPM_BAD_ORDINAL keeps the auth variant of the request's tag (libtpms
  answers it before looking at the tag); every other error is tagged
  TPM_TAG_RSP_COMMAND;
- TPM_Startup(ST_STATE) with no blob puts the TPM in failure mode until
  the next TPM_Init (`init()`);
- TPM_GetRandom returns at most what fits a 4096-byte response (4082 bytes).

Random bytes are deterministic: SHA-1 in counter mode over the seed given
at construction, consumed as one stream, so the same seed and commands
give the same bytes.

What persists. A TPM has two kinds of state: what survives power loss only
when TPM_SaveState asked for it (PCRs 0-15, the deactivated flag) and
what lives only while powered (the PCRs themselves, the post-init and
failure flags). Here the TPM is part of a model that can stop and start
again under a running guest, so `state_path` keeps both, rewritten after
every command that changes anything: a new Tpm12 on the same path resumes
exactly where the last one stopped (swtpm does the same with its volatile
state), with no TPM_Startup, because the guest did that already. A power
cycle is `init()`: it keeps only the TPM_SaveState blob and the position
in the random stream; then TPM_Startup(ST_CLEAR) starts from fresh PCRs
and TPM_Startup(ST_STATE) brings PCRs 0-15 back from the blob, with 16-23
at their reset values, as a resume from sleep does.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile

TPM_TAG_RQU_COMMAND = 0x00C1
TPM_TAG_RQU_AUTH1_COMMAND = 0x00C2
TPM_TAG_RQU_AUTH2_COMMAND = 0x00C3
TPM_TAG_RSP_COMMAND = 0x00C4
TPM_TAG_RSP_AUTH1_COMMAND = 0x00C5
TPM_TAG_RSP_AUTH2_COMMAND = 0x00C6

TPM_ORD_Extend = 0x14
TPM_ORD_PcrRead = 0x15
TPM_ORD_GetRandom = 0x46
TPM_ORD_SaveState = 0x98
TPM_ORD_Startup = 0x99

TPM_ST_CLEAR = 1
TPM_ST_STATE = 2
TPM_ST_DEACTIVATED = 3

TPM_SUCCESS = 0x00
TPM_BADINDEX = 0x02
TPM_BAD_PARAMETER = 0x03
TPM_DEACTIVATED = 0x06
TPM_BAD_ORDINAL = 0x0A
TPM_BAD_PARAM_SIZE = 0x19
TPM_FAILEDSELFTEST = 0x1C
TPM_BADTAG = 0x1E
TPM_INVALID_POSTINIT = 0x26
TPM_BAD_LOCALITY = 0x3D

NUM_PCRS = 24
SAVED_PCRS = 16            # 16-23 have pcrReset set: never part of a saved state
DIGEST_SIZE = 20
HEADER_SIZE = 10
TPM_BUFFER_SIZE = 4096     # libtpms' TPM_BUFFER_MAX, and one page of a vTPM ring
MAX_RANDOM_BYTES = TPM_BUFFER_SIZE - HEADER_SIZE - 4

_HEADER = struct.Struct(">HII")
_STATE_FORMAT = "xenlab-tpm12/1"

# PC Client TIS, PCR attributes: the localities allowed to extend each PCR,
# as a bit per locality (bit n = locality n).
_ALL_LOCALITIES = 0x1F
_EXTEND_LOCALITIES = (
    [_ALL_LOCALITIES] * 17 + [0x1C, 0x1C, 0x0C, 0x0E, 0x04, 0x04] + [_ALL_LOCALITIES]
)
_ERROR_TAGS = {
    TPM_TAG_RQU_COMMAND: TPM_TAG_RSP_COMMAND,
    TPM_TAG_RQU_AUTH1_COMMAND: TPM_TAG_RSP_AUTH1_COMMAND,
    TPM_TAG_RQU_AUTH2_COMMAND: TPM_TAG_RSP_AUTH2_COMMAND,
}
_ZEROS = bytes(DIGEST_SIZE)
_ONES = b"\xff" * DIGEST_SIZE


def _reset_value(index: int) -> bytes:
    return _ONES if 17 <= index <= 22 else _ZEROS


def _power_on_pcrs() -> list[bytes]:
    return [_reset_value(i) for i in range(NUM_PCRS)]


class TpmError(Exception):
    """A command ends with this TPM return code and no results."""

    def __init__(self, code: int):
        super().__init__(f"TPM return code {code:#x}")
        self.code = code


# ------------------------------------------------------------ the wire format
def build_command(ordinal: int, params: bytes = b"", tag: int = TPM_TAG_RQU_COMMAND) -> bytes:
    return _HEADER.pack(tag, HEADER_SIZE + len(params), ordinal) + params


def cmd_startup(startup_type: int) -> bytes:
    return build_command(TPM_ORD_Startup, struct.pack(">H", startup_type))


def cmd_extend(pcr: int, digest: bytes) -> bytes:
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"an extend takes a {DIGEST_SIZE}-byte digest, not {len(digest)} bytes")
    return build_command(TPM_ORD_Extend, struct.pack(">I", pcr) + bytes(digest))


def cmd_pcr_read(pcr: int) -> bytes:
    return build_command(TPM_ORD_PcrRead, struct.pack(">I", pcr))


def cmd_get_random(count: int) -> bytes:
    return build_command(TPM_ORD_GetRandom, struct.pack(">I", count))


def cmd_save_state() -> bytes:
    return build_command(TPM_ORD_SaveState)


def build_response(return_code: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(TPM_TAG_RSP_COMMAND, HEADER_SIZE + len(body), return_code) + body


def parse_response(response: bytes) -> tuple[int, bytes]:
    """(returnCode, the bytes after the header) of a well-formed response."""
    if len(response) < HEADER_SIZE:
        raise ValueError(f"a TPM response has a {HEADER_SIZE}-byte header; got {len(response)} bytes")
    tag, size, code = _HEADER.unpack_from(response)
    if tag not in (TPM_TAG_RSP_COMMAND, TPM_TAG_RSP_AUTH1_COMMAND, TPM_TAG_RSP_AUTH2_COMMAND):
        raise ValueError(f"not a TPM 1.2 response tag: {tag:#06x}")
    if size != len(response):
        raise ValueError(f"response paramSize {size} but {len(response)} bytes")
    return code, bytes(response[HEADER_SIZE:])


class _Params:
    """The parameter bytes of one command, read front to back; running short
    is the TPM's TPM_BAD_PARAM_SIZE."""

    def __init__(self, data: bytes):
        self._data = data
        self._at = 0

    def _take(self, n: int) -> bytes:
        if len(self._data) - self._at < n:
            raise TpmError(TPM_BAD_PARAM_SIZE)
        chunk = self._data[self._at:self._at + n]
        self._at += n
        return chunk

    def u16(self) -> int:
        return struct.unpack(">H", self._take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def digest(self) -> bytes:
        return self._take(DIGEST_SIZE)

    def finish(self) -> None:
        if self._at != len(self._data):
            raise TpmError(TPM_BAD_PARAM_SIZE)


# ------------------------------------------------------------ the TPM
class Tpm12:
    """One TPM 1.2 instance. ``execute`` takes a command's bytes and gives
    the response's bytes; nothing else reaches the TPM's state but ``init``,
    the TPM_Init signal of a platform reset."""

    locality = 0    # commands arrive from the guest's OS through the vTPM

    def __init__(self, seed: bytes, state_path: str | None = None):
        self.seed = bytes(seed)
        self.state_path = state_path
        self._written: bytes | None = None
        self._saved: dict | None = None     # the TPM_SaveState blob
        self._saved_this_session = False
        self._random_offset = 0
        if state_path is not None and os.path.exists(state_path):
            self._load(state_path)
        else:
            self._power_on()
            self._persist()

    def _power_on(self) -> None:
        self._pcrs = _power_on_pcrs()
        self._post_init = True
        self._failed = False
        self._deactivated = False
        # The blob outlives TPM_Init; the duty to drop it on the next
        # command does not.
        self._saved_this_session = False

    def init(self) -> None:
        """TPM_Init: the platform was reset; the next command must be a
        TPM_Startup."""
        self._power_on()
        self._persist()

    def execute(self, command: bytes) -> bytes:
        response = self._process(bytes(command))
        self._persist()
        return response

    def _process(self, command: bytes) -> bytes:
        # A longer command could not enter libtpms' input buffer whole, so
        # its paramSize cannot match what the TPM received.
        if not HEADER_SIZE <= len(command) <= TPM_BUFFER_SIZE:
            return build_response(TPM_BAD_PARAM_SIZE)
        tag, size, ordinal = _HEADER.unpack_from(command)
        if size != len(command):
            return build_response(TPM_BAD_PARAM_SIZE)
        if self._saved_this_session and ordinal != TPM_ORD_Startup:
            self._saved = None
            self._saved_this_session = False
        handler = self._HANDLERS.get(ordinal)
        if handler is None:
            return _HEADER.pack(_ERROR_TAGS.get(tag, TPM_TAG_RSP_COMMAND), HEADER_SIZE,
                                TPM_BAD_ORDINAL)
        try:
            body = handler(self, tag, _Params(command[HEADER_SIZE:]))
        except TpmError as e:
            return build_response(e.code)
        return build_response(TPM_SUCCESS, body)

    # ------------------------------------------------------------ checks
    def _check_state(self, *, needs_activation: bool) -> None:
        if self._failed:
            raise TpmError(TPM_FAILEDSELFTEST)
        if self._post_init:
            raise TpmError(TPM_INVALID_POSTINIT)
        if needs_activation and self._deactivated:
            raise TpmError(TPM_DEACTIVATED)

    @staticmethod
    def _check_tag(tag: int) -> None:
        if tag != TPM_TAG_RQU_COMMAND:
            raise TpmError(TPM_BADTAG)

    @staticmethod
    def _check_index(index: int) -> None:
        if index >= NUM_PCRS:
            raise TpmError(TPM_BADINDEX)

    # ------------------------------------------------------------ ordinals
    def _startup(self, tag: int, params: _Params) -> bytes:
        try:
            startup_type = params.u16()
            self._check_tag(tag)
            params.finish()
            if not self._post_init:
                raise TpmError(TPM_INVALID_POSTINIT)
            if self._failed:
                raise TpmError(TPM_FAILEDSELFTEST)
            if startup_type == TPM_ST_CLEAR:
                self._pcrs = _power_on_pcrs()
                self._deactivated = False
            elif startup_type == TPM_ST_STATE:
                self._resume_saved_state()
            elif startup_type == TPM_ST_DEACTIVATED:
                self._deactivated = True
            else:
                raise TpmError(TPM_BAD_PARAMETER)
            return b""
        finally:
            # The spec's last two steps run whatever happened before them.
            self._saved = None
            self._saved_this_session = False
            self._post_init = False

    def _resume_saved_state(self) -> None:
        if self._saved is None:
            self._failed = True
            raise TpmError(TPM_FAILEDSELFTEST)
        saved = [bytes.fromhex(v) for v in self._saved["pcrs"]]
        self._pcrs = saved + [_reset_value(i) for i in range(SAVED_PCRS, NUM_PCRS)]
        self._deactivated = self._saved["deactivated"]

    def _save_state(self, tag: int, params: _Params) -> bytes:
        self._check_state(needs_activation=False)
        self._check_tag(tag)
        params.finish()
        self._saved = {
            "pcrs": [v.hex() for v in self._pcrs[:SAVED_PCRS]],
            "deactivated": self._deactivated,
        }
        self._saved_this_session = True
        return b""

    def _pcr_read(self, tag: int, params: _Params) -> bytes:
        index = params.u32()
        self._check_state(needs_activation=True)
        self._check_tag(tag)
        params.finish()
        self._check_index(index)
        return self._pcrs[index]

    def _extend(self, tag: int, params: _Params) -> bytes:
        index = params.u32()
        digest = params.digest()
        self._check_state(needs_activation=False)
        self._check_tag(tag)
        params.finish()
        self._check_index(index)
        if not _EXTEND_LOCALITIES[index] & (1 << self.locality):
            raise TpmError(TPM_BAD_LOCALITY)
        value = hashlib.sha1(self._pcrs[index] + digest).digest()
        self._pcrs[index] = value
        # A deactivated TPM still measures, but does not tell.
        return _ZEROS if self._deactivated else value

    def _get_random(self, tag: int, params: _Params) -> bytes:
        requested = params.u32()
        self._check_state(needs_activation=True)
        self._check_tag(tag)
        params.finish()
        data = self._random_bytes(min(requested, MAX_RANDOM_BYTES))
        return struct.pack(">I", len(data)) + data

    _HANDLERS = {
        TPM_ORD_Startup: _startup,
        TPM_ORD_SaveState: _save_state,
        TPM_ORD_PcrRead: _pcr_read,
        TPM_ORD_Extend: _extend,
        TPM_ORD_GetRandom: _get_random,
    }

    def _random_bytes(self, count: int) -> bytes:
        block, skip = divmod(self._random_offset, DIGEST_SIZE)
        stream = bytearray()
        while len(stream) < skip + count:
            stream += hashlib.sha1(self.seed + block.to_bytes(8, "big")).digest()
            block += 1
        self._random_offset += count
        return bytes(stream[skip:skip + count])

    # ------------------------------------------------------------ persistence
    def _encode(self) -> bytes:
        state = {
            "format": _STATE_FORMAT,
            "post_init": self._post_init,
            "failed": self._failed,
            "deactivated": self._deactivated,
            "pcrs": [v.hex() for v in self._pcrs],
            "saved": self._saved,
            "saved_this_session": self._saved_this_session,
            "random_offset": self._random_offset,
        }
        return (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()

    def _persist(self) -> None:
        if self.state_path is None:
            return
        data = self._encode()
        if data == self._written:
            return
        directory = os.path.dirname(os.path.abspath(self.state_path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(self.state_path) + ".")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                # On disk before the rename, so a crash leaves the old state
                # or the new, never a torn one.
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.state_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._written = data

    def _load(self, path: str) -> None:
        with open(path, "rb") as f:
            data = f.read()
        try:
            state = json.loads(data)
            if state.get("format") != _STATE_FORMAT:
                raise ValueError(f"format {state.get('format')!r}")
            pcrs = [bytes.fromhex(v) for v in state["pcrs"]]
            saved = state["saved"]
            if len(pcrs) != NUM_PCRS or any(len(v) != DIGEST_SIZE for v in pcrs):
                raise ValueError("PCR bank")
            if saved is not None and len(saved["pcrs"]) != SAVED_PCRS:
                raise ValueError("saved PCRs")
            self._pcrs = pcrs
            self._post_init = bool(state["post_init"])
            self._failed = bool(state["failed"])
            self._deactivated = bool(state["deactivated"])
            self._saved = saved
            self._saved_this_session = bool(state["saved_this_session"])
            self._random_offset = int(state["random_offset"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: not a TPM 1.2 state file ({e})") from None
        self._written = data

    # ------------------------------------------------------------ debug
    def dump(self) -> str:
        if self._failed:
            mode = "failure mode"
        elif self._post_init:
            mode = "awaiting TPM_Startup"
        else:
            mode = "deactivated" if self._deactivated else "operational"
        lines = [f"TPM 1.2: {mode}; saved state: {'yes' if self._saved else 'no'}; "
                 f"random bytes given: {self._random_offset}"]
        for i, value in enumerate(self._pcrs):
            if value != _reset_value(i):
                lines.append(f"  PCR-{i:02d}: {value.hex()}")
        return "\n".join(lines)
