"""The example domains the dashboard can create (examples/domains/), each
config read here, on the client's side, as `xl create` reads it."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "domains"
SUFFIXES = (".cfg", ".yaml", ".yml", ".toml")


class ExampleError(Exception):
    """An example that can't be read: one line saying why."""


def list_examples(directory: Path = EXAMPLES) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES)


def read_config(path: Path) -> tuple[dict, list[str]]:
    """The config and its warnings, as `xl create` parses them."""
    from xl.domconfig import ConfigError, domain_config
    from xl.xlcfg import XlCfgError, load_config
    try:
        return domain_config(load_config(str(path)), str(path))
    except (XlCfgError, ConfigError) as e:
        raise ExampleError(str(e)) from None
    except OSError as e:
        raise ExampleError(f"{path}: {e.strerror}") from None
