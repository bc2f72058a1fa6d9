"""A TPM 1.2 answered by a real swtpm process (libtpms), behind the same
``execute(command) -> bytes`` as the built-in Tpm12, for holding the one
against the other or for trading determinism for the real implementation.

One swtpm process per instance, in TPM 1.2 mode (no --tpm2), its state in
a directory of the instance's own, reached over two UNIX sockets: the
data channel carries TPM commands and responses, the control channel
swtpm's out-of-band commands (a big-endian u32 code and its arguments;
a u32 result back).

State. swtpm keeps the permanent state and a TPM_SaveState blob in its
directory by itself; the volatile state (PCRs, post-init) only when told,
which ``close()`` does. Starting consumes what a predecessor left, so a new
instance on the same directory resumes where the last one stopped, as
with Tpm12's state file; an instance that died without ``close()`` comes
back as after a power loss. ``init()`` is TPM_Init. Every TPM_Init costs
libtpms a self-test that generates a 2048-bit RSA key: a tenth of a second
or more.

swtpm_setup is not needed: it makes an endorsement key, certificates and
an owner, none of which this subset of commands touches.

Framing. swtpm reads a command as whatever arrives once it has the 10
header bytes, up to its 4096-byte buffer; it does not wait for paramSize
bytes. A command shorter than a header would leave it waiting and swallow
the start of the next one; a longer one than its buffer would be answered
twice. Both are answered here, without swtpm, with the TPM_BAD_PARAM_SIZE
the TPM gives every command whose paramSize it cannot match.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import weakref

from hv.guest.tpm12 import HEADER_SIZE, TPM_BAD_PARAM_SIZE, TPM_BUFFER_SIZE, build_response

CMD_INIT = 0x02
CMD_SHUTDOWN = 0x03
CMD_STORE_VOLATILE = 0x0A
INIT_FLAG_DELETE_VOLATILE = 1 << 0


class SwtpmError(RuntimeError):
    """swtpm could not be started, or stopped answering; ``stderr`` holds
    what it said."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message + (f"\nswtpm said:\n{stderr.rstrip()}" if stderr.strip() else ""))
        self.stderr = stderr


class SwtpmMissing(SwtpmError):
    """There is no swtpm program to run."""


def find_swtpm() -> str | None:
    return shutil.which("swtpm")


def available() -> bool:
    return find_swtpm() is not None


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("swtpm closed the connection")
        data += chunk
    return bytes(data)


def _stop_process(process: subprocess.Popen, workdir: str) -> None:
    """The last resort, also run when an instance is dropped unclosed or
    the interpreter exits: no swtpm outlives its owner, none is left a
    zombie."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(workdir, ignore_errors=True)


class Swtpm:
    """One TPM 1.2 instance in its own swtpm process."""

    def __init__(self, state_dir: str, *, swtpm: str | None = None,
                 start_timeout: float = 5.0, io_timeout: float = 10.0):
        program = swtpm or find_swtpm()
        if program is None or not os.access(program, os.X_OK):
            raise SwtpmMissing(f"swtpm is not installed (looked for {swtpm or 'swtpm on PATH'})")
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.io_timeout = io_timeout
        self._lock = threading.Lock()
        # UNIX socket paths must fit in 108 bytes, so they live in a short
        # private directory rather than beside the state.
        self._workdir = tempfile.mkdtemp(prefix="xenlab-swtpm-")
        self.data_path = os.path.join(self._workdir, "data")
        self.ctrl_path = os.path.join(self._workdir, "ctrl")
        self._stderr_path = os.path.join(self._workdir, "stderr")
        self._sock: socket.socket | None = None
        self._lost = ""     # why the data stream can no longer be trusted
        with open(self._stderr_path, "wb") as stderr:
            try:
                self._process = self._spawn(program, stderr)
            except OSError as e:
                shutil.rmtree(self._workdir, ignore_errors=True)
                raise SwtpmMissing(f"cannot run {program}: {e}") from None
        self._finalizer = weakref.finalize(self, _stop_process, self._process, self._workdir)
        try:
            self._sock = self._connect(start_timeout)
            # What a predecessor's close() stored is loaded, then deleted so
            # that a later init() cannot find it.
            self._control(CMD_INIT, struct.pack(">I", INIT_FLAG_DELETE_VOLATILE),
                          failure="swtpm could not start its TPM")
        except BaseException:
            self._finalizer()
            raise

    def _spawn(self, program: str, stderr) -> subprocess.Popen:
        return subprocess.Popen(
            [program, "socket",
             "--server", f"type=unixio,path={self.data_path}",
             "--ctrl", f"type=unixio,path={self.ctrl_path}",
             "--tpmstate", f"dir={self.state_dir}",
             # Should this process die, swtpm goes with its connection.
             "--terminate"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            # Keep a terminal's ^C for this process, which stops swtpm cleanly.
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def _stderr(self) -> str:
        try:
            with open(self._stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                self._process.wait()
                raise SwtpmError(f"swtpm exited with status {self._process.returncode} "
                                 "before it was ready", self._stderr())
            if os.path.exists(self.ctrl_path):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(self.data_path)
                except (FileNotFoundError, ConnectionRefusedError):
                    sock.close()
                else:
                    sock.settimeout(self.io_timeout)
                    return sock
            if time.monotonic() > deadline:
                raise SwtpmError(f"swtpm was not ready after {timeout} s", self._stderr())
            time.sleep(0.002)

    # ------------------------------------------------------------ commands
    def execute(self, command: bytes) -> bytes:
        command = bytes(command)
        if not HEADER_SIZE <= len(command) <= TPM_BUFFER_SIZE:
            return build_response(TPM_BAD_PARAM_SIZE)
        with self._lock:
            sock = self._open_socket()
            try:
                sock.sendall(command)
                header = _recv_exactly(sock, 6)
                size = struct.unpack(">I", header[2:6])[0]
                if size < HEADER_SIZE:
                    raise ConnectionError(f"swtpm answered with paramSize {size}")
                response = header + _recv_exactly(sock, size - 6)
            except OSError as e:
                # Half a response may still be on its way: the next one
                # read would not be the next one's.
                self._lost = f"swtpm stopped answering: {e}"
                raise SwtpmError(self._lost, self._stderr()) from None
            return response

    def init(self) -> None:
        """TPM_Init: the platform was reset; the next command must be a
        TPM_Startup."""
        with self._lock:
            self._open_socket()
            self._control(CMD_INIT, struct.pack(">I", INIT_FLAG_DELETE_VOLATILE))

    def _open_socket(self) -> socket.socket:
        if self._sock is None:
            raise SwtpmError("this swtpm instance is closed")
        if self._lost:
            raise SwtpmError(self._lost, self._stderr())
        return self._sock

    def _control(self, code: int, payload: bytes = b"", failure: str = "") -> None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ctrl:
                ctrl.settimeout(self.io_timeout)
                ctrl.connect(self.ctrl_path)
                ctrl.sendall(struct.pack(">I", code) + payload)
                result = struct.unpack(">I", _recv_exactly(ctrl, 4))[0]
        except OSError as e:
            raise SwtpmError(f"swtpm's control channel failed: {e}", self._stderr()) from None
        if result != 0:
            what = failure or f"swtpm control command {code:#x} failed"
            raise SwtpmError(f"{what} (TPM result {result:#x})", self._stderr())

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Store the volatile state for the next instance, shut swtpm down
        the way it asks to be (CMD_SHUTDOWN), and reap it."""
        with self._lock:
            sock, self._sock = self._sock, None
            if sock is None:
                return
            try:
                if self._process.poll() is None:
                    self._control(CMD_STORE_VOLATILE)
                    self._control(CMD_SHUTDOWN)
                    self._process.wait(timeout=self.io_timeout)
            except (SwtpmError, subprocess.TimeoutExpired):
                pass    # the finalizer below stops it the hard way
            finally:
                sock.close()
                self._finalizer()

    def __enter__(self) -> "Swtpm":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        raise TypeError("a running swtpm cannot be part of a snapshot")
