"""The toolstack and the `xl` command."""


def __getattr__(name: str):
    # Looked up only when asked for: importlib.metadata costs every `xl`
    # command tens of milliseconds, and only `xl --version` needs it.
    if name != "__version__":
        raise AttributeError(f"module 'xl' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version
    try:
        value = version("xenlab")
    except PackageNotFoundError:  # running from a source tree
        value = "0.1.0"
    globals()["__version__"] = value
    return value
