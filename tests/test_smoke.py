"""The package installs, the demo runs, and `xl` answers --version."""

import io
import os
import subprocess
import sys

from hv import demo


def test_demo_runs_and_reports_a_clean_machine():
    out = io.StringIO()
    assert demo.main(out) == 0
    text = out.getvalue()
    assert "The backend read b'hello' through grant ref 8" in text
    assert "event_channel_op" in text and "Audit: clean" in text


# The console script installed beside this interpreter.
XL = os.path.join(os.path.dirname(sys.executable), "xl")


def test_xl_prints_its_version():
    result = subprocess.run([XL, "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("xl (xenlab) ")
    assert "4.17" in result.stdout


def test_xl_help_lists_its_options():
    result = subprocess.run([XL, "--help"],
                            capture_output=True, text=True, check=True)
    assert "Usage: xl" in result.stdout and "--version" in result.stdout


def test_the_same_scenario_gives_the_same_trace():
    first, second = io.StringIO(), io.StringIO()
    demo.main(first)
    demo.main(second)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue().count(" hypercall ") == 6
