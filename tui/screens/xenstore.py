"""The xenstore tree: browse it a node at a time, each with its value and
permissions; watch nodes light up as they change (a real watch on the
service's xenstore socket, as xenstore-watch puts one); edit a value,
which fires the watches on it as any write does."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, Tree
from textual.worker import get_current_worker

from tui.widgets.xstree import XenstoreTree, parent_path, perms_text, shown_value
from xl.xswatch import Watch, WatchError
from xl.client import XlError

# Changes are taken together for this long before the nodes are read again.
SETTLE_S = 0.1


@dataclass
class Listed(Message):
    """Nodes as the service listed them, parents first; ``select`` is the
    node to put the cursor on; ``settled``, read again for changes."""
    listings: list[dict]
    select: str | None = None
    settled: bool = False


@dataclass
class Watching(Message):
    path: str


@dataclass
class Changed(Message):
    path: str


@dataclass
class Wrote(Message):
    path: str
    value: str


@dataclass
class Failed(Message):
    reason: str


class XenstoreScreen(Screen):
    CSS_PATH = "../styles/xenstore.tcss"
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("q", "leave", "Back", show=False),
        Binding("e", "edit", "Edit value"),
    ]

    def __init__(self, path: str = "/"):
        super().__init__()
        self.path = "/" + path.strip("/") if path.strip("/") else "/"
        self.watching = False
        self.opened: str | None = None      # where the cursor was put once the tree opened
        self.changes = 0                    # watch events since the watch was set
        self._changed: list[str] = []       # what changed, not yet read again
        self._to_light: list[str] = []      # what changed, to light once read again
        self._settling = False              # changes wait for SETTLE_S, or for a read
        self._opened_here: set[str] = set()  # expanded by the screen, with a listing already
        self._editing: str | None = None    # the node whose value the editor holds

    def compose(self) -> ComposeResult:
        yield Static("xenstore", id="xs-title")
        with Horizontal(id="xs-body"):
            yield XenstoreTree(id="xs-tree")
            yield Static("", id="xs-detail")
        yield Input(id="xs-edit")
        with Horizontal(id="xs-foot"):
            yield Static("", id="xs-status")
            yield Static("", id="xs-watch")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(XenstoreTree).focus()
        self._open(self.path)
        self._watch()

    # ------------------------------------------------------------ fetching
    @work(thread=True, group="xs-open")
    def _open(self, path: str) -> None:
        """Each node from the root down to ``path``, opened."""
        source = self.app.source
        parts = path.strip("/").split("/") if path != "/" else []
        steps = ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        listings = []
        try:
            for step in steps:
                listings.append(source.call("xs_tree", path=step))
        except XlError as e:
            self.post_message(Failed(str(e)))
        if listings:
            self.post_message(Listed(listings, select=listings[-1]["path"]))

    @work(thread=True, group="xs-read")
    def _read(self, paths: list[str], settled: bool = False) -> None:
        source = self.app.source
        listings = []
        for path in paths:
            try:
                listings.append(source.call("xs_tree", path=path))
            except XlError:
                pass                        # it went meanwhile: its parent's listing says so
        self.post_message(Listed(listings, settled=settled))

    @work(thread=True, group="xs-watch")
    def _watch(self) -> None:
        worker = get_current_worker()
        try:
            socket_path = self.app.source.call("status")["xenstore_socket"]
            with Watch(socket_path, "/") as watch:
                events = watch.events(lambda: worker.is_cancelled)
                for first in events:
                    self.post_message(Watching(first))     # the event every new watch fires
                    break
                for path in events:
                    self.post_message(Changed(path))
        except (XlError, WatchError) as e:
            self.post_message(Failed(str(e)))

    @work(thread=True, group="xs-write")
    def _write(self, path: str, value: str) -> None:
        try:
            self.app.source.call("xs_write", path=path, value=value)
        except XlError as e:
            self.post_message(Failed(str(e)))
        else:
            self.post_message(Wrote(path, value))

    # ------------------------------------------------------------ answers
    def on_listed(self, message: Listed) -> None:
        tree = self.query_one(XenstoreTree)
        for listing in message.listings:
            node = tree.show(listing)
            if (message.select is not None and node is not None and node.allow_expand
                    and not node.is_expanded):
                self._opened_here.add(listing["path"])
                node.expand()
        if message.select is not None:
            # Once the tree has laid out the lines just added.
            tree.call_after_refresh(self._opened_at, message.select)
        self._light()
        self._show_detail()
        if message.settled:
            # One read for changes at a time, so that an older listing
            # never lands after a newer one.
            self._settling = False
            if self._changed:
                self._settle_soon()

    def _opened_at(self, path: str) -> None:
        self.query_one(XenstoreTree).select_path(path)
        self.opened = path

    def _light(self) -> None:
        tree = self.query_one(XenstoreTree)
        for path in self._to_light:
            tree.flash(path)
        self._to_light = []

    def on_watching(self, message: Watching) -> None:
        self.watching = True
        self._show_watch()

    def on_changed(self, message: Changed) -> None:
        self.changes += 1
        self._changed.append(message.path)
        if not self._settling:
            self._settle_soon()

    def _settle_soon(self) -> None:
        self._settling = True
        self.set_timer(SETTLE_S, self._settle)

    def _settle(self) -> None:
        """Read again the nearest listed node above each change (a write
        can make a node's missing parents too), then light what changed."""
        tree = self.query_one(XenstoreTree)
        changed, self._changed = self._changed, []
        stale = []
        for path in changed:
            above = parent_path(path) or path
            while above is not None and not tree.listed(above):
                above = parent_path(above)
            if above is not None and above not in stale:
                stale.append(above)
        self._to_light.extend(changed)
        if stale:
            self._read(stale, settled=True)
        else:
            self._settling = False
            self._light()
        self._show_watch()

    def on_wrote(self, message: Wrote) -> None:
        edit = self.query_one("#xs-edit", Input)
        edit.remove_class("shown")
        self.query_one(XenstoreTree).focus()
        self._say(f"wrote {message.path} = \"{shown_value(message.value, None)}\"")

    def on_failed(self, message: Failed) -> None:
        self._say(message.reason, error=True)

    # ------------------------------------------------------------ the tree
    @on(Tree.NodeExpanded, "#xs-tree")
    def _expanded(self, event: Tree.NodeExpanded) -> None:
        path = event.node.data["path"]
        if path in self._opened_here:
            self._opened_here.discard(path)
            return
        # Read each time it opens: a listing from long ago is not the store.
        self._read([path])

    @on(Tree.NodeHighlighted, "#xs-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        self._show_detail()

    def _cursor_data(self) -> dict | None:
        node = self.query_one(XenstoreTree).cursor_node
        return node.data if node is not None else None

    def _show_detail(self) -> None:
        data = self._cursor_data()
        if data is None:
            return
        self.query_one("#xs-title", Static).update(Text(f"xenstore  {data['path']}"))
        self.query_one("#xs-detail", Static).update(Text.assemble(
            (data["path"], "bold"), "\n\n",
            f"value        \"{shown_value(data['value'], None)}\"\n",
            f"permissions  {perms_text(data['perms'])}\n",
            f"children     {data['children']}"))

    # ------------------------------------------------------------ keys
    def action_leave(self) -> None:
        edit = self.query_one("#xs-edit", Input)
        if edit.has_focus:
            edit.remove_class("shown")      # Escape in the editor: nothing written
            self.query_one(XenstoreTree).focus()
            self._say("")
            return
        self.dismiss()

    def action_edit(self) -> None:
        data = self._cursor_data()
        if data is None:
            return
        self._editing = data["path"]
        edit = self.query_one("#xs-edit", Input)
        edit.border_title = f"{data['path']} = (Enter writes, Esc leaves it)"
        edit.value = data["value"]
        edit.add_class("shown")
        edit.focus()

    @on(Input.Submitted, "#xs-edit")
    def _submitted(self, event: Input.Submitted) -> None:
        # The node the editor was opened on, wherever the tree's cursor
        # went as the store changed meanwhile.
        if self._editing is not None:
            self._write(self._editing, event.value)

    # ------------------------------------------------------------ status
    def _say(self, text: str, error: bool = False) -> None:
        status = self.query_one("#xs-status", Static)
        status.set_class(error, "error")
        status.update(Text(text.splitlines()[0] if text else ""))

    def _show_watch(self) -> None:
        self.query_one("#xs-watch", Static).update(f"watching / · {self.changes} changes seen")

