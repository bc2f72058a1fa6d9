"""The dashboard's way to the service: it starts one the first time, as any
`xl` command does, and after that reports a stopped host instead of
starting another."""

from __future__ import annotations

import pytest

from tests.tui_host import xl
from tui.source import Source
from xl.client import XlError


def test_the_first_call_starts_the_service_and_later_ones_do_not(tmp_path):
    home = tmp_path / "state"
    source = Source(str(home))
    try:
        assert source.call("status")["state_dir"] == str(home)
        xl(home, "host", "stop")
        with pytest.raises(XlError):
            source.call("status")                   # the old connection is gone
        with pytest.raises(XlError, match="no host service is running"):
            source.call("status")
        assert not (home / "xl.sock").exists()
    finally:
        source.close()
        xl(home, "host", "stop", check=False)
