"""The xenstore tree: each node with its value and permissions in
xenstore-ls -p's notation, opened a node at a time from the listings the
screen fetches (``show``), and a node that changed lit up for a moment
(``flash``)."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

# How long a node that changed stays lit.
FLASH_S = 1.5
# Longer values are cut short in the tree; the detail pane has all of it.
VALUE_WIDTH = 48


def child_path(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def parent_path(path: str) -> str | None:
    if path == "/":
        return None
    return path.rsplit("/", 1)[0] or "/"


def shown_value(value: str, width: int | None = VALUE_WIDTH) -> str:
    """A value on one line, as xenstore-ls escapes what isn't printable."""
    text = "".join(ch if " " <= ch <= "~" or ch > "\x9f" else f"\\{ord(ch):03o}" for ch in value)
    if width is not None and len(text) > width:
        text = text[:width - 1] + "…"
    return text


def perms_text(perms: list[str]) -> str:
    return f"({','.join(perms)})"


class XenstoreTree(Tree[dict]):
    COMPONENT_CLASSES = {"xstree--value", "xstree--perms", "xstree--flash"}
    DEFAULT_CSS = """
    XenstoreTree > .xstree--value { color: $text-success; }
    XenstoreTree > .xstree--perms { color: $text-muted; }
    XenstoreTree > .xstree--flash { background: $warning 60%; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__("/", {"path": "/", "name": "/", "value": "", "perms": [], "children": 0,
                               "listed": False}, id=id)
        self.by_path: dict[str, TreeNode[dict]] = {"/": self.root}
        self.flashing: set[str] = set()
        self._unflash: dict[str, object] = {}

    # ------------------------------------------------------------ drawing
    def render_label(self, node: TreeNode[dict], base_style: Style, style: Style) -> Text:
        data = node.data
        rich = self.get_component_rich_style
        label = Text(data["name"])
        if data["path"] != "/" or data["value"]:
            label.append(" = ")
            label.append(f'"{shown_value(data["value"])}"', rich("xstree--value"))
        if data["perms"]:
            label.append("  ")
            label.append(perms_text(data["perms"]), rich("xstree--perms"))
        if data["path"] in self.flashing:
            label.stylize(rich("xstree--flash"))
        label.stylize(style)
        if node.allow_expand:
            icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
            return Text.assemble((icon, base_style), label)
        return Text.assemble("  ", label)

    # ------------------------------------------------------------ snapshots
    def show(self, listing: dict) -> TreeNode[dict] | None:
        """A node and its children as the service listed them: values,
        permissions, children added and children gone. None when the node
        is not in the tree (its parent was never opened)."""
        node = self.by_path.get(listing["path"])
        if node is None:
            return None
        node.data.update(value=listing["value"], perms=listing["perms"],
                         children=len(listing["children"]), listed=True)
        node.allow_expand = bool(listing["children"])
        names = [c["name"] for c in listing["children"]]
        for child in list(node.children):
            if child.data["name"] not in names:
                self._forget(child)
                child.remove()
        for at, entry in enumerate(listing["children"]):
            path = child_path(listing["path"], entry["name"])
            data = {"path": path, "name": entry["name"], "value": entry["value"],
                    "perms": entry["perms"], "children": entry["children"]}
            child = self.by_path.get(path)
            if child is None:
                before = at if at < len(node.children) else None
                child = node.add(entry["name"], {**data, "listed": False}, before=before,
                                 allow_expand=bool(entry["children"]))
                self.by_path[path] = child
            else:
                child.data.update(data)
                child.allow_expand = bool(entry["children"]) or bool(child.children)
                child.refresh()
        node.refresh()
        return node

    def _forget(self, node: TreeNode[dict]) -> None:
        for child in node.children:
            self._forget(child)
        self.by_path.pop(node.data["path"], None)
        self.flashing.discard(node.data["path"])

    def listed(self, path: str) -> bool:
        node = self.by_path.get(path)
        return node is not None and node.data["listed"]

    def select_path(self, path: str) -> None:
        node = self.by_path.get(path)
        if node is not None:
            self.move_cursor(node)
            self.scroll_to_node(node, animate=False)

    # ------------------------------------------------------------ changes
    def shown_node(self, path: str) -> TreeNode[dict] | None:
        """The node on screen that stands for ``path``: its own, or that of
        the nearest ancestor whose line is showing."""
        at: str | None = path
        while at is not None and at not in self.by_path:
            at = parent_path(at)
        node = self.by_path.get(at) if at is not None else None
        while node is not None and not all(a.is_expanded for a in _ancestors(node)):
            node = node.parent
        return node

    def flash(self, path: str) -> str | None:
        """Light the node that stands for ``path`` for FLASH_S; its path."""
        node = self.shown_node(path)
        if node is None:
            return None
        lit = node.data["path"]
        self.flashing.add(lit)
        timer = self._unflash.pop(lit, None)
        if timer is not None:
            timer.stop()
        self._unflash[lit] = self.set_timer(FLASH_S, lambda: self._put_out(lit))
        node.refresh()
        return lit

    def _put_out(self, path: str) -> None:
        self.flashing.discard(path)
        self._unflash.pop(path, None)
        node = self.by_path.get(path)
        if node is not None:
            node.refresh()


def _ancestors(node: TreeNode[dict]):
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent
