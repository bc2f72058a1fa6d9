"""The example domain configurations are real xl.cfg: Xen's own parser
(libxlutil, from Debian's libxen-dev) reads each of them."""

import ctypes
import ctypes.util
import pathlib

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples" / "domains").glob("*.cfg"))


def _libxlutil():
    name = ctypes.util.find_library("xlutil")
    if name is None:
        pytest.skip("libxlutil (Debian libxen-dev) is not installed")
    lib = ctypes.CDLL(name)
    lib.xlu_cfg_init.restype = ctypes.c_void_p
    lib.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_readfile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_get_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                       ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.xlu_cfg_get_long.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_long), ctypes.c_int]
    lib.xlu_cfg_destroy.argtypes = [ctypes.c_void_p]
    return lib


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_libxlutil_reads_each_example(path):
    lib = _libxlutil()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    report = libc.fopen(b"/dev/null", b"w")
    cfg = lib.xlu_cfg_init(report, str(path).encode())
    try:
        assert lib.xlu_cfg_readfile(cfg, str(path).encode()) == 0
        name = ctypes.c_char_p()
        assert lib.xlu_cfg_get_string(cfg, b"name", ctypes.byref(name), 0) == 0
        assert name.value.decode() == path.stem
        memory = ctypes.c_long()
        assert lib.xlu_cfg_get_long(cfg, b"memory", ctypes.byref(memory), 0) == 0
        assert memory.value > 0
    finally:
        lib.xlu_cfg_destroy(cfg)
