"""xl.cfg files read the way libxlutil reads them, and YAML and TOML files
spelling the same settings.

This is the syntax layer only: which keys exist and what they mean is the
toolstack's business, so an unknown key is not an error here.

The xl.cfg reader follows Xen 4.17's tools/libs/util (libxlu_cfg_l.l,
libxlu_cfg_y.y, libxlu_cfg.c) down to its corners, because a config that xl
accepts must mean the same here and one it refuses must be refused with the
same words:

- Keys are `[a-z][._0-9a-z]*`; a number token is `[0-9][0-9a-fx]*` and keeps
  its spelling (libxlu stores every atom as text and converts on request).
- Strings take either quote and may not span lines. Escapes: \\a \\b \\f \\n \\r
  \\t \\v \\" \\' \\\\. libxlu's numeric escapes are broken and this keeps them
  broken: \\x always fails, and \\<octal digit> swallows what strtoul reads
  as a decimal number in the next three characters (it must read at least
  two) and yields nothing. After the first error escapes go unchecked.
- `+=` appends to the previous setting of the key (string to string, list to
  list; mixing is an error); with no previous setting it sets. A setting made
  with `+=` is refused as a number by get_long, as libxlu refuses it.
- A `#` comment runs to a newline; one without a newline at the end of the
  file is a lexical error, yet a stray character (`#`, `+`, `@`, ...) that is
  the very last one is dropped unreported, because flex ends the file in its
  error state without a word.
- Errors: libxlu reports each one as `FILE:LINE: config parsing error near
  `TEXT': MESSAGE` and keeps going (bison's `error NEWLINE` recovery, with its
  silences), then fails the whole read. XlCfgError.report holds that exact
  text, line for line; its line numbers keep libxlu's slips (an error found
  at a newline is reported one line early, at end of file on the last
  token's line). XlCfgError.line and .column are where the offending text
  really is.

What differs from libxlutil, on purpose:
- A failed read gives nothing; libxlu keeps the settings it stored before the
  first error (which xl never looks at, since it stops).
- Columns: libxlu's lexer never sets them (its warnings print 1 or garbage);
  here every setting and value knows its line and column.
- A list value's position is its `[`; libxlu's is its first item's.
- Characters, not bytes: a file is read as UTF-8 (undecodable bytes kept by
  surrogate escapes), so columns count characters.
- `accept_crlf=True` reads CRLF line endings, which real xl rejects.
"""

from __future__ import annotations

import errno
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

__all__ = [
    "ConfigValue", "Setting", "XlCfgError", "XlCfgValueError", "XlConfig",
    "load_config", "parse_toml", "parse_xlcfg", "parse_yaml",
]

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1

PlainValue = Union[str, list["PlainValue"]]

KEY_PATTERN = re.compile(r"[a-z][._0-9a-z]*\Z")


class XlCfgError(ValueError):
    """A config that cannot be read. `report` is what libxlutil would print
    for it (several lines when it finds several errors)."""

    def __init__(self, filename: str, line: int, column: int, message: str,
                 report: Iterable[str] = ()):
        super().__init__(f"{filename}:{line}:{column}: {message}")
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message
        self.report = tuple(report) or (f"{filename}:{line}: {message}",)


class XlCfgValueError(ValueError):
    """A setting asked for as something it is not; `warning` is the line
    libxlutil prints, `errno` the value it returns."""

    def __init__(self, key: str, error_number: int, warning: str):
        super().__init__(warning)
        self.key = key
        self.errno = error_number
        self.warning = warning


@dataclass(frozen=True)
class ConfigValue:
    """An atom (a number keeps its spelling, a string loses its quotes and
    escapes) or a list of values, and where it starts."""

    data: str | tuple[ConfigValue, ...]
    line: int
    column: int

    @property
    def is_list(self) -> bool:
        return not isinstance(self.data, str)

    def plain(self) -> PlainValue:
        if isinstance(self.data, str):
            return self.data
        return [item.plain() for item in self.data]


@dataclass(frozen=True)
class Setting:
    """The setting of a key in force, and where its key is written."""

    key: str
    value: ConfigValue
    appended: bool          # made with `+=`, which libxlu will not read as a number
    line: int
    column: int


_REQUIRED = object()


class XlConfig(Mapping[str, PlainValue]):
    """Key -> value (str for atoms, lists of them, nested as written), in
    the order keys first appear; the last setting of a key wins.

    The get_* methods answer as libxlu's xlu_cfg_get_* do: a missing key is
    a KeyError unless a default is given, and a value of the wrong shape an
    XlCfgValueError carrying libxlu's warning."""

    def __init__(self, settings: Iterable[Setting] = (), filename: str = "<config>"):
        self.filename = filename
        self._settings: dict[str, Setting] = {}
        for setting in settings:
            self._settings[setting.key] = setting

    def __getitem__(self, key: str) -> PlainValue:
        return self._settings[key].value.plain()

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __repr__(self) -> str:
        return f"XlConfig({dict(self)!r}, filename={self.filename!r})"

    def setting(self, key: str) -> Setting:
        return self._settings[key]

    def settings(self) -> list[Setting]:
        return list(self._settings.values())

    def position(self, key: str) -> tuple[int, int]:
        setting = self._settings[key]
        return setting.line, setting.column

    def _warning(self, setting: Setting, text: str) -> str:
        return f"{self.filename}:{setting.line}: warning: {text}"

    def _atom(self, key: str, default: object) -> Setting | None:
        setting = self._settings.get(key)
        if setting is None:
            if default is _REQUIRED:
                raise KeyError(key)
            return None
        if setting.value.is_list:
            raise XlCfgValueError(key, errno.EINVAL, self._warning(
                setting, f"parameter `{key}' is a list but should be a single value"))
        return setting

    def get_string(self, key: str, default: object = _REQUIRED) -> str:
        setting = self._atom(key, default)
        if setting is None:
            return default  # type: ignore[return-value]
        return setting.value.data  # type: ignore[return-value]

    def get_long(self, key: str, default: object = _REQUIRED, *,
                 minimum: int = LONG_MIN, maximum: int = LONG_MAX) -> int:
        """xlu_cfg_get_bounded_long: C's strtol with base 0 (leading blanks
        and a sign allowed, 0x hex, 0 octal), the whole text or nothing."""
        setting = self._atom(key, default)
        if setting is None:
            return default  # type: ignore[return-value]
        if setting.appended:
            raise XlCfgValueError(key, errno.EINVAL, self._warning(
                setting, f"can't use += with numbers for parameter `{key}'"))
        number, consumed, overflow = _strtol(setting.value.data)  # type: ignore[arg-type]
        if overflow:
            raise XlCfgValueError(key, errno.ERANGE, self._warning(
                setting, f"parameter `{key}' could not be parsed as a number:"
                " Numerical result out of range"))
        if consumed == 0 or consumed != len(setting.value.data):
            raise XlCfgValueError(key, errno.EINVAL, self._warning(
                setting, f"parameter `{key}' is not a valid number"))
        if number < minimum:
            raise XlCfgValueError(key, errno.EINVAL, self._warning(
                setting, f"value `{number}' is smaller than minimum bound '{minimum}'"))
        if number > maximum:
            raise XlCfgValueError(key, errno.EINVAL, self._warning(
                setting, f"value `{number}' is greater than maximum bound '{maximum}'"))
        return number

    def get_list(self, key: str, default: object = _REQUIRED) -> list[PlainValue]:
        setting = self._settings.get(key)
        if setting is None:
            if default is _REQUIRED:
                raise KeyError(key)
            return default  # type: ignore[return-value]
        if not setting.value.is_list:
            raise XlCfgValueError(key, errno.EINVAL, self._warning(
                setting, f"parameter `{key}' is a single value but should be a list"))
        return setting.value.plain()  # type: ignore[return-value]

    def get_list_as_strings(self, key: str, default: object = _REQUIRED) -> list[str | None]:
        """The list's items as xlu_cfg_get_listitem gives them: a nested list
        is None."""
        items = self.get_list(key, default)
        if items is default:
            return default  # type: ignore[return-value]
        return [item if isinstance(item, str) else None for item in items]


_C_SPACE = " \t\n\v\f\r"


_DIGIT_VALUES = {c: int(c, 36) for c in "0123456789abcdefghijklmnopqrstuvwxyz"}
_DIGIT_VALUES.update({c.upper(): v for c, v in _DIGIT_VALUES.items()})


def _strtol(text: str, base: int = 0) -> tuple[int, int, bool]:
    """C's strtol/strtoul reading: (value, characters consumed, overflowed).
    Nothing consumed means no digits were found."""
    i = 0
    while i < len(text) and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < len(text) and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    # "0x" counts as a prefix only when a hex digit follows; else the 0 is
    # the number and the x is left over
    if base in (0, 16) and text[i:i + 2] in ("0x", "0X") \
            and _DIGIT_VALUES.get(text[i + 2:i + 3], 99) < 16:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    start = i
    while i < len(text) and _DIGIT_VALUES.get(text[i], 99) < base:
        i += 1
    if i == start:
        return 0, 0, False
    value = int(text[start:i], base)
    value = -value if negative else value
    return value, i, not LONG_MIN <= value <= LONG_MAX


# ---------------------------------------------------------------------------
# the xl.cfg scanner: libxlu_cfg_l.l

# Token kinds, spelled as bison names them in its messages and listed in
# bison's symbol order, which is the order of an "expecting" list.
END, IDENT, STRING, NUMBER, NEWLINE = "$end", "IDENT", "STRING", "NUMBER", "NEWLINE"
ADD, SET, SEMICOLON, OPEN, CLOSE, COMMA = "+=", "'='", "';'", "'['", "']'", "','"
TOKEN_ORDER = (END, IDENT, STRING, NUMBER, NEWLINE, ADD, SET, SEMICOLON, OPEN, CLOSE, COMMA)

_PUNCTUATION = {",": COMMA, "[": OPEN, "]": CLOSE, "=": SET, ";": SEMICOLON}
_IDENT_CHARS = frozenset("._0123456789abcdefghijklmnopqrstuvwxyz")
_NUMBER_CHARS = frozenset("0123456789abcdefx")
# Characters that make libxlu add its "looks like Python" warning to a failure.
_PYTHONISH = frozenset("+,-.():")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class _Token:
    kind: str
    value: str | None       # the atom a STRING or NUMBER stands for; the name of an IDENT
    bison_line: int         # yylloc.first_line as libxlu's lexer sets it
    line: int
    column: int


class _Scanner:
    """Splits the text into tokens exactly as libxlu's flex scanner does,
    including its error state and the text it leaves in yytext."""

    def __init__(self, text: str, run: _ParseRun):
        self.text = text
        self.run = run
        self.pos = 0
        self.lineno = 1                 # flex's yylineno
        self.line_start = 0
        self.bison_line = 1             # only tokens handed to the parser move it
        self.yytext: str | None = ""    # None at end of file
        self.text_line = 1              # where yytext starts
        self.text_column = 1
        self.likely_python = False

    def _take(self, start: int, end: int) -> None:
        self.yytext = self.text[start:end]
        self.text_line = self.lineno
        self.text_column = start - self.line_start + 1
        self.pos = end

    def _token(self, kind: str, start: int, end: int, value: str | None = None) -> _Token:
        self._take(start, end)
        self.bison_line = self.lineno
        return _Token(kind, value, self.bison_line, self.text_line, self.text_column)

    def _newline(self, start: int, end: int, bison_line_offset: int) -> _Token:
        self._take(start, end)
        self.lineno += 1
        self.line_start = end
        self.bison_line = self.lineno + bison_line_offset
        return _Token(NEWLINE, None, self.bison_line, self.text_line, self.text_column)

    def _end(self) -> _Token:
        self.pos = len(self.text)
        self.yytext = None
        self.text_line = self.lineno
        self.text_column = self.pos - self.line_start + 1
        return _Token(END, None, self.bison_line, self.text_line, self.text_column)

    def _run_of(self, start: int, allowed: frozenset[str]) -> int:
        end = start
        while end < len(self.text) and self.text[end] in allowed:
            end += 1
        return end

    def next_token(self) -> _Token:
        text = self.text
        while True:
            start = self.pos
            if start >= len(text):
                return self._end()
            c = text[start]
            if c in " \t":
                self.pos += 1
                continue
            if "a" <= c <= "z":
                end = self._run_of(start + 1, _IDENT_CHARS)
                return self._token(IDENT, start, end, text[start:end])
            if "0" <= c <= "9":
                end = self._run_of(start + 1, _NUMBER_CHARS)
                return self._token(NUMBER, start, end, text[start:end])
            if c in _PUNCTUATION:
                return self._token(_PUNCTUATION[c], start, start + 1)
            if c == "+" and text.startswith("=", start + 1):
                return self._token(ADD, start, start + 2)
            if c == "\n":
                return self._newline(start, start + 1, -1)
            if c == "#":
                newline = text.find("\n", start)
                if newline >= 0:
                    return self._newline(start, newline + 1, -1)
            elif c in "'\"":
                end = self._string_end(start)
                if end is not None:
                    # dequoting may report an error naming the string, as yytext
                    self._take(start, end)
                    value = self._dequote()
                    return self._token(STRING, start, end, value)
            if c in _PYTHONISH:
                self.likely_python = True
            token = self._error_state(start)
            if token is not None:
                return token

    def _error_state(self, start: int) -> _Token | None:
        """A character no token starts with: flex's error state swallows it
        with the rest of its word (or the one blank or newline after it)
        and reports the lot."""
        after = start + 1
        if after >= len(self.text):
            return self._end()
        c = self.text[after]
        if c == "\n":
            self._take(start, after + 1)
            self.lineno += 1
            self.line_start = after + 1
            self.run.lexical_error("lexical error")
            # this rule hands the parser its newline marked with the next line
            return self._newline_from_error_state()
        end = after + 1 if c in " \t" else self._run_until_blank(after)
        self._take(start, end)
        self.run.lexical_error("lexical error")
        return None

    def _newline_from_error_state(self) -> _Token:
        self.bison_line = self.lineno
        return _Token(NEWLINE, None, self.bison_line, self.text_line, self.text_column)

    def _run_until_blank(self, start: int) -> int:
        end = start
        while end < len(self.text) and self.text[end] not in " \t\n":
            end += 1
        return end

    def _string_end(self, start: int) -> int | None:
        quote, i, text = self.text[start], start + 1, self.text
        while i < len(text):
            c = text[i]
            if c == quote:
                return i + 1
            if c == "\n":
                return None
            if c == "\\":
                if i + 1 >= len(text) or text[i + 1] == "\n":
                    return None
                i += 2
            else:
                i += 1
        return None

    def _dequote(self) -> str | None:
        """xlu__cfgl_dequote on yytext, numeric escapes and all."""
        if self.run.failed:
            # libxlu stops building values after the first error, so a bad
            # escape then goes unreported
            return None
        raw = self.yytext
        assert raw is not None
        # libxlu's numeric escapes read the raw text, closing quote included
        inner_end = len(raw) - 1
        out: list[str] = []
        i = 1
        while i < inner_end:
            c = raw[i]
            i += 1
            if c != "\\":
                out.append(c)
                continue
            escaped = raw[i]
            i += 1
            if escaped in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[escaped])
            elif escaped == "x":
                # it skips a character too many and then wants more than the
                # two it reads, so every \x fails
                self.run.lexical_error("invalid digit after backslash hexnumerical"
                                       " character escape in quoted string")
                return None
            elif "0" <= escaped <= "7":
                # it reads up to three more characters as a decimal number,
                # wants at least two of them, and emits nothing
                _, consumed, _ = _strtol(raw[i:i + 3], 10)
                if consumed <= 1:
                    self.run.lexical_error("invalid digit after backslash octalnumerical"
                                           " character escape in quoted string")
                    return None
                i += consumed
            else:
                self.run.lexical_error("invalid character after backlash in quoted string")
                return None
        return "".join(out)


# ---------------------------------------------------------------------------
# the xl.cfg parser: libxlu_cfg_y.y's LALR(1) automaton, as bison builds it
#
# Run the way bison's skeleton runs it, so that errors are found in the same
# state (which fixes the "expecting" list: default reductions happen first),
# tokens are read no earlier than bison reads them (which fixes the order of
# lexical and syntax errors), and recovery skips and stays silent as bison's
# does.

# rule -> (left-hand side, length)
_RULES: dict[str, tuple[str, int]] = {
    "file: stmts": ("file", 1),
    "file: stmts assignment": ("file", 2),
    "stmts: %empty": ("stmts", 0),
    "stmts: stmts stmt": ("stmts", 2),
    "stmt: assignment endstmt": ("stmt", 2),
    "stmt: endstmt": ("stmt", 1),
    "stmt: error NEWLINE": ("stmt", 2),
    "assignment: IDENT '=' value": ("assignment", 3),
    "assignment: IDENT \"+=\" value": ("assignment", 3),
    "endstmt: NEWLINE": ("endstmt", 1),
    "endstmt: ';'": ("endstmt", 1),
    "value: atom": ("value", 1),
    "value: '[' nlok valuelist ']'": ("value", 4),
    "atom: STRING": ("atom", 1),
    "atom: NUMBER": ("atom", 1),
    "valuelist: %empty": ("valuelist", 0),
    "valuelist: values": ("valuelist", 1),
    "valuelist: values ',' nlok": ("valuelist", 3),
    "values: value nlok": ("values", 2),
    "values: values ',' nlok value nlok": ("values", 5),
    "nlok: %empty": ("nlok", 0),
    "nlok: nlok NEWLINE": ("nlok", 2),
}

# state -> (on these lookaheads: shift to a state (int) or reduce by a rule
# (str); otherwise the default reduction, or an error when there is none).
# A state with no lookahead actions reduces without reading a token.
_STATES: dict[int, tuple[dict[str, int | str], str | None]] = {
    0: ({}, "stmts: %empty"),
    1: ({END: 3}, None),                                    # $accept: file . $end
    2: ({END: "file: stmts", IDENT: 5, NEWLINE: 6, SEMICOLON: 7}, None),
    4: ({NEWLINE: 11}, None),                               # stmt: error . NEWLINE
    5: ({ADD: 12, SET: 13}, None),                          # assignment: IDENT . = value
    6: ({}, "endstmt: NEWLINE"),
    7: ({}, "endstmt: ';'"),
    8: ({}, "stmts: stmts stmt"),
    9: ({NEWLINE: 6, SEMICOLON: 7}, "file: stmts assignment"),
    10: ({}, "stmt: endstmt"),
    11: ({}, "stmt: error NEWLINE"),
    12: ({STRING: 15, NUMBER: 16, OPEN: 17}, None),         # IDENT "+=" . value
    13: ({STRING: 15, NUMBER: 16, OPEN: 17}, None),         # IDENT '=' . value
    14: ({}, "stmt: assignment endstmt"),
    15: ({}, "atom: STRING"),
    16: ({}, "atom: NUMBER"),
    17: ({}, "nlok: %empty"),
    18: ({}, "assignment: IDENT \"+=\" value"),
    19: ({}, "value: atom"),
    20: ({}, "assignment: IDENT '=' value"),
    21: ({STRING: 15, NUMBER: 16, NEWLINE: 22, OPEN: 17}, "valuelist: %empty"),
    22: ({}, "nlok: nlok NEWLINE"),
    23: ({}, "nlok: %empty"),
    24: ({CLOSE: 27}, None),                                # '[' nlok valuelist . ']'
    25: ({COMMA: 28}, "valuelist: values"),
    26: ({NEWLINE: 22}, "values: value nlok"),
    27: ({}, "value: '[' nlok valuelist ']'"),
    28: ({}, "nlok: %empty"),
    29: ({STRING: 15, NUMBER: 16, NEWLINE: 22, OPEN: 17}, "valuelist: values ',' nlok"),
    30: ({}, "nlok: %empty"),
    31: ({NEWLINE: 22}, "values: values ',' nlok value nlok"),
}
_ACCEPT_STATE = 3
_ERROR_SHIFTS = {2: 4}      # only `stmts` can take bison's error token

_GOTO: dict[tuple[int, str], int] = {
    (0, "file"): 1, (0, "stmts"): 2,
    (2, "stmt"): 8, (2, "assignment"): 9, (2, "endstmt"): 10,
    (9, "endstmt"): 14,
    (12, "value"): 18, (12, "atom"): 19,
    (13, "value"): 20, (13, "atom"): 19,
    (17, "nlok"): 21,
    (21, "value"): 23, (21, "atom"): 19, (21, "valuelist"): 24, (21, "values"): 25,
    (23, "nlok"): 26,
    (28, "nlok"): 29,
    (29, "value"): 30, (29, "atom"): 19,
    (30, "nlok"): 31,
}

# bison names at most four expected tokens, and none when there are more
_MOST_EXPECTED = 4

_PYTHON_WARNING = (
    "warning: Config file looks like it contains Python code.",
    "warning:  Arbitrary Python is no longer supported.",
    "warning:  See https://wiki.xen.org/wiki/PythonInXlConfig",
)


class _ParseRun:
    """One read of one config: the parser, libxlu's error bookkeeping
    (CfgParseContext) and the settings stored so far."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.scanner = _Scanner(text, self)
        self.failed = False                 # libxlu's ctx->err
        self.lexical_error_line = -1        # libxlu's ctx->lexerrlineno
        self.report: list[str] = []
        self.first_error: tuple[int, int, str] | None = None
        self.settings: dict[str, Setting] = {}

    # -- libxlu's error reporting

    def yyerror(self, bison_line: int, message: str) -> None:
        """xlu__cfg_yyerror: one report per line at most, naming the text the
        scanner last matched."""
        if bison_line <= self.lexical_error_line:
            return
        text = self.scanner.yytext
        line = bison_line
        if text is None:
            # at the end of file flex's yytext is empty but its length is one
            near = "`'"
        else:
            newline = ""
            if text.endswith("\n"):
                text = text[:-1]
                line -= 1
                if not text:
                    newline = "<newline>"
            text = text.rstrip(" \t")
            near = (f"`{text}'" if text else "") + newline
        body = f"config parsing error near {near}: {message}"
        self.report.append(f"{self.filename}:{line}: {body}")
        if self.first_error is None:
            self.first_error = (self.scanner.text_line, self.scanner.text_column, body)
        self.failed = True

    def lexical_error(self, message: str) -> None:
        line = self.scanner.lineno
        self.yyerror(line, message)
        self.lexical_error_line = line
        self.failed = True

    def syntax_error(self, state: int, lookahead: _Token) -> None:
        expected = [kind for kind in TOKEN_ORDER if kind in _STATES[state][0]]
        message = f"syntax error, unexpected {lookahead.kind}"
        if 0 < len(expected) <= _MOST_EXPECTED:
            message += ", expecting " + " or ".join(expected)
        self.yyerror(lookahead.bison_line, message)

    # -- the semantic actions

    def reduce(self, rule: str, values: list) -> object:
        if rule == "value: atom":
            atom: _Token = values[0]
            return ConfigValue(atom.value, atom.line, atom.column)  # type: ignore[arg-type]
        if rule == "value: '[' nlok valuelist ']'":
            opening: _Token = values[0]
            return ConfigValue(tuple(values[2]), opening.line, opening.column)
        if rule in ("atom: STRING", "atom: NUMBER", "valuelist: values",
                    "valuelist: values ',' nlok"):
            return values[0]
        if rule == "valuelist: %empty":
            return []
        if rule == "values: value nlok":
            return [values[0]]
        if rule == "values: values ',' nlok value nlok":
            values[0].append(values[3])
            return values[0]
        if rule == "assignment: IDENT '=' value":
            self.store(values[0], values[2], appended=False)
        elif rule == "assignment: IDENT \"+=\" value":
            self.store(values[0], values[2], appended=True)
        return None

    def store(self, key_token: _Token, value: ConfigValue, appended: bool) -> None:
        """xlu__cfg_set_store: nothing is stored once anything has failed."""
        if self.failed:
            return
        key = key_token.value
        assert key is not None
        previous = self.settings.get(key)
        if appended and previous is not None:
            if previous.value.is_list != value.is_list:
                self.lexical_error("can't add [list] to \"string\" or vice versa")
                return
            # strings join, and lists too (the earlier items first)
            value = ConfigValue(previous.value.data + value.data,  # type: ignore[operator]
                                value.line, value.column)
        self.settings[key] = Setting(key, value, appended, key_token.line, key_token.column)

    # -- bison's skeleton

    def parse(self) -> None:
        stack: list[tuple[int, object]] = [(0, None)]
        lookahead: _Token | None = None
        recovering = 0              # bison's yyerrstatus
        while True:
            state = stack[-1][0]
            if state == _ACCEPT_STATE:
                return
            on_lookahead, default = _STATES[state]
            action: int | str | None = default
            if on_lookahead:
                if lookahead is None:
                    lookahead = self.scanner.next_token()
                action = on_lookahead.get(lookahead.kind, default)
            if isinstance(action, int):
                assert lookahead is not None
                stack.append((action, lookahead))
                lookahead = None
                if recovering:
                    recovering -= 1
            elif isinstance(action, str):
                lhs, length = _RULES[action]
                values = [value for _, value in stack[len(stack) - length:]]
                del stack[len(stack) - length:]
                result = self.reduce(action, values)
                stack.append((_GOTO[(stack[-1][0], lhs)], result))
            else:
                assert lookahead is not None
                if not recovering:
                    self.syntax_error(state, lookahead)
                if recovering == 3:
                    # the token that follows an error is thrown away
                    if lookahead.kind == END:
                        return
                    lookahead = None
                recovering = 3
                while stack[-1][0] not in _ERROR_SHIFTS:
                    if len(stack) == 1:
                        return
                    stack.pop()
                stack.append((_ERROR_SHIFTS[stack[-1][0]], None))


def parse_xlcfg(text: str, filename: str = "<config>", *, accept_crlf: bool = False) -> XlConfig:
    """Read xl.cfg text as libxlu's xlu_cfg_readfile does; any error raises
    XlCfgError and gives no settings."""
    if accept_crlf:
        text = text.replace("\r\n", "\n")
    run = _ParseRun(text, filename)
    run.parse()
    if run.failed:
        assert run.first_error is not None
        line, column, message = run.first_error
        report = run.report + (list(_PYTHON_WARNING) if run.scanner.likely_python else [])
        raise XlCfgError(filename, line, column, message, report)
    return XlConfig(run.settings.values(), filename)


# ---------------------------------------------------------------------------
# YAML and TOML: the same settings in other spellings.
# Integers become their decimal text, booleans "1" or "0" (what xl reads as
# true and false), lists stay lists. Keys must be names xl.cfg could spell,
# so a config means the same in any of the three; a table, or a YAML null,
# has no xl.cfg spelling and is refused naming its key. A YAML float or date
# keeps its spelling; tomllib keeps none, so a TOML float becomes Python's
# shortest text for it and a date its ISO form. tomllib gives no positions
# either: a TOML key's is found by looking for its `key =` line, and a list's
# items share the list's.


def _check_key(key: str, filename: str, line: int, column: int) -> None:
    if not KEY_PATTERN.match(key):
        raise XlCfgError(filename, line, column,
                         f"`{key}' is not a name xl.cfg can spell (lower-case letters,"
                         " digits, `.' and `_', starting with a letter)")


def _table_error(filename: str, key: str, line: int, column: int) -> XlCfgError:
    return XlCfgError(filename, line, column,
                      f"`{key}' holds a table; xl.cfg values are strings, numbers and lists")


def parse_yaml(text: str, filename: str = "<config>") -> XlConfig:
    import yaml
    from yaml.constructor import SafeConstructor
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = ", ".join(p for p in (e.context, e.problem) if p)
        raise XlCfgError(filename, mark.line + 1 if mark else 1,
                         mark.column + 1 if mark else 1, problem) from None
    except yaml.reader.ReaderError as e:
        line, column = _line_and_column(text, e.position)
        raise XlCfgError(filename, line, column, e.reason) from None
    if root is None:
        return XlConfig((), filename)
    if not isinstance(root, MappingNode):
        raise XlCfgError(filename, root.start_mark.line + 1, root.start_mark.column + 1,
                         "a config is a mapping of settings")
    constructor = SafeConstructor()

    def where(node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def convert(key: str, node) -> ConfigValue:
        line, column = where(node)
        if isinstance(node, SequenceNode):
            return ConfigValue(tuple(convert(key, item) for item in node.value), line, column)
        if isinstance(node, MappingNode):
            raise _table_error(filename, key, line, column)
        assert isinstance(node, ScalarNode)
        tag = node.tag.rsplit(":", 1)[-1]
        if tag == "int":
            return ConfigValue(str(constructor.construct_yaml_int(node)), line, column)
        if tag == "bool":
            return ConfigValue("1" if constructor.construct_yaml_bool(node) else "0",
                               line, column)
        if tag in ("str", "float", "timestamp"):
            return ConfigValue(node.value, line, column)
        if tag == "null":
            raise XlCfgError(filename, line, column, f"`{key}' has no value")
        raise XlCfgError(filename, line, column,
                         f"`{key}' has YAML type {node.tag}, which xl.cfg cannot spell")

    settings = []
    for key_node, value_node in root.value:
        line, column = where(key_node)
        if not isinstance(key_node, ScalarNode):
            raise XlCfgError(filename, line, column, "a setting's name must be a plain word")
        _check_key(key_node.value, filename, line, column)
        settings.append(Setting(key_node.value, convert(key_node.value, value_node),
                                False, line, column))
    return XlConfig(settings, filename)


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


_TOML_ERROR_AT = re.compile(r" \(at line (\d+), column (\d+)\)\Z")
_TOML_ERROR_AT_END = re.compile(r" \(at end of document\)\Z")
_TOML_KEY = re.compile(
    r"""[ \t]*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))[ \t]*(=[ \t]*|\.)""")
_TOML_TABLE = re.compile(r"""[ \t]*\[\[?[ \t]*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))""")


def _toml_positions(text: str) -> dict[str, tuple[int, int, int, int]]:
    """Where each top-level key and its value start: tomllib does not say,
    so this looks for `key =` lines (and table headers) before any table."""
    positions: dict[str, tuple[int, int, int, int]] = {}
    in_table = False
    for number, line in enumerate(text.split("\n"), start=1):
        key_column = len(line) - len(line.lstrip(" \t")) + 1
        table = _TOML_TABLE.match(line)
        if table:
            key = next(g for g in table.groups() if g is not None)
            positions.setdefault(key, (number, key_column, number, key_column))
            in_table = True
            continue
        found = _TOML_KEY.match(line)
        if found and not in_table:
            key = next(g for g in found.groups()[:3] if g is not None)
            value_column = found.end() + 1 if found.group(4) != "." else key_column
            positions.setdefault(key, (number, key_column, number, value_column))
    return positions


def parse_toml(text: str, filename: str = "<config>") -> XlConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        at = _TOML_ERROR_AT.search(message)
        if at:
            line, column = int(at.group(1)), int(at.group(2))
            message = message[:at.start()]
        else:
            line, column = _line_and_column(text, len(text))
            message = _TOML_ERROR_AT_END.sub("", message)
        raise XlCfgError(filename, line, column, message) from None
    positions = _toml_positions(text)

    def convert(key: str, value: object, line: int, column: int) -> ConfigValue:
        if isinstance(value, bool):
            return ConfigValue("1" if value else "0", line, column)
        if isinstance(value, (int, float)):
            return ConfigValue(repr(value) if isinstance(value, float) else str(value),
                               line, column)
        if isinstance(value, str):
            return ConfigValue(value, line, column)
        if isinstance(value, list):
            return ConfigValue(tuple(convert(key, item, line, column) for item in value),
                               line, column)
        if isinstance(value, dict):
            raise _table_error(filename, key, line, column)
        return ConfigValue(value.isoformat(), line, column)  # type: ignore[attr-defined]

    settings = []
    for key, value in document.items():
        line, column, value_line, value_column = positions.get(key, (1, 1, 1, 1))
        _check_key(key, filename, line, column)
        settings.append(Setting(key, convert(key, value, value_line, value_column),
                                False, line, column))
    return XlConfig(settings, filename)


def load_config(path: str | Path) -> XlConfig:
    """Read a config file, by its extension: .yaml/.yml, .toml, or else
    xl.cfg. Messages name the file as it was given."""
    name = str(path)
    data = Path(path).read_bytes()
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml", ".toml"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
            raise XlCfgError(name, line, column, "not valid UTF-8") from None
        return parse_toml(text, name) if suffix == ".toml" else parse_yaml(text, name)
    return parse_xlcfg(data.decode("utf-8", "surrogateescape"), name)
