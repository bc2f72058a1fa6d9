"""`xl list -v` and `xl list -l`, and the uuids behind them: each domain its
own, repeatable, under its own /vm directory."""

from __future__ import annotations

import uuid

import pytest

from hv.host import Host
from hv.xen.hypervisor import MiB
from xl.cli import render_list
from xl.toolstack import Toolstack, ToolstackError

NS = 1_000_000_000


def toolstack():
    return Toolstack(Host(cpus=2, memory=2048 * MiB, dom0_memory=512 * MiB))


def test_each_domain_gets_its_own_uuid_and_vm_directory():
    ts = toolstack()
    a = ts.create({"name": "a", "memory": 32})
    b = ts.create({"name": "b", "memory": 32})
    given = ts.create({"name": "c", "memory": 32, "uuid": "6a1c5e4e-47a3-4c3b-9a1e-0f3c2f6e9d10"})
    rows = {d["name"]: d for d in ts.list_domains()}
    assert rows["c"]["uuid"] == "6a1c5e4e-47a3-4c3b-9a1e-0f3c2f6e9d10"
    assert uuid.UUID(rows["a"]["uuid"]).version == 4 and rows["a"]["uuid"] != rows["b"]["uuid"]
    for name, domid in (("a", a), ("b", b), ("c", given)):
        assert ts.xs.read(f"/local/domain/{domid}/vm").decode() == f"/vm/{rows[name]['uuid']}"
        assert ts.xs.read(f"/vm/{rows[name]['uuid']}/name").decode() == name
    ts.destroy("a")          # takes its own /vm directory, no one else's
    assert ts.xs.read(f"/vm/{rows['b']['uuid']}/name") == b"b"
    # The same commands at the same times give the same uuids.
    again = toolstack()
    again.create({"name": "a", "memory": 32})
    assert again.list_domains()[1]["uuid"] == rows["a"]["uuid"]


def test_list_verbose_adds_uuid_reason_and_label():
    ts = toolstack()
    ts.create({"name": "crasher", "memory": 32, "workload": ["crash"], "on_crash": "preserve"})
    ts.create({"name": "idler", "memory": 32})
    ts.host.run(until=ts.host.now + NS // 10)
    rows = {d["name"]: d for d in ts.list_domains()}
    assert rows["crasher"]["shutdown_reason"] == 3 and rows["idler"]["shutdown_reason"] is None
    text = render_list([rows["crasher"], rows["idler"]], verbose=True).splitlines()
    assert text[0] == ("Name                                        ID   Mem VCPUs\tState\tTime(s)"
                       "   UUID                            Reason-Code\tSecurity Label")
    assert text[1].endswith(f"       0.0 {rows['crasher']['uuid']}        3                -")
    assert text[2].endswith(f" {rows['idler']['uuid']}        -                -")


def test_list_long_gives_libxl_shaped_configs_without_dom0():
    ts = toolstack()
    domid = ts.create({"name": "web", "memory": 48, "vcpus": 1, "on_crash": "restart"})
    rows = ts.list_long()
    assert [r["domid"] for r in rows] == [domid]
    config = rows[0]["config"]
    assert config["c_info"]["name"] == "web"
    assert config["c_info"]["uuid"] == ts.list_domains()[1]["uuid"]
    assert config["b_info"]["max_memkb"] == 48 * 1024 and config["on_crash"] == "restart"
    assert ts.list_long("web") == rows


def test_create_paused_never_runs_and_does_not_keep_paused_in_its_config():
    ts = toolstack()
    domid = ts.create({"name": "held", "memory": 32, "workload": ["echo hi"], "paused": True})
    ts.host.run(until=ts.host.now + NS // 10)
    row = ts.list_domains()[1]
    assert (row["state"], row["cpu_time_s"]) == ("--p---", 0.0)
    assert ts.host.xen.trace.since(0) and not [r for r in ts.host.xen.trace.since(0)
                                               if r.kind == "guest" and r.domid == domid]
    assert "paused" not in ts.config_of(domid)
    ts.unpause("held")
    ts.host.run(until=ts.host.now + NS // 10)
    assert "hi" in ts.console_output("held")


def test_a_create_that_fails_after_the_build_leaves_nothing(monkeypatch):
    ts = toolstack()
    free = ts.host.xen.heap.free_pages
    before = ts.xs.directory("/local/domain")
    # Built, then refused as its scheduler parameters are set (Xen itself
    # refuses none of them, so the refusal is made here).

    def refuse(domid, cmd, params):
        raise ToolstackError(f"scheduler_op on domain {domid}: error -22")

    monkeypatch.setattr(ts, "_sched", refuse)
    with pytest.raises(ToolstackError, match="scheduler_op"):
        ts.create({"name": "bad", "memory": 32, "cap": 50})
    assert [d["name"] for d in ts.list_domains()] == ["Domain-0"]
    assert ts.xs.directory("/local/domain") == before
    assert ts.xs.directory("/vm") == []
    ts.host.run(until=ts.host.now + NS // 10)
    assert ts.host.xen.heap.free_pages == free


def test_rename_restart_preserves_the_dead_domain_under_a_new_name_and_uuid():
    ts = toolstack()
    old = ts.create({"name": "phoenix", "memory": 16, "on_crash": "rename-restart",
                     "workload": ["sleep 10ms", "crash"]})
    uuid_before = ts.list_domains()[1]["uuid"]
    ts.host.run(until=ts.host.now + NS // 20)
    (domid, action), = ts.pending_actions()
    assert (domid, action) == (old, "rename-restart")
    new = ts.on_shutdown(domid, action)["domid"]
    # The virtual wall clock starts at 2026-01-01 00:00 UTC.
    preserved = ts.xs.read(f"/local/domain/{old}/name").decode()
    assert preserved == "phoenix-20260101T0000Z"
    vm = ts.xs.read(f"/local/domain/{old}/vm").decode()
    assert vm != f"/vm/{uuid_before}" and ts.xs.read(f"{vm}/uuid").decode() == vm[4:]
    assert ts.xs.read(f"/local/domain/{new}/vm").decode() == f"/vm/{uuid_before}"
    assert ts.xs.read(f"/vm/{uuid_before}/name") == b"phoenix"
    rows = {d["name"]: d for d in ts.list_domains()}
    assert rows["phoenix"]["domid"] == new and rows[preserved]["state"] == "---sc-"
