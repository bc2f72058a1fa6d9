"""The `xl` command: wiring only. Each command parses its arguments, makes
one toolstack call and renders the answer."""

from __future__ import annotations

import typer

from xl import __version__
from hv.xen.version import XEN_EXTRA, XEN_MAJOR, XEN_MINOR

app = typer.Typer(
    name="xl",
    help="Xen management tool, for a xenlab host.",
    add_completion=False,
    no_args_is_help=True,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"xl (xenlab) {__version__}, modelling Xen {XEN_MAJOR}.{XEN_MINOR}{XEN_EXTRA}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", "-V", callback=_version_callback,
                                 is_eager=True, help="Print the version and exit."),
) -> None:
    """Xen management tool, for a xenlab host."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
