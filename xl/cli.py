"""The `xl` command: wiring only. Each command parses its arguments, makes
one toolstack call and renders the answer.

Every command starts a fresh process, so what this module imports at the
top is paid by each of them: only the client side (xl.client, xl.paths),
never hv/ or the service. A command that needs more imports it inside."""

from __future__ import annotations

import json
import os
import sys
import time

import typer

from xl.client import XlError, connect, running, start, stop
from xl.paths import state_dir

app = typer.Typer(
    name="xl",
    help="Xen management tool, for a xenlab host.",
    add_completion=False,
    no_args_is_help=True,
)


def _version_callback(value: bool) -> None:
    if value:
        from xl import __version__
        from hv.xen.version import XEN_EXTRA, XEN_MAJOR, XEN_MINOR
        typer.echo(f"xl (xenlab) {__version__}, modelling Xen {XEN_MAJOR}.{XEN_MINOR}{XEN_EXTRA}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", "-V", callback=_version_callback,
                                 is_eager=True, help="Print the version and exit."),
) -> None:
    """Xen management tool, for a xenlab host."""


host_app = typer.Typer(help="The host service: start, stop, status.", no_args_is_help=True)
app.add_typer(host_app, name="host")


def _size(text: str) -> int:
    from hv.guest.workload import parse_size
    try:
        return parse_size(text)
    except ValueError as e:
        raise XlError(str(e)) from None


@host_app.command("start")
def host_start(
    cpus: int = typer.Option(None, "--cpus", help="pCPUs of a new host (default 4)."),
    memory: str = typer.Option(None, "--memory", help="Memory of a new host, say 16G (default 16G)."),
    frozen: bool = typer.Option(False, "--frozen", help="With the clock frozen from the first instant."),
) -> None:
    """Start the host service for the state directory ($XL_HOME)."""
    home = state_dir()
    if running(home):
        raise XlError(f"a host service is already running for {home}")
    start(home, cpus=cpus, memory=_size(memory) if memory else None, frozen=frozen)
    typer.echo(f"host service started for {home}")


@host_app.command("stop")
def host_stop() -> None:
    """Stop the host service."""
    stop(connect(autostart=False))
    typer.echo("host service stopped")


@host_app.command("status")
def host_status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Where the host service lives, and its clock."""
    status = connect(autostart=False).call("status")
    if as_json:
        typer.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    clock = status["clock"]
    state = "frozen" if clock["frozen"] else f"running at {clock['speed']:g}x"
    for label, value in (("state_dir", status["state_dir"]), ("pid", status["pid"]),
                         ("xenstore_socket", status["xenstore_socket"]),
                         ("clock", f"{clock['now_ns'] / 1e9:.6f} s, {state}"),
                         ("host", f"{status['cpus']} pCPUs, {status['memory_bytes'] >> 20} MiB"),
                         ("domains", status["domains"])):
        typer.echo(f"{label:<16} {value}")


@app.command("list")
def list_domains(domain: str = typer.Argument(None, help="One domain (default: all)."),
                 long: bool = typer.Option(False, "-l", "--long",
                                           help="Each domain's config, as JSON."),
                 verbose: bool = typer.Option(False, "-v", "--verbose",
                                              help="With UUID, shutdown reason and security label."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the domains: name, id, memory, vCPUs, state and CPU time."""
    if long:
        typer.echo(json.dumps(connect().call("list_long", domain=domain), indent=4))
        return
    domains = connect().call("list", domain=domain)
    if as_json:
        typer.echo(json.dumps(domains, indent=2))
        return
    typer.echo(render_list(domains, verbose))


def render_list(domains: list[dict], verbose: bool = False) -> str:
    """xl_info.c's table: its header, with real tabs, and its printf row;
    verbose adds the UUID, the shutdown reason in hex and the label."""
    header = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    lines = [header + ("   UUID                            Reason-Code\tSecurity Label" if verbose else "")]
    for d in domains:
        row = (f"{d['name']:<40} {d['domid']:5d} {d['mem_mib']:5d} {d['vcpus']:5d}     {d['state']}  "
               f"{d['cpu_time_s']:8.1f}")
        if verbose:
            reason = d["shutdown_reason"]
            row += f" {d['uuid']} {'-' if reason is None else format(reason, 'x'):>8} {'-':>16}"
        lines.append(row)
    return "\n".join(lines)


@app.command("create")
def create(file: str = typer.Argument(..., help="The domain's config file (xl.cfg, YAML or TOML)."),
           dry_run: bool = typer.Option(False, "-n", "--dry-run",
                                        help="Print the parsed config as JSON; create nothing."),
           paused: bool = typer.Option(False, "-p", help="Leave the domain paused."),
           console: bool = typer.Option(False, "-c", help="Attach to its console once created.")) -> None:
    """Create a domain from a config file."""
    from xl.domconfig import libxl_json
    typer.echo(f"Parsing config from {file}", err=True)
    config = _config_file(file)
    if dry_run:
        # Affinities are kept as the host's bitmaps: its size, from the service.
        needs_host = "cpus" in config or "cpus_soft" in config
        nr_cpus = connect().call("status")["cpus"] if needs_host else None
        typer.echo(json.dumps(libxl_json(config, nr_cpus), indent=4))
        return
    client = connect()
    created = client.call("create", config={**config, "paused": True} if paused else config)
    if console:
        from xl.console import attach
        attach(client, created["domid"])


def _config_file(file: str) -> dict:
    """A config file read as `xl create` reads it (its warnings printed)."""
    from xl.domconfig import ConfigError, domain_config
    from xl.xlcfg import XlCfgError, load_config
    try:
        config, warnings = domain_config(load_config(file), file)
    except (XlCfgError, ConfigError) as e:
        raise XlError(str(e)) from None
    except OSError as e:
        raise XlError(f"{file}: {e.strerror}") from None
    for warning in warnings:
        typer.echo(f"xl: warning: {warning}", err=True)
    return config


@app.command("save")
def save(domain: str = typer.Argument(..., help="The domain, by name or id."),
         checkpoint_file: str = typer.Argument(..., metavar="CHECKPOINTFILE", help="The file to write."),
         config_file: str = typer.Argument(None, metavar="CONFIGFILE",
                                           help="A config to store instead of the domain's own."),
         checkpoint: bool = typer.Option(False, "-c", help="Leave the domain running after saving it."),
         paused: bool = typer.Option(False, "-p", help="Leave the domain paused after saving it.")) -> None:
    """Save a domain's state to a file, to restore later."""
    config = _config_file(config_file) if config_file else None
    got = connect().call("save", domain=domain, path=os.path.abspath(checkpoint_file),
                         checkpoint=checkpoint, paused=paused, config=config)
    mandatory, optional, optional_len = got["info"]
    typer.echo(f"Saving to {checkpoint_file} new xl format (info 0x{mandatory:x}/0x{optional:x}/"
               f"{optional_len})", err=True)


@app.command("restore")
def restore(files: list[str] = typer.Argument(..., metavar="[CONFIGFILE] CHECKPOINTFILE",
                                              help="A config to use instead of the one saved "
                                                   "(optional), then the saved state."),
            paused: bool = typer.Option(False, "-p", help="Leave the domain paused after restoring it."),
            no_wait: bool = typer.Option(False, "-e", help="Do not wait in the background for the "
                                                           "domain's death (xl here never does)."),
            debug: bool = typer.Option(False, "-d", help="Debug messages (there are none more).")) -> None:
    """Restore a domain from a saved state."""
    import base64
    if len(files) not in (1, 2):
        raise XlError("restore takes [CONFIGFILE] CHECKPOINTFILE")
    config_file, checkpoint_file = (None, files[0]) if len(files) == 1 else files
    config = _config_file(config_file) if config_file else None
    try:
        with open(checkpoint_file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise XlError(f"Can't open restore file: {e.strerror}") from None
    got = connect().call("restore", image=base64.b64encode(data).decode(), paused=paused,
                         config=config, source=checkpoint_file)
    mandatory, optional, optional_len = got["info"]
    typer.echo(f"Loading new save file {checkpoint_file} (new xl fmt info 0x{mandatory:x}/"
               f"0x{optional:x}/{optional_len})", err=True)
    typer.echo(" Savefile contains xl domain config in JSON format", err=True)
    typer.echo(f"Parsing config from {config_file or '<saved>'}", err=True)


def _shutdown(domain: str | None, all_domains: bool, wait: bool, reboot: bool) -> None:
    if all_domains == (domain is not None):
        raise XlError("name one domain, or -a for all of them")
    client = connect()
    targets = ([d["domid"] for d in client.call("list") if d["domid"] != 0] if all_domains
               else [client.call("shutdown", domain=domain, reboot=reboot)["domid"]])
    if all_domains:
        for domid in targets:
            client.call("shutdown", domain=domid, reboot=reboot)
    if wait:
        deadline = time.monotonic() + 120
        while targets and time.monotonic() < deadline:
            rows = {d["domid"]: d for d in client.call("list")}
            targets = [t for t in targets if t in rows and rows[t]["state"][3] != "s"]
            time.sleep(0.05)
        if targets:
            raise XlError(f"domain {targets[0]} did not shut down within 120 s")


@app.command("shutdown")
def shutdown(domain: str = typer.Argument(None, help="The domain, by name or id."),
             all_domains: bool = typer.Option(False, "-a", "--all", help="Every domain but dom0."),
             wait: bool = typer.Option(False, "-w", "--wait", help="Wait until it has shut down.")) -> None:
    """Ask a domain to shut down; its on_poweroff then applies."""
    _shutdown(domain, all_domains, wait, reboot=False)


@app.command("reboot")
def reboot(domain: str = typer.Argument(None, help="The domain, by name or id."),
           all_domains: bool = typer.Option(False, "-a", "--all", help="Every domain but dom0."),
           wait: bool = typer.Option(False, "-w", "--wait", help="Wait until it has shut down.")) -> None:
    """Ask a domain to reboot; its on_reboot then applies."""
    _shutdown(domain, all_domains, wait, reboot=True)


@app.command("destroy")
def destroy(domain: str = typer.Argument(..., help="The domain, by name or id.")) -> None:
    """Terminate a domain at once."""
    connect().call("destroy", domain=domain)


@app.command("vcpu-list")
def vcpu_list(domain: str = typer.Argument(None, help="One domain (default: all)."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List each vCPU: its pCPU, state, time and affinities."""
    rows = connect().call("vcpu_list", domain=domain)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(render_vcpu_list(rows))


def render_vcpu_list(rows: list[dict]) -> str:
    """xl_vcpu.c's table, its printf formats exactly (the CPU column runs
    on from the VCPU one, as in xl)."""
    lines = [f"{'Name':<32} {'ID':>5} {'VCPU':>5} {'CPU':>5} {'State':>5} {'Time(s)':>9} "
             "Affinity (Hard / Soft)"]
    for r in rows:
        cpu = "-" if r["cpu"] is None else str(r["cpu"])
        s = r["state"]
        lines.append(f"{r['name']:<32} {r['domid']:5d} {r['vcpu']:5d}{cpu:>5} {s[0]:>3}{s[1]}{s[2]} "
                     f"{r['time_s']:9.1f}  {r['affinity_hard']} / {r['affinity_soft']}")
    return "\n".join(lines)


@app.command("sched-credit")
def sched_credit(domain: str = typer.Option(None, "-d", "--domain", help="One domain."),
                 weight: int = typer.Option(None, "-w", "--weight", help="Set its weight (1-65535)."),
                 cap: int = typer.Option(None, "-c", "--cap", help="Set its cap (% of a pCPU, 0: none)."),
                 pool_only: bool = typer.Option(False, "-s", "--schedparam", help="Only the pool's settings."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show or set the credit scheduler's weight and cap of domains."""
    client = connect()
    if weight is not None or cap is not None:
        client.call("sched_credit_set", domain=domain, weight=weight, cap=cap)
        return
    rows = client.call("sched_credit", domain=domain)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    lines = ["Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us"]
    if not pool_only:
        lines.append(f"{'Name':<33} {'ID':>4} {'Weight':>6} {'Cap':>4}")
        lines += [f"{r['name']:<33} {r['domid']:4d} {r['weight']:6d} {r['cap']:4d}" for r in rows]
    typer.echo("\n".join(lines))


@app.command("vcpu-pin")
def vcpu_pin(domain: str = typer.Argument(..., help="The domain."),
             vcpu: int = typer.Argument(..., help="The vCPU."),
             hard: str = typer.Argument(..., help="pCPUs it may run on: all, 0-3,5 ...")) -> None:
    """Set a vCPU's hard affinity."""
    from xl.cpulist import CpuListError, parse_cpulist
    try:
        mask = parse_cpulist(hard)
    except CpuListError as e:
        raise XlError(str(e)) from None
    connect().call("vcpu_pin", domain=domain, vcpu=vcpu, hard=mask)


@app.command("vcpu-set")
def vcpu_set(domain: str = typer.Argument(..., help="The domain."),
             count: str = typer.Argument(..., help="How many vCPUs to have online."),
             ignore_host: bool = typer.Option(False, "-i", "--ignore-host",
                                              help="Allow more vCPUs than the host has pCPUs.")) -> None:
    """Set how many of a domain's vCPUs are online (up to its maxvcpus)."""
    if not count.isdigit() or int(count) > 2**31 - 1:
        raise XlError("Error: Invalid argument.")
    connect().call("vcpu_set", domain=domain, count=int(count), check_host=not ignore_host)


@app.command("sysrq")
def sysrq(domain: str = typer.Argument(..., help="The domain."),
          key: str = typer.Argument(..., help="One key: b reboot, c crash, m memory, o poweroff, "
                                              "s sync, t tasks, h help.")) -> None:
    """Send a magic SysRq key to a domain's kernel."""
    if len(key) != 1:
        raise XlError("Invalid sysrq.")
    connect().call("sysrq", domain=domain, key=key)


@app.command("trigger")
def trigger(domain: str = typer.Argument(..., help="The domain."),
            name: str = typer.Argument(..., help="nmi, reset, init, power, sleep or s3resume."),
            vcpu: str = typer.Argument("0", help="The vCPU (default 0).")) -> None:
    """Send a trigger to a domain: a PV guest takes an NMI. As xl, a
    trigger the hypervisor refuses is reported and the exit is 0."""
    import re
    digits = re.match(r"\s*[-+]?\d+", vcpu)          # strtol()'s reading, kept to 32 bits
    if digits is None:
        typer.echo("Invalid vcpuid, using default vcpuid=0.\n", err=True)
    number = int(digits.group()) & 0xFFFFFFFF if digits else 0
    failed = connect().call("trigger", domain=domain, name=name, vcpu=number)["failed"]
    if failed:
        typer.echo(f"libxl: error: {failed}", err=True)


@app.command("rename")
def rename(domain: str = typer.Argument(...), new_name: str = typer.Argument(...)) -> None:
    """Give a domain a new name."""
    connect().call("rename", domain=domain, new_name=new_name)


@app.command("debug-keys")
def debug_keys(keys: str = typer.Argument(..., help="Keys to press (h lists them).")) -> None:
    """Press the hypervisor's debug keys; see what they print with xl dmesg."""
    connect().call("debug_keys", keys=keys)


def _mem_kib(text: str) -> int:
    """xl's memory sizes: a number is MiB; k, m, g, t suffixes as given."""
    from hv.guest.workload import parse_size
    try:
        return parse_size(text) // 1024 if text[-1:].isalpha() else int(text) * 1024
    except ValueError as e:
        raise XlError(str(e)) from None


@app.command("mem-set")
def mem_set(domain: str = typer.Argument(...), size: str = typer.Argument(..., help="Say 256m or 1g.")) -> None:
    """Set a domain's memory target: its balloon driver gives back or takes pages."""
    connect().call("mem_set", domain=domain, kib=_mem_kib(size))


@app.command("mem-max")
def mem_max(domain: str = typer.Argument(...), size: str = typer.Argument(..., help="Say 512m.")) -> None:
    """Set the most memory a domain may have."""
    connect().call("mem_max", domain=domain, kib=_mem_kib(size))


def _attach(domain: str, devclass: str, spec: str) -> None:
    connect().call("device_attach", domain=domain, devclass=devclass, spec=spec)


def _devid(client, domain: str, devclass: str, which: str) -> int:
    """A device named by its id, or (disks) its vdev, (vifs) its MAC,
    (vTPMs) its uuid."""
    from xl.devspec import vdev_to_devid
    if which.isdigit():
        return int(which)
    if devclass == "vbd":
        try:
            return vdev_to_devid(which)
        except ValueError:
            pass
    key = {"vif": "mac", "vtpm": "uuid"}.get(devclass)
    for row in client.call("device_list", domain=domain, devclass=devclass):
        if key and str(row.get(key, "")).lower() == which.lower():
            return row["devid"]
    raise XlError(f"Unknown device {which}.")


def _detach(domain: str, devclass: str, which: str) -> None:
    client = connect()
    client.call("device_detach", domain=domain, devclass=devclass,
                devid=_devid(client, domain, devclass, which))


def _list_devices(domains: list[str], devclass: str, as_json: bool, header: str, row) -> None:
    """The *-list commands: xl's header and printf row, or JSON."""
    client = connect()
    rows = [r for d in domains for r in client.call("device_list", domain=d, devclass=devclass)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        typer.echo("\n".join([header] + [row(r) for r in rows]))


@app.command("block-attach")
def block_attach(domain: str = typer.Argument(...),
                 spec: list[str] = typer.Argument(..., help="A disk spec, as in a config's disk=.")) -> None:
    """Attach a disk."""
    _attach(domain, "vbd", ",".join(spec))


@app.command("block-detach")
def block_detach(domain: str = typer.Argument(...), vdev: str = typer.Argument(..., help="xvdb, or its id.")) -> None:
    """Detach a disk: its backend closes, then both ends' directories go."""
    _detach(domain, "vbd", vdev)


@app.command("block-list")
def block_list(domains: list[str] = typer.Argument(...),
               as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List a domain's disks as both ends publish them."""
    _list_devices(domains, "vbd", as_json,
                  f"{'Vdev':<5} {'BE':<3} {'handle':<6} {'state':<5} {'evt-ch':<6} {'ring-ref':<8} {'BE-path':<30}",
                  lambda r: f"{r['devid']:<5d} {r['backend_id']:<3d} {r['frontend_id']:<6d} {r['state']:<5d} "
                            f"{r['evtch']:<6d} {r['rref']:<8d} {r['backend']:<30}")


@app.command("network-attach")
def network_attach(domain: str = typer.Argument(...),
                   spec: list[str] = typer.Argument(None, help="key=value settings, as in vif=.")) -> None:
    """Attach a network interface."""
    _attach(domain, "vif", ",".join(spec or []))


@app.command("network-detach")
def network_detach(domain: str = typer.Argument(...), which: str = typer.Argument(..., help="Its id or MAC.")) -> None:
    """Detach a network interface."""
    _detach(domain, "vif", which)


@app.command("network-list")
def network_list(domains: list[str] = typer.Argument(...),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List a domain's network interfaces."""
    _list_devices(domains, "vif", as_json,
                  f"{'Idx':<3} {'BE':<2} {'Mac Addr.':<17} {'handle':<6} {'state':<5} {'evt-ch':<6} "
                  f"{'tx-':>5}/{'rx-ring-ref':<5} {'BE-path':<30}",
                  lambda r: f"{r['devid']:<3d} {r['backend_id']:<2d} {r['mac']}{r['devid']:6d} {r['state']:5d} "
                            f"{r['evtch']:6d} {r['rref_tx']:5d}/{r['rref_rx']:<11d} {r['backend']:<30}")


@app.command("vtpm-attach")
def vtpm_attach(domain: str = typer.Argument(...),
                spec: list[str] = typer.Argument(None, help="uuid=... and/or backend=...")) -> None:
    """Attach a vTPM."""
    items = list(spec or [])
    if not any(item.startswith("backend=") for item in items):
        items.insert(0, "backend=0")
    _attach(domain, "vtpm", ",".join(items))


@app.command("vtpm-detach")
def vtpm_detach(domain: str = typer.Argument(...), which: str = typer.Argument(..., help="Its id or uuid.")) -> None:
    """Detach a vTPM."""
    _detach(domain, "vtpm", which)


@app.command("vtpm-list")
def vtpm_list(domains: list[str] = typer.Argument(...),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List a domain's vTPMs."""
    _list_devices(domains, "vtpm", as_json,
                  f"{'Idx':<3} {'BE':<2} {'Uuid':<36} {'handle':<6} {'state':<5} {'evt-ch':<6} "
                  f"{'ring-ref':<5} {'BE-path':<10}",
                  lambda r: f"{r['devid']:<3d} {r['backend_id']:<2d} {r['uuid']:<36} {r['devid']:6d} "
                            f"{r['state']:5d} {r['evtch']:6d} {r['rref']:8d} {r['backend']:<30}")


@app.command("step")
def step(domain: str = typer.Argument(..., help="A paused domain."),
         count: int = typer.Option(1, "-n", help="How many operations."),
         vcpu: int = typer.Option(0, "--vcpu", help="Which vCPU.")) -> None:
    """Run a paused domain one operation at a time, printing what each did."""
    for line in connect().call("step", domain=domain, count=count, vcpu=vcpu):
        typer.echo(line)


@app.command("trace")
def trace(domain: str = typer.Argument(None, help="One domain (default: all)."),
          follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing as it grows."),
          lines: int = typer.Option(50, "-n", help="How many records first.")) -> None:
    """The machine's trace: every hypercall, event and state change."""
    client = connect()
    got = client.call("trace", domain=domain, limit=lines)
    for line in got["lines"]:
        typer.echo(line)
    while follow:
        time.sleep(0.2)
        got = client.call("trace", domain=domain, since=got["seq"], limit=10_000)
        for line in got["lines"]:
            typer.echo(line)


xenstore_app = typer.Typer(help="The host's xenstore, as xenstore-* sees it.", no_args_is_help=True)
app.add_typer(xenstore_app, name="xenstore")


@xenstore_app.command("read")
def xenstore_read(path: str) -> None:
    typer.echo(connect().call("xs_read", path=path))


@xenstore_app.command("write")
def xenstore_write(path: str, value: str) -> None:
    connect().call("xs_write", path=path, value=value)


@xenstore_app.command("rm")
def xenstore_rm(path: str) -> None:
    connect().call("xs_rm", path=path)


@xenstore_app.command("list")
def xenstore_list(path: str) -> None:
    for name in connect().call("xs_list", path=path):
        typer.echo(name)


@xenstore_app.command("chmod")
def xenstore_chmod(path: str, perms: list[str] = typer.Argument(..., help="n0 r5 ... as xenstore-chmod")) -> None:
    connect().call("xs_chmod", path=path, perms=perms)


@xenstore_app.command("watch")
def xenstore_watch(path: str,
                   count: int = typer.Option(None, "-n", help="Stop after this many events.")) -> None:
    """Print the path of each change under PATH as it happens, as
    xenstore-watch does (the first event fires at once)."""
    from xl.xswatch import WatchError, watch
    socket_path = connect().call("status")["xenstore_socket"]
    try:
        watch(socket_path, path, lambda changed: typer.echo(changed) or sys.stdout.flush(), count)
    except WatchError as e:
        raise XlError(str(e)) from None
    except KeyboardInterrupt:
        pass


@xenstore_app.command("ls")
def xenstore_ls(path: str = typer.Argument("/")) -> None:
    """The tree under a path, as xenstore-ls prints it."""
    for depth, name, value in connect().call("xs_ls", path=path):
        typer.echo(f"{' ' * depth}{name} = \"{value}\"")


@app.command("pause")
def pause(domain: str = typer.Argument(..., help="The domain, by name or id.")) -> None:
    """Pause a domain."""
    connect().call("pause", domain=domain)


@app.command("unpause")
def unpause(domain: str = typer.Argument(..., help="The domain, by name or id.")) -> None:
    """Unpause a paused domain."""
    connect().call("unpause", domain=domain)


@app.command("domid")
def domid(name: str = typer.Argument(..., help="The domain's name.")) -> None:
    """Print the id of the domain with this name."""
    typer.echo(connect().call("domid", name=name))


@app.command("domname")
def domname(domid: int = typer.Argument(..., help="The domain's id.")) -> None:
    """Print the name of the domain with this id."""
    typer.echo(connect().call("domname", domid=domid))


@app.command("console")
def console(domain: str = typer.Argument(..., help="The domain, by name or id."),
            dump: bool = typer.Option(False, "--dump", help="Print what it wrote so far and exit.")) -> None:
    """Attach to a domain's console (Ctrl-] detaches); with --dump, print
    what it wrote so far and exit."""
    if dump:
        typer.echo(connect().call("console", domain=domain), nl=False)
        return
    from xl.console import attach
    attach(connect(), domain)


@app.command("dmesg")
def dmesg(clear: bool = typer.Option(False, "-c", help="Clear the ring after reading.")) -> None:
    """Print the hypervisor's console ring."""
    typer.echo(connect().call("dmesg_clear" if clear else "dmesg"), nl=False)


@app.command("info")
def info(name: str = typer.Argument(None, help="Print only the values of the fields starting so."),
         numa: bool = typer.Option(False, "-n", "--numa", help="Show the CPU and NUMA topology too."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Information about the host and the hypervisor."""
    from xl.info import render_info
    answer = connect().call("info", numa=numa)
    if as_json:
        typer.echo(json.dumps(dict(answer["fields"]), indent=2))
        return
    typer.echo(render_info([tuple(f) for f in answer["fields"]], None if numa else name,
                           answer["numa"]))


@app.command("uptime")
def uptime(domains: list[str] = typer.Argument(None, help="Domains (default: all)."),
           short: bool = typer.Option(False, "-s", help="Short form: time of day, uptime, name (id)."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """How long each domain has been up."""
    from xl.info import uptime_text
    answer = connect().call("uptime", domains=domains or [])
    if as_json:
        typer.echo(json.dumps(answer["domains"], indent=2))
        return
    lines = [] if short else [f"{'Name':<33} {'ID':>4} Uptime"]
    for d in answer["domains"]:
        if short:
            lines.append(f" {answer['now']} up {uptime_text(d['uptime_s'], True)}, {d['name']} ({d['domid']})")
        else:
            lines.append(f"{d['name']:<33} {d['domid']:4d} {uptime_text(d['uptime_s'], False)}")
    typer.echo("\n".join(lines))


@app.command("clock")
def clock(action: str = typer.Argument(..., help="freeze, thaw, speed FACTOR or run DURATION."),
          value: str = typer.Argument(None, help="The factor, or the duration (say 2s).")) -> None:
    """Drive virtual time: freeze it, thaw it, change its speed, or run it on."""
    if action in ("freeze", "thaw"):
        if value is not None:
            raise XlError(f"clock {action} takes nothing more")
        amount = 0.0
    elif action == "speed":
        try:
            amount: float | str = float(value)
        except (TypeError, ValueError):
            raise XlError(f"clock speed takes a factor, not {value!r}") from None
    elif action == "run":
        amount = value or ""                # the service reads the duration
    else:
        raise XlError(f"clock takes freeze, thaw, speed FACTOR or run DURATION, not {action!r}")
    state = connect().call("clock", action=action, value=amount)
    how = "frozen" if state["frozen"] else f"running at {state['speed']:g}x"
    typer.echo(f"{state['now_ns'] / 1e9:.6f} s, {how}")


@app.command("top", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def top(ctx: typer.Context) -> None:
    """The live dashboard: xentop's screen, keys and options (-b: plain
    text), and more (xl top -h)."""
    # xentop's own getopt parses the options, so that they combine as
    # xentop's do and a bad one is one line.
    from tui.command import top_command
    raise typer.Exit(top_command(ctx.args))


@app.command("network-capture")
def network_capture(
    bridge: str = typer.Argument(..., help="The bridge, say xenbr0."),
    file: str = typer.Argument(None, help="The pcap file to write."),
    stop: bool = typer.Option(False, "--stop", help="Stop capturing."),
    domain: int = typer.Option(0, "--domain", "-d", help="The backend domain the bridge is in."),
) -> None:
    """Write every frame entering a bridge to a pcap file (tshark reads it)."""
    if stop == bool(file):
        raise XlError("network-capture takes BRIDGE FILE, or BRIDGE --stop")
    path = None if stop else os.path.abspath(file)
    connect().call("network_capture", bridge=bridge, path=path, domid=domain)
    typer.echo(f"{bridge}: capture stopped" if stop else f"{bridge}: capturing to {path}")


def main() -> None:
    """The one error path: a user's mistake or the machine saying no is one
    line on stderr and a non-zero exit, never a traceback."""
    try:
        app()
    except XlError as e:
        typer.echo(f"xl: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
