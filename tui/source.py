"""Where the dashboard's data comes from: the host service, asked over its
socket exactly as `xl` asks it (the dashboard never touches hv/). One
connection, used by one thread at a time; one that broke is made again on
the next call. The first connection starts the service if none runs, as
any `xl` command does; later ones don't: a host someone stopped stays
stopped, and the dashboard says so."""

from __future__ import annotations

import threading

from xl.client import Client, XlError, connect


class Source:
    def __init__(self, home: str | None = None):
        self.home = home
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._connected_once = False

    def call(self, op: str, **args):
        """The service's answer to one request; XlError says why not."""
        with self._lock:
            if self._client is None:
                self._client = connect(self.home, autostart=not self._connected_once)
                self._connected_once = True
            try:
                return self._client.call(op, **args)
            except XlError as e:
                if str(e).startswith(("talking to the host service", "the host service closed")):
                    self._drop()
                raise

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except OSError:
                pass
            self._client = None

    def close(self) -> None:
        with self._lock:
            self._drop()
