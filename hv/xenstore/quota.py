"""The per-domain limits of the C daemon, with its names and defaults
(`xenstore-control quota` shows and sets them). Dom0 and the toolstack's
sockets are exempt."""

from __future__ import annotations

from dataclasses import dataclass

from hv.public.io.xs_wire import XENSTORE_REL_PATH_MAX


@dataclass
class Quotas:
    nodes: int = 1000                 # nodes a domain may own
    watches: int = 128
    transactions: int = 10            # open at once
    outstanding: int = 20             # requests read but not yet answered
    transaction_nodes: int = 1024     # nodes one transaction may touch
    node_size: int = 2048             # a node's whole record, value included
    path_max: int = XENSTORE_REL_PATH_MAX
    permissions: int = 5              # entries in a node's list
    memory: int = 2 * 1024 * 1024 + 512 * 1024   # bytes waiting to go out to a domain

    # name in xenstore-control, attribute, description (the C daemon's)
    TABLE = (
        ("nodes", "nodes", "Nodes per domain"),
        ("watches", "watches", "Watches per domain"),
        ("transactions", "transactions", "Transactions per domain"),
        ("outstanding", "outstanding", "Outstanding requests per domain"),
        ("transaction-nodes", "transaction_nodes",
         "Max. number of accessed nodes per transaction"),
        ("memory", "memory", "Total Xenstore memory per domain (error level)"),
        ("node-size", "node_size", "Max. size of a node"),
        ("path-max", "path_max", "Max. length of a node path"),
        ("permissions", "permissions", "Max. number of permissions per node"),
    )

    def by_name(self, name: str) -> str | None:
        for wire, attr, _ in self.TABLE:
            if wire == name:
                return attr
        return None

    def show(self) -> str:
        lines = ["Quota settings:"]
        lines += [f"{wire:<17}: {getattr(self, attr):8d} {descr}" for wire, attr, descr in self.TABLE]
        return "\n".join(lines) + "\n"

