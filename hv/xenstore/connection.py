"""A connection to xenstored: a socket client (privileged, as dom0's
tools are), a domain's ring, or an in-process client of the host. Each
owns its watches, its open transactions and what waits to go out to it."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from hv.xenstore.paths import domain_path

if TYPE_CHECKING:
    from hv.xenstore.domain import XsDomain
    from hv.xenstore.transaction import Transaction


class Watch:
    __slots__ = ("node", "token", "relative_path")

    def __init__(self, node: bytes, token: bytes, relative_path: bytes | None):
        self.node = node
        self.token = token
        self.relative_path = relative_path

    def path_for(self, name: bytes) -> bytes:
        """The event's path as the watcher spelled it (relative watches
        get relative paths)."""
        if self.relative_path is None:
            return name
        path = name[len(self.relative_path):]
        return path[1:] if path.startswith(b"/") else path


class Connection:
    """``kind``: "socket", "domain" or "local". ``on_output`` is called
    when something is queued to go out."""

    def __init__(self, kind: str, conn_id: int = 0, domain: "XsDomain | None" = None,
                 on_output: Callable[["Connection"], None] | None = None):
        self.kind = kind
        self.id = conn_id
        self.domain = domain
        self.on_output = on_output
        self.watches: list[Watch] = []
        self.transactions: dict[int, "Transaction"] = {}
        self.next_transaction_id = 0
        self.transaction: "Transaction | None" = None   # the request's, while it runs
        self.target: int | None = None
        self.out: deque = deque()          # (bytes, is_reply)
        self.out_bytes = 0
        self.queued_events: dict[bytes, int] = {}   # watch events waiting, for the duplicate check
        self.dropped_events = 0
        self.ignored = False
        self.closed = False

    @property
    def privileged(self) -> bool:
        """domain_is_unprivileged()'s opposite: sockets and dom0."""
        return self.domain is None or self.domain.domid == 0

    @property
    def home(self) -> bytes:
        """get_implicit_path()."""
        return domain_path(self.domain.domid if self.domain is not None else 0)

    def queue(self, data: bytes, is_reply: bool) -> None:
        self.out.append((data, is_reply))
        self.out_bytes += len(data)
        if not is_reply:
            self.queued_events[data] = self.queued_events.get(data, 0) + 1
        if self.on_output is not None:
            self.on_output(self)

    def pop_first(self) -> None:
        """The first queued message is out."""
        data, is_reply = self.out.popleft()
        self.out_bytes -= len(data)
        if not is_reply:
            left = self.queued_events[data] - 1
            if left:
                self.queued_events[data] = left
            else:
                del self.queued_events[data]

    def clear_output(self) -> None:
        self.out.clear()
        self.out_bytes = 0
        self.queued_events.clear()

    def take_output(self) -> bytes:
        """Everything queued, for a transport with room for all of it."""
        data = b"".join(chunk for chunk, _ in self.out)
        self.clear_output()
        return data

    def __repr__(self):
        return f"<{self.kind} connection {self.id}>"
