"""Our xenstored against Xen's C xenstored, request for request.

tests/xs_scenarios.py holds scripted request sequences with the replies the
real daemon gave (tests/test_xenstored_oracle.py holds the table against
the real daemon itself, wherever it can run). Here every scenario runs
against this project's socket, and the replies must be the same: strictly,
including the steps whose answers depend on which domains exist (this host
has only dom0, as the real daemon's stub does). Where the real daemon can
run, the two also run side by side, live."""

from __future__ import annotations

import pytest

from hv.host import Host
from hv.xen.hypervisor import MiB
from tests.conftest import _hosts
from tests.test_xenstored_oracle import compare, run_scenario
from tests.xs_scenarios import SCENARIOS
from tests.xswire import real_xenstored


@pytest.fixture(scope="module")
def our_socket(tmp_path_factory):
    host = Host(cpus=2, memory=1024 * MiB, dom0_memory=128 * MiB)
    path = str(tmp_path_factory.mktemp("ours") / "socket")
    host.serve_xenstore(path)
    yield path, host
    host.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_our_xenstored_answers_as_the_c_daemon_did(our_socket, scenario):
    path, host = our_socket
    _hosts.append(host)
    problems = compare(scenario.expected(), run_scenario(path, scenario), scenario, strict=True,
                       labels=("C xsd", "ours"))
    if problems:
        pytest.fail(problems, pytrace=False)
    assert host.xenstored.check_store() == []


def test_side_by_side_with_the_real_daemon(our_socket, tmp_path):
    path, _host = our_socket
    with real_xenstored(tmp_path) as real:
        problems = []
        for scenario in SCENARIOS:
            diff = compare(run_scenario(real, scenario), run_scenario(path, scenario), scenario,
                           strict=True, labels=("C xsd", "ours"))
            if diff:
                problems.append(diff)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
