"""The xenstore tree as a browser opens it: one node at a time, with its
value and permissions and those of each child, and how many children each
child has (so a browser knows what can be opened without opening it).

Read through the toolstack's own privileged connection, as xenstore-ls -p
reads: nothing in the store or the machine's trace changes."""

from __future__ import annotations

from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError
from hv.xenstore.perms import format_perm
from xl.toolstack import ToolstackError


def _node(xs: XsClient, path: str) -> dict:
    """``path``'s value, permissions (xenstore-ls -p's n0, r5, ...) and
    children's names. A node can go between two requests; a child that
    went is left out by the caller."""
    return {"value": xs.read(path).decode(errors="replace"),
            "perms": [format_perm(p).decode() for p in xs.get_perms(path)],
            "children": [n.decode(errors="replace") for n in xs.directory(path)]}


def open_node(xs: XsClient, path: str) -> dict:
    """``path`` and its children in xenstored's order, each with its
    value, permissions and number of children."""
    path = "/" + path.strip("/") if path.strip("/") else "/"
    try:
        node = _node(xs, path)
    except XsError as e:
        raise ToolstackError(f"{path}: {e}") from None
    children = []
    for name in node.pop("children"):
        child_path = f"{path.rstrip('/')}/{name}"
        try:
            child = _node(xs, child_path)
        except XsError:
            continue
        children.append({"name": name, "value": child["value"], "perms": child["perms"],
                         "children": len(child["children"])})
    return {"path": path, **node, "children": children}
