"""`xl top`'s xenstore screen on a frozen host: the tree opened lazily
with each node's value and permissions, a write from the screen that
`xl xenstore read` sees, a node lit when another client writes it, and
errors in one line."""

from __future__ import annotations

from tui_host import xl
from tui_screen import ScreenApp, drive, off_loop, until, waiting_for

from tui.screens.xenstore import XenstoreScreen
from tui.source import Source
from tui.widgets.xstree import XenstoreTree

DOM2 = "/local/domain/2"


def opened_at(path):
    def ready(screen) -> bool:
        """the tree opened at the path, and the watch set"""
        return screen.watching and screen.opened == path
    return ready


def label(tree, path) -> str:
    node = tree.by_path[path]
    return tree.render_label(node, tree.rich_style, tree.rich_style).plain.lstrip("▶▼ ")


def test_snapshot_opened_at_a_domain(frozen_home, snap_compare):
    # First in the module: the host is as the fixture left it.
    app = ScreenApp(frozen_home, lambda: XenstoreScreen(DOM2))
    assert snap_compare(app, terminal_size=(110, 36),
                        run_before=waiting_for(XenstoreScreen, opened_at(DOM2)))


def test_nodes_open_one_at_a_time_with_values_and_permissions(frozen_home):
    async def script(pilot, screen):
        tree = screen.query_one(XenstoreTree)
        assert tree.listed("/") and not tree.listed("/local")
        assert "/local/domain" not in tree.by_path          # not read until /local opens
        await pilot.press("down", "down")                    # /tool, /local
        assert tree.cursor_node.data["path"] == "/local"
        await pilot.press("space")
        await until(pilot, lambda: tree.listed("/local"))
        await pilot.press("down", "space")                   # /local/domain
        await until(pilot, lambda: tree.listed("/local/domain"))
        await pilot.press("down", "down", "down", "enter")   # /local/domain/2
        await until(pilot, lambda: tree.listed(DOM2))
        name = label(tree, f"{DOM2}/name")
        detail = str(screen.query_one("#xs-detail").render())
        await pilot.press("space")                           # and closed again
        return name, detail, tree.by_path[DOM2].is_expanded

    name, detail, expanded = drive(frozen_home, lambda: XenstoreScreen(), opened_at("/"), script)
    assert name == f'name = "{xl(frozen_home, "xenstore", "read", f"{DOM2}/name").stdout.strip()}"  (n0,r2)'
    assert detail.startswith(DOM2) and "permissions  (n0,r2)" in detail
    assert "children     14" in detail
    assert not expanded


def test_e_edits_a_value_and_enter_writes_it(frozen_home):
    path = f"{DOM2}/data"

    async def script(pilot, screen):
        tree = screen.query_one(XenstoreTree)
        tree.select_path(path)
        await pilot.press("e")
        editor = screen.query_one("#xs-edit")
        assert editor.has_focus and editor.value == ""
        await pilot.press(*"hello there", "enter")
        await until(pilot, lambda: not editor.has_focus)
        status = str(screen.query_one("#xs-status").render())
        await until(pilot, lambda: path in tree.flashing)    # the write fired the watch
        return status, label(tree, path)

    status, shown = drive(frozen_home, lambda: XenstoreScreen(DOM2), opened_at(DOM2), script)
    assert xl(frozen_home, "xenstore", "read", path).stdout == "hello there\n"
    assert status == f'wrote {path} = "hello there"'
    assert shown == 'data = "hello there"  (n2)'


def test_escape_in_the_editor_writes_nothing(frozen_home):
    path = f"{DOM2}/domid"

    async def script(pilot, screen):
        screen.query_one(XenstoreTree).select_path(path)
        await pilot.press("e", "9", "escape")
        return screen.query_one("#xs-edit").has_focus, screen.is_current

    focused, current = drive(frozen_home, lambda: XenstoreScreen(DOM2), opened_at(DOM2), script)
    assert not focused and current                            # the editor closed, not the screen
    assert xl(frozen_home, "xenstore", "read", path).stdout == "2\n"


def test_a_node_lights_up_when_another_client_writes_it(frozen_home):
    async def script(pilot, screen):
        tree = screen.query_one(XenstoreTree)
        assert not tree.flashing
        await off_loop(xl, frozen_home, "xenstore", "write", f"{DOM2}/name", "ping-a-renamed")
        await until(pilot, lambda: f"{DOM2}/name" in tree.flashing)
        renamed = label(tree, f"{DOM2}/name")
        # A node made under an open one appears, lit; under a closed one
        # (device), the closed one lights up for it.
        await off_loop(xl, frozen_home, "xenstore", "write", f"{DOM2}/data/new/deeper", "1")
        await until(pilot, lambda: f"{DOM2}/data" in tree.flashing)
        await off_loop(xl, frozen_home, "xenstore", "write", f"{DOM2}/device/vif/0/probe", "1")
        await until(pilot, lambda: f"{DOM2}/device" in tree.flashing)
        watch = str(screen.query_one("#xs-watch").render())
        await until(pilot, lambda: not tree.flashing, timeout=5)   # and goes out again
        return renamed, tree.by_path[f"{DOM2}/data"].allow_expand, watch

    try:
        renamed, data_opens, watch = drive(frozen_home, lambda: XenstoreScreen(DOM2),
                                           opened_at(DOM2), script)
    finally:
        xl(frozen_home, "xenstore", "write", f"{DOM2}/name", "ping-a")
    assert renamed == 'name = "ping-a-renamed"  (n0,r2)'
    assert data_opens
    assert watch == "watching / · 3 changes seen"


def test_errors_are_one_line(frozen_home):
    async def missing(pilot, screen):
        await until(pilot, lambda: screen.query_one("#xs-status").has_class("error"))
        return str(screen.query_one("#xs-status").render())

    said = drive(frozen_home, lambda: XenstoreScreen("/local/domain/77"), lambda s: s.watching,
                 missing)
    assert said == "/local/domain/77: ENOENT"

    async def unwritable(pilot, screen):
        screen.query_one(XenstoreTree).select_path(f"{DOM2}/data")
        await pilot.press("e")
        screen.query_one("#xs-edit").value = "\udcff"      # no UTF-8 for it: the service refuses
        await pilot.press("enter")
        status = screen.query_one("#xs-status")
        await until(pilot, lambda: status.has_class("error"))
        return str(status.render()), screen.query_one("#xs-edit").has_focus

    said, still_editing = drive(frozen_home, lambda: XenstoreScreen(DOM2), opened_at(DOM2),
                                unwritable)
    assert said.startswith("bad arguments for xs_write: ") and "\n" not in said
    assert still_editing


def test_escape_and_q_leave(frozen_home):
    for key in ("escape", "q"):
        async def script(pilot, screen):
            await pilot.press(key)
            return pilot.app.screen is screen

        assert drive(frozen_home, lambda: XenstoreScreen(), opened_at("/"), script) is False


def test_the_service_lists_a_node_as_xenstore_sees_it_and_changes_nothing(frozen_home):
    source = Source(str(frozen_home))
    before = source.call("trace", limit=5)
    listing = source.call("xs_tree", path=DOM2 + "/")
    assert listing["path"] == DOM2 and listing["perms"] == ["n0", "r2"]
    names = [c["name"] for c in listing["children"]]
    assert names == source.call("xs_list", path=DOM2)      # in xenstored's order
    for child in listing["children"]:
        path = f"{DOM2}/{child['name']}"
        assert child["value"] == source.call("xs_read", path=path)
        assert child["children"] == len(source.call("xs_list", path=path))
    assert source.call("trace", limit=5) == before          # not a record more
