"""xl.cfg files (xl/xlcfg.py): tables of what libxlutil makes of them, the
YAML and TOML spellings of the same settings, and then the same files through
the real libxlutil (tests/c/xlcfg_probe.c), whose answers ours must equal."""

from __future__ import annotations

import errno
import glob
import json
import os
import random
import re
import subprocess
from pathlib import Path

import pytest

from tests.libxl_probe import libxl_toolchain

from xl.xlcfg import (
    XlCfgError, XlCfgValueError, XlConfig, load_config, parse_toml, parse_xlcfg, parse_yaml,
)

TESTS = Path(__file__).resolve().parent
PROBE = TESTS / "c" / "xlcfg_probe.c"
BUILD = TESTS / ".build"
XLEXAMPLES = sorted(glob.glob("/etc/xen/xlexample.*"))

# ---------------------------------------------------------------------------
# what a config holds

SYNTAX = [
    ("", {}),
    ("\n\n# only a comment\n", {}),
    ('name = "vm1"\n', {"name": "vm1"}),
    ("name = 'vm1'\n", {"name": "vm1"}),
    ("memory = 512", {"memory": "512"}),                      # no newline at the end
    ("memory=512\nvcpus=2\n", {"memory": "512", "vcpus": "2"}),
    ("a = 1; b = 2;c=3\n", {"a": "1", "b": "2", "c": "3"}),
    (";;\n;\n", {}),
    ("a = 1 # the first\n#b = 2\n", {"a": "1"}),
    ('a = "x # y"\n', {"a": "x # y"}),
    # numbers keep their spelling; the scanner takes [0-9][0-9a-fx]*
    ("a = 0x1f\nb = 010\nc = 12abc\nd = 1e5\ne = 0xx\n",
     {"a": "0x1f", "b": "010", "c": "12abc", "d": "1e5", "e": "0xx"}),
    # key characters
    ("a.b_c9 = 1\nx_ = 2\n", {"a.b_c9": "1", "x_": "2"}),
    # escapes
    (r'a = "\a\b\f\n\r\t\v\"\'\\"' "\n", {"a": "\a\b\f\n\r\t\v\"'\\"}),
    (r"a = 'it\'s'" "\n", {"a": "it's"}),
    ('a = "it\'s"\nb = \'say "hi"\'\n', {"a": "it's", "b": 'say "hi"'}),
    # libxlu's numeric escapes eat the digits after them and emit nothing
    (r'a = "a\101b"' "\n", {"a": "ab"}),
    (r'a = "\1234"' "\n", {"a": ""}),
    (r'a = "\1 5x"' "\n", {"a": "x"}),
    (r'a = "\1-5y"' "\n", {"a": "y"}),
    (r'a = "\0999z"' "\n", {"a": "z"}),
    # lists: empty, trailing comma, nested, over lines with comments
    ("a = []\n", {"a": []}),
    ("a = [ 1, ]\n", {"a": ["1"]}),
    ('a = [1, "b", [2, [3]], []]\n', {"a": ["1", "b", ["2", ["3"]], []]}),
    ("a = [\n  'x', # first\n\n  'y'\n  ,\n]\n", {"a": ["x", "y"]}),
    ("a = [\n]\n", {"a": []}),
    # the later setting wins; += appends
    ("a = 1\na = 2\n", {"a": "2"}),
    ('a = "x"\na += "y"\na += "z"\n', {"a": "xyz"}),
    ("a = [1]\na += [2, 3]\na += []\n", {"a": ["1", "2", "3"]}),
    ('a += "y"\n', {"a": "y"}),
    ("a = 5\na += 6\n", {"a": "56"}),
    ('a = "x"\na = [1]\na += [2]\n', {"a": ["1", "2"]}),
    ('a = "x"\nb = "q"\na = "y"\na += "z"\n', {"a": "yz", "b": "q"}),
    ("a+='x'\n", {"a": "x"}),
    # what flex drops at the end of a file without reporting it
    ("a = 1 +", {"a": "1"}),
    ("a = 1\n#", {"a": "1"}),
    ("a = 1 @", {"a": "1"}),
]


@pytest.mark.parametrize("text, expected", SYNTAX, ids=[repr(t) for t, _ in SYNTAX])
def test_configs_read_as_libxlutil_reads_them(text, expected):
    assert dict(parse_xlcfg(text)) == expected


ERRORS = [
    # (text, line, column, message, libxlu's report when it differs from one line)
    ("x =\n", 1, 4, "config parsing error near <newline>: syntax error, unexpected NEWLINE,"
     " expecting STRING or NUMBER or '['", ["F:0: config parsing error near <newline>:"
     " syntax error, unexpected NEWLINE, expecting STRING or NUMBER or '['"]),
    ("x = ", 1, 5, "config parsing error near `': syntax error, unexpected $end,"
     " expecting STRING or NUMBER or '['", None),
    ("x", 1, 2, "config parsing error near `': syntax error, unexpected $end,"
     " expecting += or '='", None),
    ("x = 1 y", 1, 7, "config parsing error near `y': syntax error, unexpected IDENT,"
     " expecting $end", None),
    ("x = 1\n\ny = 2 3\n", 3, 7, "config parsing error near `3': syntax error,"
     " unexpected NUMBER, expecting $end", None),
    ("x y\n", 1, 3, "config parsing error near `y': syntax error, unexpected IDENT,"
     " expecting += or '='", None),
    ("\n= 2\n", 2, 1, "config parsing error near `=': syntax error, unexpected '=',"
     " expecting $end or IDENT or NEWLINE or ';'", None),
    ("x\n= 1", 1, 2, "config parsing error near <newline>: syntax error, unexpected NEWLINE,"
     " expecting += or '='", ["F:0: config parsing error near <newline>: syntax error,"
                              " unexpected NEWLINE, expecting += or '='"]),
    ("a = 1\nb = # why\n", 2, 5, "config parsing error near `# why': syntax error,"
     " unexpected NEWLINE, expecting STRING or NUMBER or '['",
     ["F:1: config parsing error near `# why': syntax error, unexpected NEWLINE,"
      " expecting STRING or NUMBER or '['"]),
    ("x = [ foo ]\n", 1, 7, "config parsing error near `foo': syntax error,"
     " unexpected IDENT, expecting ']'", None),
    ("x = [1 2]\n", 1, 8, "config parsing error near `2': syntax error,"
     " unexpected NUMBER, expecting ']'", None),
    ("x = [,]\n", 1, 6, "config parsing error near `,': syntax error,"
     " unexpected ',', expecting ']'", None),
    ("x = [1,,2]\n", 1, 8, "config parsing error near `,': syntax error,"
     " unexpected ',', expecting ']'", None),
    ("x = [\n", 2, 1, "config parsing error near `': syntax error, unexpected $end,"
     " expecting ']'", ["F:1: config parsing error near `': syntax error,"
                        " unexpected $end, expecting ']'"]),
    ("x = 'a' 'b'\n", 1, 9, "config parsing error near `'b'': syntax error,"
     " unexpected STRING, expecting $end", None),
    # lexical errors
    ("X = 1\n", 1, 1, "config parsing error near `X': lexical error", None),
    ("aB = 1\n", 1, 2, "config parsing error near `B': lexical error", None),
    ("x = 0x1F\n", 1, 8, "config parsing error near `F': lexical error", None),
    ("x = @foo bar\n", 1, 5, "config parsing error near `@foo': lexical error", None),
    ('x = "abc\n', 1, 5, "config parsing error near `\"abc': lexical error", None),
    ("x = 1\r\n", 1, 6, "config parsing error near `\r': lexical error", None),
    ("x = 1\n# no newline", 2, 1, "config parsing error near `#': lexical error", None),
    ("x = é\n", 1, 5, "config parsing error near `é': lexical error", None),
    ("x = 1.5\n", 1, 6, "config parsing error near `.5': lexical error",
     ["F:1: config parsing error near `.5': lexical error",
      "warning: Config file looks like it contains Python code.",
      "warning:  Arbitrary Python is no longer supported.",
      "warning:  See https://wiki.xen.org/wiki/PythonInXlConfig"]),
    # escapes
    (r'x = "a\qb"', 1, 5, "config parsing error near `\"a\\qb\"': invalid character"
     " after backlash in quoted string", None),
    (r'x = "\8"', 1, 5, "config parsing error near `\"\\8\"': invalid character"
     " after backlash in quoted string", None),
    (r'x = "\x41"', 1, 5, "config parsing error near `\"\\x41\"': invalid digit after"
     " backslash hexnumerical character escape in quoted string", None),
    (r'x = "\12"', 1, 5, "config parsing error near `\"\\12\"': invalid digit after"
     " backslash octalnumerical character escape in quoted string", None),
    (r'x = "\1+ 5"', 1, 5, "config parsing error near `\"\\1+ 5\"': invalid digit after"
     " backslash octalnumerical character escape in quoted string", None),
    # += across kinds
    ('x = "a"\nx += [1]\n', 2, 8, "config parsing error near `]': can't add [list]"
     " to \"string\" or vice versa", None),
    ('x = [1]\nx += "a"\n', 2, 6, "config parsing error near `\"a\"': can't add [list]"
     " to \"string\" or vice versa", None),
    # recovery goes on to the next line, silently for the first two tokens
    ("a = = 1\nb 5\n", 1, 5, "config parsing error near `=': syntax error, unexpected '=',"
     " expecting STRING or NUMBER or '['", None),
    ("a = = 1\n\nb 5\n", 1, 5, "config parsing error near `=': syntax error,"
     " unexpected '=', expecting STRING or NUMBER or '['",
     ["F:1: config parsing error near `=': syntax error, unexpected '=',"
      " expecting STRING or NUMBER or '['",
      "F:3: config parsing error near `5': syntax error, unexpected NUMBER,"
      " expecting += or '='"]),
    # once anything has failed, escapes are no longer looked at
    ("a = = 1\nb = '\\q'\n", 1, 5, "config parsing error near `=': syntax error,"
     " unexpected '=', expecting STRING or NUMBER or '['", None),
    # after a lexical error that ends a line, the next line's errors go unsaid
    ("x = 1 @\ny 5\n", 1, 7, "config parsing error near `@': lexical error", None),
]


@pytest.mark.parametrize("text, line, column, message, report", ERRORS,
                         ids=[repr(e[0]) for e in ERRORS])
def test_bad_configs_fail_where_and_as_libxlutil_says(text, line, column, message, report):
    with pytest.raises(XlCfgError) as caught:
        parse_xlcfg(text, "F")
    error = caught.value
    assert (error.filename, error.line, error.column, error.message) == ("F", line, column, message)
    assert str(error) == f"F:{line}:{column}: {message}"
    assert list(error.report) == (report or [f"F:{line}: {message}"])


def test_a_failed_read_gives_nothing():
    with pytest.raises(XlCfgError) as caught:
        parse_xlcfg("a = 1\nb = 2\nc = = 3\nd = 4\n")
    assert not hasattr(caught.value, "config")
    assert isinstance(caught.value, ValueError)


def test_crlf_is_read_only_when_asked():
    with pytest.raises(XlCfgError):
        parse_xlcfg("a = 1\r\nb = [2,\r\n 3]\r\n")
    assert dict(parse_xlcfg("a = 1\r\nb = [2,\r\n 3]\r\n", accept_crlf=True)) == {
        "a": "1", "b": ["2", "3"]}


def test_settings_and_values_know_where_they_are():
    cfg = parse_xlcfg('# vm\nname = "vm1"\n  disk = [ "a",\n    ["b"] ]; x = 1\n'
                      'name += "x"\n', "f.cfg")
    assert cfg.position("disk") == (3, 3)
    assert cfg.position("x") == (4, 14)
    assert cfg.position("name") == (5, 1)           # the setting in force
    disk = cfg.setting("disk").value
    assert (disk.line, disk.column) == (3, 10)
    assert [(item.line, item.column) for item in disk.data] == [(3, 12), (4, 5)]
    inner = disk.data[1].data[0]
    assert (inner.data, inner.line, inner.column) == ("b", 4, 6)
    assert cfg.setting("name").appended and not cfg.setting("x").appended
    assert list(cfg.keys()) == ["name", "disk", "x"]


def test_values_are_asked_for_as_libxlu_answers():
    cfg = parse_xlcfg('a = 0x10\nb = "  -12"\nc = "12 "\nd = [1, [2], "x"]\n'
                      'e = 99999999999999999999\nf = 5\nf += 6\ng = 08\n', "f.cfg")
    assert cfg.get_long("a") == 16
    assert cfg.get_long("b") == -12
    assert cfg.get_string("c") == "12 "
    assert cfg.get_list("d") == ["1", ["2"], "x"]
    assert cfg.get_list_as_strings("d") == ["1", None, "x"]
    assert cfg.get_string("missing", None) is None
    assert cfg.get_long("missing", 7) == 7
    assert cfg.get_list("missing", []) == []
    with pytest.raises(KeyError):
        cfg.get_long("missing")
    cases = [
        (lambda: cfg.get_long("c"), errno.EINVAL,
         "f.cfg:3: warning: parameter `c' is not a valid number"),
        (lambda: cfg.get_long("g"), errno.EINVAL,
         "f.cfg:8: warning: parameter `g' is not a valid number"),
        (lambda: cfg.get_long("e"), errno.ERANGE, "f.cfg:5: warning: parameter `e' could not"
         " be parsed as a number: Numerical result out of range"),
        (lambda: cfg.get_long("f"), errno.EINVAL,
         "f.cfg:7: warning: can't use += with numbers for parameter `f'"),
        (lambda: cfg.get_string("d"), errno.EINVAL,
         "f.cfg:4: warning: parameter `d' is a list but should be a single value"),
        (lambda: cfg.get_list("a"), errno.EINVAL,
         "f.cfg:1: warning: parameter `a' is a single value but should be a list"),
        (lambda: cfg.get_long("a", maximum=15), errno.EINVAL,
         "f.cfg:1: warning: value `16' is greater than maximum bound '15'"),
        (lambda: cfg.get_long("b", minimum=0), errno.EINVAL,
         "f.cfg:2: warning: value `-12' is smaller than minimum bound '0'"),
    ]
    for ask, number, warning in cases:
        with pytest.raises(XlCfgValueError) as caught:
            ask()
        assert (caught.value.errno, caught.value.warning, str(caught.value)) == (
            number, warning, warning)
    assert cfg.get_string("f") == "56"


@pytest.mark.skipif(not XLEXAMPLES, reason="no /etc/xen/xlexample.* here")
@pytest.mark.parametrize("path", XLEXAMPLES)
def test_the_example_configs_parse(path):
    cfg = load_config(path)
    assert cfg.filename == path
    assert cfg.get_string("name").startswith("example.")
    assert cfg.get_long("memory") > 0
    assert all(isinstance(d, str) for d in cfg.get_list("disk"))


# ---------------------------------------------------------------------------
# YAML and TOML

XLCFG = """\
name = "web1"
type = 'pvh'
memory = 1024
maxmem = 0x800
vcpus = 2
kernel = "/boot/vmlinuz"
extra = "console=hvc0 root=/dev/xvda1"
on_crash = "restart"
vif = [ 'bridge=xenbr0,mac=00:16:3e:00:00:01', 'bridge=xenbr1' ]
disk = [ '/img/web1.raw,raw,xvda,rw', "/img/data.qcow2,qcow2,xvdb,r" ]
cpus = [ "0-1", "2" ]
nested = [ [1, 2], [], "x" ]
acpi = 1
pci_permissive = 0
"""

YAML = """\
name: web1
type: "pvh"
memory: 1024
maxmem: 0x800            # a YAML int, so its decimal text
vcpus: 2
kernel: /boot/vmlinuz
extra: console=hvc0 root=/dev/xvda1
on_crash: restart
vif:
  - bridge=xenbr0,mac=00:16:3e:00:00:01
  - bridge=xenbr1
disk: ['/img/web1.raw,raw,xvda,rw', "/img/data.qcow2,qcow2,xvdb,r"]
cpus: ["0-1", "2"]
nested: [[1, 2], [], x]
acpi: true
pci_permissive: false
"""

TOML = """\
name = "web1"
type = 'pvh'
memory = 1024
maxmem = 0x800
vcpus = 2
kernel = "/boot/vmlinuz"
extra = "console=hvc0 root=/dev/xvda1"
on_crash = "restart"
vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:01", "bridge=xenbr1" ]
disk = [
  "/img/web1.raw,raw,xvda,rw",
  "/img/data.qcow2,qcow2,xvdb,r",
]
cpus = ["0-1", "2"]
nested = [[1, 2], [], "x"]
acpi = true
pci_permissive = false
"""


def test_yaml_and_toml_say_what_xl_cfg_says(tmp_path):
    files = {"web1.cfg": XLCFG, "web1.yaml": YAML, "web1.yml": YAML, "web1.toml": TOML}
    configs = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        configs[name] = load_config(tmp_path / name)
    xlcfg = configs.pop("web1.cfg")
    assert xlcfg["maxmem"] == "0x800" and xlcfg.get_long("maxmem") == 2048
    for name, cfg in configs.items():
        assert list(cfg.items()) != [] and cfg.filename.endswith(name)
        expected = dict(xlcfg, maxmem="2048")
        assert dict(cfg) == expected, name
        assert list(cfg.keys()) == list(xlcfg.keys()), name
        assert cfg.get_long("maxmem") == xlcfg.get_long("maxmem")


def test_yaml_and_toml_positions():
    yaml_cfg = parse_yaml(YAML)
    assert yaml_cfg.position("vif") == (9, 1)
    assert (yaml_cfg.setting("vif").value.data[1].line,
            yaml_cfg.setting("vif").value.data[1].column) == (11, 5)
    toml_cfg = parse_toml(TOML)
    assert toml_cfg.position("disk") == (10, 1)
    assert (toml_cfg.setting("memory").value.line, toml_cfg.setting("memory").value.column) == (3, 10)


YAML_ERRORS = [
    ("a: 1\nb: {c: 1}\n", 2, 4, "`b' holds a table; xl.cfg values are strings, numbers and lists"),
    ("a: [1, {c: 1}]\n", 1, 8, "`a' holds a table; xl.cfg values are strings, numbers and lists"),
    ("a: 1\nb:\n", 2, 3, "`b' has no value"),
    ("- 1\n- 2\n", 1, 1, "a config is a mapping of settings"),
    ("Name: x\n", 1, 1, "`Name' is not a name xl.cfg can spell (lower-case letters,"
     " digits, `.' and `_', starting with a letter)"),
    ("a: 1\n  b: 2\n", 2, 4, "mapping values are not allowed here"),
    ("a: [1, 2\nb: 3\n", 2, 2, "while parsing a flow sequence, expected ',' or ']',"
     " but got ':'"),
]


@pytest.mark.parametrize("text, line, column, message", YAML_ERRORS,
                         ids=[repr(e[0]) for e in YAML_ERRORS])
def test_bad_yaml_is_refused_with_a_position(text, line, column, message):
    with pytest.raises(XlCfgError) as caught:
        parse_yaml(text, "f.yaml")
    assert (caught.value.line, caught.value.column, caught.value.message) == (line, column, message)


TOML_ERRORS = [
    ('a = 1\n[b]\nc = 1\n', 2, 1, "`b' holds a table; xl.cfg values are strings, numbers and lists"),
    ('a = 1\nb = { c = 1 }\n', 2, 5, "`b' holds a table; xl.cfg values are strings, numbers and lists"),
    ('a = 1\nb.c = 1\n', 2, 1, "`b' holds a table; xl.cfg values are strings, numbers and lists"),
    ('a = [1, {c = 1}]\n', 1, 5, "`a' holds a table; xl.cfg values are strings, numbers and lists"),
    ('Name = "x"\n', 1, 1, "`Name' is not a name xl.cfg can spell (lower-case letters,"
     " digits, `.' and `_', starting with a letter)"),
    ('a = 1\nb = \n', 2, 5, "Invalid value"),
    ('a = 1\na = 2\n', 2, 6, "Cannot overwrite a value"),
    ('a = "x', 1, 7, "Unterminated string"),
]


@pytest.mark.parametrize("text, line, column, message", TOML_ERRORS,
                         ids=[repr(e[0]) for e in TOML_ERRORS])
def test_bad_toml_is_refused_with_a_position(text, line, column, message):
    with pytest.raises(XlCfgError) as caught:
        parse_toml(text, "f.toml")
    assert (caught.value.line, caught.value.column, caught.value.message) == (line, column, message)


def test_files_choose_their_reader_by_extension(tmp_path):
    (tmp_path / "a.YML").write_text("a: 1\n")
    (tmp_path / "a.toml").write_text("a = 1\n")
    (tmp_path / "a.conf").write_text("a = 1\n")
    (tmp_path / "a").write_text("a = [1]\n")
    assert [dict(load_config(tmp_path / n)) for n in ("a.YML", "a.toml", "a.conf", "a")] == [
        {"a": "1"}, {"a": "1"}, {"a": "1"}, {"a": ["1"]}]
    (tmp_path / "bad.yaml").write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(XlCfgError) as caught:
        load_config(tmp_path / "bad.yaml")
    assert (caught.value.line, caught.value.column) == (2, 4)
    assert str(caught.value).startswith(str(tmp_path / "bad.yaml") + ":2:4: ")


def test_configs_compare_by_their_settings():
    assert parse_xlcfg("a = 1\nb = [2]\n") == XlConfig(parse_yaml("b: [2]\na: 1\n").settings())
    assert parse_xlcfg("a = 1\n") != parse_xlcfg("a = '2'\n")


# ---------------------------------------------------------------------------
# against the real libxlutil

DIFF_CONFIGS = [text for text, _ in SYNTAX] + [e[0] for e in ERRORS] + [
    XLCFG,
    "a = 1\nb = 'x'\nc = [1, 'y', [2, [3, 'z']], []]\nd = ''\n",
    'a = "0x1f"\nb = 010\nc = 08\nd = 12abc\ne = 99999999999999999999\nf = " -5"\n'
    'g = "+7 "\nh = ""\ni = "0x"\nj = -1\nk = "-9223372036854775808"\n'
    'l = "9223372036854775808"\nm = "\\t42"\n',
    "a = 5\na += 6\nb += 'q'\nc = [1]\nc += [2]\nc += [[3]]\n",
    "a = 1 - 2 @ 3\n",
    'x = "a\\qb" "c\\qd"\n',
    "x = 1 -\ny = 2 -\n",
    'x = "a"\nx += [1] +\n',
    'x = "a" +\nx += [1]\n',
    "x = 1\n= 2 3 4\ny = 5 6\n",
    "a = = 1\nb = 5 6\n",
    "a = ]\nb = [\n1,\n2 3]\nc = 4\n\n\nd = [5 +\n",
    "a = 1;;b = 2 ; c = [ ; ]\n",
    "a = 'x' # c\n# d\n\tb\t=\t2\t\n",
    "a = [1,\n# inside\n\n2,\n\n]\nb = 'é'\nc = \"tab\\there\"\n",
    "# ends in a comment",
    "a = 1 )",
    "a = 1\n  +\n",
    "a = [ 'x'\n\n, 'y' ]\n",
    "x = 1;\n;x += 2\nx = [1]\n",
]


def generated_configs(count: int) -> list[str]:
    """Mostly well-formed settings, some of them damaged: a token dropped,
    doubled or replaced, so the errors land in every parser state."""
    rng = random.Random(20240711)
    atoms = ["1", "0x10", "077", "12ab", "'s'", '"d q"', '""', r'"\n"', r'"a\101b"',
             "'it\\'s'"]
    bad_atoms = [r'"\x41"', r'"\q"', r'"\12"', '"unterminated']
    junk = ["@", "-", ".", "X", "(", ":", "+", "#", "=", "+=", ",", "[", "]", ";",
            "\n", "'", "\r", "é", "k"]

    def value(depth: int) -> list[str]:
        if depth < 2 and rng.random() < 0.35:
            items = [value(depth + 1) for _ in range(rng.randint(0, 3))]
            tokens = ["["]
            for i, item in enumerate(items):
                tokens += item
                if i < len(items) - 1 or rng.random() < 0.3:
                    tokens.append(",")
                if rng.random() < 0.2:
                    tokens.append("\n")
            return tokens + ["]"]
        return [rng.choice(bad_atoms if rng.random() < 0.05 else atoms)]

    configs = []
    for _ in range(count):
        tokens: list[str] = []
        for _ in range(rng.randint(1, 5)):
            kind = rng.random()
            if kind < 0.1:
                tokens += ["# note\n"]
            elif kind < 0.15:
                tokens += ["\n"]
            else:
                tokens += [rng.choice("abcde"), rng.choice(["=", "=", "+="])] + value(0)
                tokens.append(rng.choice(["\n", "\n", ";", " # c\n"]))
        if rng.random() < 0.6:
            at = rng.randrange(len(tokens))
            damage = rng.random()
            if damage < 0.3:
                del tokens[at]
            elif damage < 0.5:
                tokens.insert(at, tokens[at])
            else:
                tokens[at] = rng.choice(junk)
        if rng.random() < 0.2:
            tokens[-1] = tokens[-1].rstrip("\n")
        configs.append(" ".join(tokens))
    return configs


def build_probe() -> Path:
    gcc, _pkg_config, flags = libxl_toolchain()
    BUILD.mkdir(exist_ok=True)
    exe = BUILD / f"xlcfg_probe.{os.getpid()}"
    subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(PROBE), *flags],
                   check=True, capture_output=True)
    return exe


def keys_to_ask(text: str) -> list[str]:
    return sorted(set(re.findall(r"[a-z][._0-9a-z]*", text)) | {"absent"})[:40]


@pytest.fixture(scope="module")
def libxlutil_answers(tmp_path_factory):
    exe = build_probe()
    folder = tmp_path_factory.mktemp("xlcfg")
    cases = []
    texts = DIFF_CONFIGS + generated_configs(400)
    for number, text in enumerate(texts):
        path = folder / f"c{number}.cfg"
        path.write_bytes(text.encode("utf-8"))
        cases.append((str(path), text))
    for example in XLEXAMPLES:
        cases.append((example, Path(example).read_text()))
    request = "".join(f"{path}\t{' '.join(keys_to_ask(text))}\n" for path, text in cases)
    try:
        out = subprocess.run([str(exe)], input=request.encode(), capture_output=True,
                             check=True).stdout.decode("utf-8", "surrogateescape")
    finally:
        exe.unlink()
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(cases)
    return [(path, text, answer) for (path, text), answer in zip(cases, answers)]


def ours_as_reported(path: str, text: str) -> dict:
    """Our answer in the probe's terms."""
    try:
        cfg = load_config(path)
    except XlCfgError as e:
        return {"rc": errno.EINVAL, "report": "".join(line + "\n" for line in e.report),
                "keys": []}
    keys = []
    for key in keys_to_ask(text):
        answer: dict = {"key": key}
        for kind, ask in (("string", cfg.get_string), ("list", cfg.get_list),
                          ("long", cfg.get_long)):
            try:
                got, rc, report = ask(key), 0, ""
            except KeyError:
                got, rc, report = None, errno.ESRCH, ""
            except XlCfgValueError as e:
                got, rc, report = None, e.errno, e.warning + "\n"
            answer[f"{kind}_rc"] = rc
            answer[f"{kind}_report"] = report
            if kind == "list":
                answer["tree"] = got
                answer["items"] = None if rc else cfg.get_list_as_strings(key)
            else:
                answer[kind] = got
        keys.append(answer)
    return {"rc": 0, "report": "", "keys": keys}


def test_configs_read_as_libxlutil_reads_them_through_the_library(libxlutil_answers):
    failures = 0
    for path, text, theirs in libxlutil_answers:
        ours = ours_as_reported(path, text)
        assert (ours["rc"] == 0) == (theirs["rc"] == 0), text
        failures += theirs["rc"] != 0
        assert ours["report"] == theirs["report"], text
        assert ours["keys"] == theirs["keys"], text
    assert failures > 100 and len(libxlutil_answers) - failures > 100


def test_error_lines_agree_with_libxlutil_where_it_is_not_off_by_one(libxlutil_answers):
    """Our XlCfgError.line is where the offending text is; libxlu's first
    line number is too, except at a newline or end of file."""
    for path, text, theirs in libxlutil_answers:
        if theirs["rc"] == 0:
            continue
        with pytest.raises(XlCfgError) as caught:
            parse_xlcfg(text, path)
        first = theirs["report"].split("\n")[0]
        reported_line = int(first[len(path) + 1:].split(":", 1)[0])
        near_end = "near <newline>" in first or "unexpected NEWLINE" in first \
            or "unexpected $end" in first
        if not near_end:
            assert caught.value.line == reported_line, text
        assert first == f"{path}:{reported_line}: {caught.value.message}"
