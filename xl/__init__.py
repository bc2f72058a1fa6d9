"""The toolstack and the `xl` command."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("xenlab")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"
