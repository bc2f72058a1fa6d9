"""From a config file's settings to what the toolstack builds (xl_parse.c's
role): the keys that matter here, checked, with their defaults; unknown
keys are warned about, not fatal; and the libxl_domain_config JSON that
`xl create -n` prints."""

from __future__ import annotations

import uuid as uuidlib

from xl.cpulist import CpuListError, cpus_of, parse_cpulist, vcpu_affinities
from xl.devspec import DevSpecError, parse_disk, parse_vif, parse_vtpm
from xl.xlcfg import XlCfgValueError, XlConfig

KNOWN = {"name", "uuid", "memory", "maxmem", "vcpus", "maxvcpus", "cpus", "cpus_soft",
         "cpu_weight", "cap", "kernel", "ramdisk", "cmdline", "extra", "root", "on_poweroff",
         "on_reboot", "on_crash", "vif", "disk", "vtpm", "driver_domain", "workload", "type",
         "bootloader"}
ACTIONS = ("destroy", "restart", "rename-restart", "preserve", "coredump-destroy",
           "coredump-restart", "soft-reset")


class ConfigError(ValueError):
    """A config the toolstack can't build, naming where."""


def _reason(e: XlCfgValueError) -> str:
    """libxlutil's warning without its own `file:line: warning: ` (ours says
    file:line:column)."""
    return e.warning.split(": warning: ", 1)[-1]


def domain_config(cfg: XlConfig, filename: str) -> tuple[dict, list[str]]:
    """The settings the toolstack takes, and the warnings for the rest."""
    warnings = [f"{filename}:{cfg.position(key)[0]}: unknown key {key!r} ignored"
                for key in cfg.keys() if key not in KNOWN]

    def where(key: str) -> str:
        line, column = cfg.position(key)
        return f"{filename}:{line}:{column}"

    try:
        name = cfg.get_string("name")
    except KeyError:
        raise ConfigError(f"{filename}: the config gives no name") from None
    except XlCfgValueError as e:
        raise ConfigError(f"{where('name')}: {_reason(e)}") from None

    def number(key: str, default: int, low: int = 1) -> int:
        try:
            value = cfg.get_long(key, default)
        except XlCfgValueError as e:
            raise ConfigError(f"{where(key)}: {_reason(e)}") from None
        if value < low:
            raise ConfigError(f"{where(key)}: {key} must be at least {low}, not {value}")
        return value

    memory = number("memory", 128)
    config = {"name": name, "memory": memory, "maxmem": number("maxmem", memory),
              "vcpus": number("vcpus", 1)}
    if config["maxmem"] < memory:
        raise ConfigError(f"{where('maxmem')}: maxmem ({config['maxmem']}) is below memory ({memory})")
    config["maxvcpus"] = number("maxvcpus", config["vcpus"])
    if config["maxvcpus"] < config["vcpus"]:
        raise ConfigError(f"{where('maxvcpus')}: maxvcpus is below vcpus")
    # The credit scheduler's ranges (sched_credit.c): weight 1..65535, cap
    # 0 (none) .. 65535 per cent of a pCPU.
    for key, low in (("cpu_weight", 1), ("cap", 0)):
        if key in cfg:
            config[key] = number(key, 0, low)
            if config[key] > 65535:
                raise ConfigError(f"{where(key)}: {key} must be at most 65535, not {config[key]}")
    for key in ("cpus", "cpus_soft"):
        if key in cfg:
            spec = cfg.get(key)
            items = [spec] if isinstance(spec, str) else spec
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise ConfigError(f"{where(key)}: {key} is a CPU list, or a list of them")
            try:
                for item in items:
                    parse_cpulist(item)
            except CpuListError as e:
                raise ConfigError(f"{where(key)}: {e}") from None
            config[key] = spec
    if "driver_domain" in cfg:
        config["driver_domain"] = number("driver_domain", 0, 0) != 0
    if "uuid" in cfg:
        try:
            config["uuid"] = str(uuidlib.UUID(cfg.get_string("uuid")))
        except (ValueError, XlCfgValueError):
            raise ConfigError(f"{where('uuid')}: {cfg.get('uuid')!r} is not a UUID") from None
    cmdline = _strings(cfg, "cmdline", where)
    if cmdline is None:
        root, extra = _strings(cfg, "root", where), _strings(cfg, "extra", where)
        cmdline = " ".join(part for part in ((f"root={root}" if root else ""), extra or "") if part)
    config["cmdline"] = cmdline
    for key in ("on_poweroff", "on_reboot", "on_crash"):
        action = _strings(cfg, key, where)
        default = "restart" if key == "on_reboot" else "destroy"
        if action is not None and action not in ACTIONS:
            raise ConfigError(f"{where(key)}: {key} must be one of {', '.join(ACTIONS)}, not {action!r}")
        config[key] = action or default
    workload = cfg.get("workload")
    config["workload"] = [workload] if isinstance(workload, str) else list(workload or ["idle"])
    for key, parse in (("disk", parse_disk), ("vif", parse_vif), ("vtpm", parse_vtpm)):
        items = cfg.get(key) or []
        if isinstance(items, str):
            items = [items]
        for i, spec in enumerate(items):
            if not isinstance(spec, str):
                raise ConfigError(f"{where(key)}: {key} entries are strings")
            try:
                if key == "disk":
                    parse(spec)
                else:
                    parse(spec, devid=i, domain=name)
            except DevSpecError as e:
                raise ConfigError(f"{where(key)}: {e}") from None
        config[key] = list(items)
    return config, warnings


def _strings(cfg: XlConfig, key: str, where) -> str | None:
    if key not in cfg:
        return None
    try:
        return cfg.get_string(key)
    except XlCfgValueError as e:
        raise ConfigError(f"{where(key)}: {_reason(e)}") from None


def with_defaults(config: dict) -> dict:
    """A config with xl's default for every key it leaves out."""
    full = {"memory": 128, "vcpus": 1, "cmdline": "", "workload": ["idle"],
            "disk": [], "vif": [], "vtpm": [], **config}
    full.setdefault("maxmem", full["memory"])
    full.setdefault("maxvcpus", full["vcpus"])
    for key in ("on_poweroff", "on_reboot", "on_crash"):
        full.setdefault(key, "restart" if key == "on_reboot" else "destroy")
    return full


def libxl_json(config: dict, nr_cpus: int | None = None) -> dict:
    """`xl create -n`: the config in libxl_domain_config's shape (vCPU
    affinities, as libxl keeps them, need the host's ``nr_cpus``)."""
    name = config["name"]
    affinity = {}
    for key, field in (("cpus", "vcpu_hard_affinity"), ("cpus_soft", "vcpu_soft_affinity")):
        if key in config and nr_cpus:
            masks = vcpu_affinities(config[key], config["maxvcpus"], nr_cpus)
            affinity[field] = [cpus_of((1 << nr_cpus) - 1 if m is None else m) for m in masks]
    params = {key: config[field] for key, field in (("weight", "cpu_weight"), ("cap", "cap"))
              if field in config}
    out = {
        "c_info": {"type": "pv", "name": name,
                   **({"uuid": config["uuid"]} if "uuid" in config else {}),
                   **({"driver_domain": "True"} if config.get("driver_domain") else {})},
        "b_info": {"max_vcpus": config["maxvcpus"],
                   "avail_vcpus": list(range(config["vcpus"])),
                   "max_memkb": config["maxmem"] * 1024, "target_memkb": config["memory"] * 1024,
                   **({"cmdline": config["cmdline"]} if config["cmdline"] else {}),
                   **({"sched_params": params} if params else {}),
                   **affinity,
                   "type.pv": {}},
        "disks": [parse_disk(spec).to_json() for spec in config["disk"]],
        "nics": [parse_vif(spec, devid=i, domain=name).to_json() for i, spec in enumerate(config["vif"])],
        "vtpms": [parse_vtpm(spec, devid=i, domain=name).to_json()
                  for i, spec in enumerate(config["vtpm"])],
        "on_poweroff": config["on_poweroff"], "on_reboot": config["on_reboot"],
        "on_crash": config["on_crash"],
    }
    return {key: value for key, value in out.items() if value != []}
