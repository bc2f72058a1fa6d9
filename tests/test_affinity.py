"""cpus= and cpus_soft=: a config's vCPU affinities, read as xl reads them,
set before the domain first runs, kept in libxl's JSON shape, and obeyed
by the scheduler."""

from __future__ import annotations

import pytest

from hv.host import Host
from hv.xen.hypervisor import MiB
from xl.domconfig import ConfigError, domain_config, libxl_json
from xl.toolstack import Toolstack
from xl.xlcfg import load_config

NS = 1_000_000_000


def config(tmp_path, text):
    path = tmp_path / "pinned.cfg"
    path.write_text('name = "pinned"\nmemory = 16\nvcpus = 3\nworkload = [ "burn 100%" ]\n' + text)
    return domain_config(load_config(str(path)), str(path))[0]


def test_per_vcpu_hard_and_shared_soft_affinity(tmp_path):
    cfg = config(tmp_path, 'cpus = [ "1", "2-3" ]\ncpus_soft = "0,3"\n')
    ts = Toolstack(Host(cpus=4, memory=2048 * MiB, dom0_memory=512 * MiB))
    ts.create(cfg)
    ts.host.run(until=ts.host.now + NS // 10)
    rows = ts.vcpu_list("pinned")
    assert [(r["affinity_hard"], r["affinity_soft"]) for r in rows] == [
        ("1", "0,3"), ("2-3", "0,3"), ("all", "0,3")]
    assert rows[0]["cpu"] == 1 and rows[1]["cpu"] in (2, 3)      # where they may run
    b_info = ts.list_long("pinned")[0]["config"]["b_info"]
    assert b_info["vcpu_hard_affinity"] == [[1], [2, 3], [0, 1, 2, 3]]
    assert b_info["vcpu_soft_affinity"] == [[0, 3]] * 3
    assert libxl_json(cfg)["b_info"].get("vcpu_hard_affinity") is None    # no host: no bitmaps


def test_one_list_pins_every_vcpu_and_nodes_are_the_hosts_one_node(tmp_path):
    ts = Toolstack(Host(cpus=4, memory=2048 * MiB, dom0_memory=512 * MiB))
    ts.create(config(tmp_path, 'cpus = "node:0,^0"\n'))
    ts.host.run(until=ts.host.now + NS // 10)
    assert {r["affinity_hard"] for r in ts.vcpu_list("pinned")} == {"1-3"}
    assert all(r["cpu"] != 0 for r in ts.vcpu_list("pinned"))


@pytest.mark.parametrize("line, message", [
    ('cpus = "3-1"', "invalid cpu range '3-1'"), ('cpus = "nodes:1"', "there is no NUMA node 1"),
    ('cpus_soft = [ "x" ]', "invalid cpu list 'x'"), ('cpus = [ [ "1" ] ]', "cpus is a CPU list")])
def test_bad_cpu_lists_name_where(tmp_path, line, message):
    with pytest.raises(ConfigError, match=rf"pinned.cfg:5:\d+: .*{message}"):
        config(tmp_path, line + "\n")
