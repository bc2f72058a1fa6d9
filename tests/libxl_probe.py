"""What a C probe against Xen's own libxlutil and libxenlight needs to
build, or a skip saying what is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def libxl_toolchain() -> tuple[str, str, list[str]]:
    """(gcc, pkg-config, the compile and link flags for libxlutil and
    libxenlight); the test is skipped when any of them is missing."""
    gcc, pkg_config = shutil.which("gcc"), shutil.which("pkg-config")
    if gcc is None or pkg_config is None:
        pytest.skip("needs gcc and pkg-config")
    flags = subprocess.run([pkg_config, "--cflags", "--libs", "xlutil", "xenlight"],
                           capture_output=True, text=True)
    if flags.returncode != 0 or not Path("/usr/include/libxlutil.h").exists():
        pytest.skip("needs libxlutil and libxenlight (libxen-dev)")
    return gcc, pkg_config, flags.stdout.split()
