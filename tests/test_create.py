"""`xl create` from real config files: what the toolstack takes from them,
the dry run's libxl JSON, warnings for unknown keys, errors with
file:line:column that create nothing, and a created domain running."""

from __future__ import annotations

import json

import pytest

from tests.test_service import home, status, xl  # noqa: F401  (the fixture)
from xl.domconfig import ConfigError, domain_config, libxl_json
from xl.xlcfg import load_config, parse_xlcfg

CONFIG = """# two vCPUs, a disk and a vif
name = "alpha"
memory = 64
maxmem = 96
vcpus = 2
extra = "console=hvc0"
root = "/dev/xvda1 ro"
vif = [ 'mac=00:16:3e:00:00:01,ip=10.0.0.1,bridge=xenbr0,rate=10Mb/s@20ms' ]
disk = [ 'IMAGE,raw,xvda,rw' ]
workload = [ "echo hi", "idle" ]
on_crash = "preserve"
colour = "blue"
"""


def test_a_config_becomes_what_the_toolstack_builds():
    cfg = parse_xlcfg(CONFIG.replace("IMAGE", "/img/a.raw"), "a.cfg")
    config, warnings = domain_config(cfg, "a.cfg")
    assert warnings == ["a.cfg:12: unknown key 'colour' ignored"]
    assert (config["name"], config["memory"], config["maxmem"], config["vcpus"]) == ("alpha", 64, 96, 2)
    assert config["cmdline"] == "root=/dev/xvda1 ro console=hvc0"
    assert config["on_crash"] == "preserve" and config["on_reboot"] == "restart"
    out = libxl_json(config)
    assert out["b_info"]["max_memkb"] == 96 * 1024 and out["b_info"]["target_memkb"] == 64 * 1024
    assert out["b_info"]["avail_vcpus"] == [0, 1]
    assert out["disks"] == [{"pdev_path": "/img/a.raw", "vdev": "xvda", "format": "raw", "readwrite": 1}]
    nic = out["nics"][0]
    assert (nic["mac"], nic["ip"], nic["bridge"]) == ("00:16:3e:00:00:01", "10.0.0.1", "xenbr0")
    assert (nic["rate_bytes_per_interval"], nic["rate_interval_usecs"]) == (25000, 20000)


@pytest.mark.parametrize("text, message", [
    ('memory = 64\n', "a.cfg: the config gives no name"),
    ('name = "x"\nmemory = "lots"\n', "a.cfg:2:1: parameter `memory' is not a valid number"),
    ('name = "x"\nmemory = 64\nmaxmem = 32\n', "a.cfg:3:1: maxmem (32) is below memory (64)"),
    ('name = "x"\non_crash = "explode"\n', "a.cfg:2:1: on_crash must be one of"),
    ('name = "x"\ndisk = [ "/a,raw" ]\n', "a.cfg:2:1: "),
    ('name = "x"\nvcpus = 0\n', "a.cfg:2:1: vcpus must be at least 1, not 0"),
])
def test_configs_the_toolstack_cannot_build_say_where(text, message):
    with pytest.raises(ConfigError) as caught:
        domain_config(parse_xlcfg(text, "a.cfg"), "a.cfg")
    assert str(caught.value).startswith(message)


def test_yaml_and_toml_spell_the_same_config(tmp_path):
    cfg_path = tmp_path / "a.cfg"
    cfg_path.write_text('name = "alpha"\nmemory = 64\nvif = [ "mac=00:16:3e:00:00:01" ]\n')
    (tmp_path / "a.yaml").write_text('name: alpha\nmemory: 64\nvif:\n  - "mac=00:16:3e:00:00:01"\n')
    (tmp_path / "a.toml").write_text('name = "alpha"\nmemory = 64\nvif = ["mac=00:16:3e:00:00:01"]\n')
    configs = [domain_config(load_config(tmp_path / n), n)[0] for n in ("a.cfg", "a.yaml", "a.toml")]
    assert configs[0] == configs[1] == configs[2]


def test_xl_create_dry_run_error_and_create(home, tmp_path):  # noqa: F811
    image = tmp_path / "a.raw"
    image.write_bytes(bytes(8 << 20))
    cfg = tmp_path / "alpha.cfg"
    cfg.write_text(CONFIG.replace("IMAGE", str(image)))
    dry = xl(home, "create", "-n", str(cfg), check=True)
    assert json.loads(dry.stdout)["c_info"] == {"type": "pv", "name": "alpha"}
    assert "xl: warning: " in dry.stderr and "unknown key 'colour'" in dry.stderr
    assert not (home / "xl.sock").exists()                 # a dry run needs no host
    bad = tmp_path / "bad.cfg"
    bad.write_text('name = "b\nmemory = 3\n')
    refused = xl(home, "create", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith(f"xl: {bad}:1:8: config parsing error")
    xl(home, "create", str(cfg), check=True)
    rows = {d["name"]: d for d in json.loads(xl(home, "list", "--json", check=True).stdout)}
    assert set(rows) == {"Domain-0", "alpha"}                 # the bad one left nothing
    assert (rows["alpha"]["mem_mib"], rows["alpha"]["vcpus"]) == (64, 2)
    assert "hi" in xl(home, "console", "--dump", "alpha", check=True).stdout.splitlines()
    again = xl(home, "create", str(cfg))
    assert again.returncode == 1 and again.stderr.endswith("xl: a domain named 'alpha' already exists\n")


def test_two_created_guests_ping_and_the_capture_shows_it(home, tmp_path):  # noqa: F811
    import shutil
    import subprocess
    from hv.guest.pcap import read_pcap
    xl(home, "clock", "freeze", check=True)
    pcap = tmp_path / "xenbr0.pcap"
    xl(home, "network-capture", "xenbr0", str(pcap), check=True)
    for n, workload in ((2, '"idle"'), (1, '"sleep 10ms", "ping 10.0.0.2 -c 2 -i 0.1"')):
        cfg = tmp_path / f"g{n}.cfg"
        cfg.write_text(f'name = "g{n}"\nmemory = 32\n'
                       f"vif = [ 'mac=00:16:3e:00:00:0{n},ip=10.0.0.{n}' ]\n"
                       f"workload = [ {workload} ]\n")
        xl(home, "create", str(cfg), check=True)
    xl(home, "clock", "run", "1s", check=True)
    xl(home, "network-capture", "xenbr0", "--stop", check=True)
    assert "2 packets transmitted, 2 received, 0% packet loss" in \
        xl(home, "console", "--dump", "g1", check=True).stdout
    _linktype, records = read_pcap(str(pcap))
    assert len(records) == 6                              # ARP both ways, two pings and replies
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    fields = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "icmp.type"],
                            capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert fields == ["8", "0", "8", "0"]


def test_shutdown_reboot_and_the_on_actions(home, tmp_path):  # noqa: F811
    from xl.client import connect
    xl(home, "clock", "freeze", check=True)
    for name, extra in (("plain", ""), ("keeper", 'on_poweroff = "preserve"\n'),
                        ("phoenix", 'on_crash = "restart"\n'), ("cycler", "")):
        cfg = tmp_path / f"{name}.cfg"
        workload = '[ "sleep 100ms", "crash" ]' if name == "phoenix" else '[ "idle" ]'
        cfg.write_text(f'name = "{name}"\nmemory = 16\n{extra}workload = {workload}\n')
        xl(home, "create", str(cfg), check=True)
    client = connect(str(home), autostart=False)
    ids = {d["name"]: d["domid"] for d in client.call("list")}
    xl(home, "shutdown", "plain", check=True)
    xl(home, "shutdown", "keeper", check=True)
    xl(home, "reboot", "cycler", check=True)
    xl(home, "clock", "run", "50ms", check=True)
    rows = {d["name"]: d for d in client.call("list")}
    assert "plain" not in rows                                  # on_poweroff=destroy
    assert rows["keeper"]["state"] == "---s--"                  # preserved, powered off
    assert rows["cycler"]["domid"] != ids["cycler"]             # rebooted: a new domain
    assert rows["phoenix"]["domid"] == ids["phoenix"]           # not crashed yet
    xl(home, "clock", "run", "100ms", check=True)
    rows = {d["name"]: d for d in client.call("list")}
    assert rows["phoenix"]["domid"] != ids["phoenix"]           # crashed, on_crash=restart
    assert "powered off" not in xl(home, "console", "--dump", "keeper", check=True).stdout
    assert "poweroff requested by the toolstack" in xl(home, "console", "--dump", "keeper",
                                                       check=True).stdout
    client.close()
    bad = xl(home, "shutdown")
    assert bad.returncode == 1 and bad.stderr == "xl: name one domain, or -a for all of them\n"


def test_sched_credit_vcpu_pin_rename_and_debug_keys(home, tmp_path):  # noqa: F811
    cfg = tmp_path / "w.cfg"
    cfg.write_text('name = "worker"\nmemory = 16\nvcpus = 2\nworkload = [ "idle" ]\n')
    xl(home, "create", str(cfg), check=True)
    shown = xl(home, "sched-credit", check=True).stdout.splitlines()
    assert shown[0] == "Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us"
    assert shown[1] == "Name                                ID Weight  Cap"
    xl(home, "sched-credit", "-d", "worker", "-w", "512", "-c", "50", check=True)
    row = json.loads(xl(home, "sched-credit", "-d", "worker", "--json", check=True).stdout)[0]
    assert (row["name"], row["weight"], row["cap"]) == ("worker", 512, 50)
    bad = xl(home, "sched-credit", "-d", "worker", "-w", "0")
    assert bad.returncode == 1 and bad.stderr == "xl: weight must be 1..65535, not 0\n"
    xl(home, "vcpu-pin", "worker", "1", "0-1,3", check=True)
    vcpus = json.loads(xl(home, "vcpu-list", "worker", "--json", check=True).stdout)
    assert [v["affinity_hard"] for v in vcpus] == ["all", "0-1,3"]
    xl(home, "rename", "worker", "toiler", check=True)
    assert "toiler" in [d["name"] for d in json.loads(xl(home, "list", "--json", check=True).stdout)]
    xl(home, "debug-keys", "r", check=True)
    assert "(XEN) Scheduler: SMP Credit Scheduler (credit)" in xl(home, "dmesg", check=True).stdout


def test_cpu_lists_read_as_xl_reads_them():
    from xl.cpulist import CpuListError, parse_cpulist, vcpu_affinities
    assert parse_cpulist("0-3,5") == 0b101111
    assert parse_cpulist("all,^1", 4) == 0b1101
    assert parse_cpulist("7") == 1 << 7
    assert parse_cpulist("0-3,5,^1") == 0b101101
    assert parse_cpulist("node:0,^2", 4) == parse_cpulist("nodes:0-0,^2", 4) == 0b1011
    assert parse_cpulist("all", 4) == 0b1111
    assert vcpu_affinities("1-2", 3, 4) == [0b110] * 3
    assert vcpu_affinities(["2", "3-8,^5"], 3, 16) == [0b100, 0b111011000, None]
    for bad in ("x", "3-1", "1-a", "node:1", "nodes:0-2"):
        with pytest.raises(CpuListError):
            parse_cpulist(bad, 4)


def test_mem_set_makes_the_guests_balloon_driver_give_pages_back_and_take_them(home, tmp_path):  # noqa: F811
    xl(home, "clock", "freeze", check=True)
    cfg = tmp_path / "b.cfg"
    cfg.write_text('name = "balloon"\nmemory = 64\nmaxmem = 128\nworkload = [ "idle" ]\n')
    xl(home, "create", str(cfg), check=True)

    def mem() -> int:
        rows = json.loads(xl(home, "list", "--json", check=True).stdout)
        return next(d["mem_mib"] for d in rows if d["name"] == "balloon")

    xl(home, "clock", "run", "10ms", check=True)
    assert mem() == 64
    xl(home, "mem-set", "balloon", "32m", check=True)
    xl(home, "clock", "run", "100ms", check=True)
    assert mem() == 32
    xl(home, "mem-set", "balloon", "96", check=True)        # a bare number is MiB
    xl(home, "clock", "run", "100ms", check=True)
    assert mem() == 64              # it can take back only the pages it gave (its 64 MiB)
    over = xl(home, "mem-set", "balloon", "256m")
    assert over.returncode == 1 and "not within the domain's maximum (128 MiB)" in over.stderr
    xl(home, "mem-max", "balloon", "256m", check=True)
    xl(home, "mem-set", "balloon", "256m", check=True)


def test_devices_attach_list_and_detach_while_the_guest_runs(home, tmp_path):  # noqa: F811
    xl(home, "clock", "freeze", check=True)
    cfg = tmp_path / "h.cfg"
    cfg.write_text('name = "hotplug"\nmemory = 32\nworkload = [ "idle" ]\n')
    xl(home, "create", str(cfg), check=True)
    disk = tmp_path / "b.raw"
    disk.write_bytes(bytes(4 << 20))
    xl(home, "block-attach", "hotplug", f"{disk},raw,xvdb,rw", check=True)
    xl(home, "network-attach", "hotplug", "mac=00:16:3e:00:00:09", "bridge=xenbr0", check=True)
    xl(home, "vtpm-attach", "hotplug", check=True)
    xl(home, "clock", "run", "20ms", check=True)

    def listed(cmd: str) -> list[dict]:
        return json.loads(xl(home, cmd, "hotplug", "--json", check=True).stdout)

    (vbd,) = listed("block-list")
    assert (vbd["devid"], vbd["state"], vbd["backend_id"]) == (51728, 4, 0)     # connected
    assert vbd["rref"] > 0 and vbd["evtch"] > 0
    (vif,) = listed("network-list")
    assert (vif["mac"], vif["state"]) == ("00:16:3e:00:00:09", 4)
    (tpm,) = listed("vtpm-list")
    assert tpm["state"] == 4 and len(tpm["uuid"]) == 36
    table = xl(home, "block-list", "hotplug", check=True).stdout.splitlines()
    assert table[0].startswith("Vdev  BE  handle state evt-ch ring-ref BE-path")
    assert table[1].startswith("51728 0   ")
    xl(home, "block-detach", "hotplug", "xvdb", check=True)
    xl(home, "network-detach", "hotplug", "00:16:3e:00:00:09", check=True)
    xl(home, "vtpm-detach", "hotplug", tpm["uuid"], check=True)
    xl(home, "clock", "run", "20ms", check=True)
    assert listed("block-list") == listed("network-list") == listed("vtpm-list") == []
    missing = xl(home, "block-detach", "hotplug", "xvdc")
    assert missing.returncode == 1 and missing.stderr == "xl: Error: Device 51744 not connected.\n"


def test_step_trace_and_xenstore_commands(home, tmp_path):  # noqa: F811
    xl(home, "clock", "freeze", check=True)
    cfg = tmp_path / "s.cfg"
    cfg.write_text('name = "stepper"\nmemory = 16\nworkload = [ "compute 1ms", "echo stepped", "idle" ]\n')
    xl(home, "create", "-p", str(cfg), check=True)
    xl(home, "clock", "run", "5ms", check=True)             # paused: it has not run
    steps = [line for line in xl(home, "step", "stepper", "-n", "3", check=True).stdout.splitlines()
             if " guest " in line]
    # Created paused, it has never run: its kernel's boot, a step at a time.
    assert [line.split()[4] for line in steps] == ["start_info", "callbacks", "shared_info"]
    listed = json.loads(xl(home, "list", "stepper", "--json", check=True).stdout)
    assert listed[0]["state"] == "--p---" and listed[0]["cpu_time_s"] == 0.0
    running = xl(home, "step", "Domain-0")
    assert running.returncode == 1 and running.stderr == "xl: domain 0 is running: pause it to step it\n"
    traced = xl(home, "trace", "stepper", "-n", "5", check=True).stdout.splitlines()
    assert len(traced) == 5 and all(" d" in line for line in traced)
    xl(home, "xenstore", "write", "/xltest/x", "1", check=True)
    assert xl(home, "xenstore", "read", "/xltest/x", check=True).stdout == "1\n"
    assert xl(home, "xenstore", "list", "/xltest", check=True).stdout == "x\n"
    assert 'x = "1"' in xl(home, "xenstore", "ls", "/xltest", check=True).stdout
    xl(home, "xenstore", "chmod", "/xltest/x", "n0", "r3", check=True)
    xl(home, "xenstore", "rm", "/xltest/x", check=True)
    gone = xl(home, "xenstore", "read", "/xltest/x")
    assert gone.returncode == 1 and gone.stderr == "xl: /xltest/x: ENOENT\n"
