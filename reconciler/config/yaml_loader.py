"""Read the config file into plain values, remembering where every value was written.

PyYAML's constructors throw positions away, so we compose the node graph (SafeLoader) and
build the values ourselves. Every later error (schema, semantic rule) can then point at
``file:line:col`` and a YAML path such as ``schedules.daily.databases[0]``.

The file comes from a Git repository and may be written by anyone who can open a pull
request, so reading it is defensive: size, nesting and alias expansion are bounded, tags
other than plain YAML are refused, and duplicate keys (which YAML silently collapses) are
errors.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import ConfigError, Location, ReconcilerError

#: a YAML path: mapping keys and list indices from the top of the document
Path = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000

TOP_LEVEL_HINT = "the config must be a mapping with `version: 1` at the top"

_STD = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_STD + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MERGE, _MAP, _SEQ = (_STD + t for t in ("timestamp", "merge", "map", "seq"))
_SCALAR_TAGS = {_INT, _FLOAT, _BOOL, _NULL}

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: a value that is exactly one variable reference: it comes entirely from the environment
WHOLE_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


#: a mapping key shown as is in a YAML path; any other is quoted (``services[".."]``)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
#: characters that must not reach a terminal or a CI log as they are: control characters (an
#: escape sequence can rewrite what was printed), zero-width and bidirectional controls (they
#: hide or reorder text), and a stray byte-order mark
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def format_path(path: Path) -> str:
    """``("schedules", "x", "databases", 0)`` -> ``schedules.x.databases[0]``.

    A key that is not a plain name is quoted as JSON (``services["\\u0430nalytics"]``,
    ``schedules[""]``), so that ``..``, an empty key or a look-alike letter is visible.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            out += f"[{json.dumps(part)}]"
        else:
            out += f".{part}" if out else part
    return out


def printable(text: str) -> str:
    """``text`` with control, zero-width and bidi characters written as escapes (``\\x1b``)."""

    def escape(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNPRINTABLE.sub(escape, text)


def quoted(text: str, limit: int = 60) -> str:
    """A user's text for a message: printable, and cut to ``limit`` characters."""
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def non_ascii_note(text: str) -> str:
    """``; it contains U+0430 CYRILLIC SMALL LETTER A (`а`), which is not ASCII`` for a name
    with a letter that only looks like an ASCII one ('' for an ASCII name)."""
    for ch in text:
        if not ch.isascii():
            name = unicodedata.name(ch, "")
            what = f"U+{ord(ch):04X} {name}".rstrip()
            shown = f" (`{ch}`)" if ch.isprintable() else ""
            return f"; it contains {what}{shown}, which is not ASCII"
    return ""


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column."""

    line: int
    column: int


@dataclass
class Document:
    """The config's values plus, per YAML path, where it was written and how.

    ``values`` marks where each value starts, ``keys`` where the key of a mapping entry
    starts (an unknown key is reported at the key itself). ``raw`` keeps every string scalar
    as written, before ``${VAR}`` expansion, and ``from_env`` holds the paths whose value is
    exactly one ``${VAR}``: the rules that forbid literal secrets need both.
    """

    file: str
    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    raw: dict[Path, str] = field(default_factory=dict)
    from_env: set[Path] = field(default_factory=set)
    #: paths whose value names a variable that is not set (only when loading for ``validate``,
    #: which needs no environment): the value stays as written and is not checked
    unresolved: dict[Path, tuple[str, ...]] = field(default_factory=dict)

    def mark(self, path: Path, at_key: bool = False) -> Mark:
        """Where ``path`` was written; the nearest written ancestor for a missing one."""
        if at_key and path in self.keys:
            return self.keys[path]
        probe = path
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Mark(1, 1))

    def location(self, path: Path, at_key: bool = False) -> Location:
        m = self.mark(path, at_key)
        return Location(self.file, m.line, m.column, format_path(path))

    def get(self, path: Path) -> Any:
        """The value at ``path``, or None when any step is missing or of another type."""
        value: Any = self.data
        for part in path:
            if isinstance(part, int):
                if not isinstance(value, list) or part >= len(value):
                    return None
            elif not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value


def _fail(message: str, where: Location | str) -> NoReturn:
    raise ConfigError([ReconcilerError(message, where)])


def _mark_of(yaml_mark: Any) -> Mark:
    return Mark(yaml_mark.line + 1, yaml_mark.column + 1)


# --------------------------------------------------------------------------------------------
# Reading and parsing
# --------------------------------------------------------------------------------------------


def read_text(file: str) -> str:
    """The file as text, refusing what no config could be (too large, not UTF-8)."""
    try:
        with open(file, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        _fail("the config file does not exist; check the path given with -f", file)
    except OSError as exc:
        _fail(f"cannot read the config file: {exc.strerror or exc.__class__.__name__}", file)
    if len(data) > MAX_BYTES:
        _fail(f"the config file is larger than {MAX_BYTES // 1024} KiB; a config is never that big", file)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        _fail("the config file is not UTF-8 text; save it as UTF-8", Location(file, line, column))


#: libyaml when present: fast, and bounded in nesting; PyYAML's pure-Python scanner can take
#: minutes on a megabyte of `[`.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_nesting(text: str, file: str) -> None:
    """Refuse deep nesting and too many values before composing: the composer recurses once
    per level, and builds every node of a file at once.

    The parser keeps an explicit stack and yields events lazily, so this walk stops at the
    first level too deep without building anything.
    """
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.NodeEvent):  # scalars, aliases, starts of lists and mappings
            nodes += 1  # stop before composing what could never be a config (seconds for a MiB)
            if nodes > MAX_VALUES:
                m = _mark_of(event.start_mark)
                where = Location(file, m.line, m.column)
                _fail(f"the file holds more than {MAX_VALUES} values; a config is never that big", where)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                m = _mark_of(event.start_mark)
                _fail(f"the config nests deeper than {MAX_DEPTH} levels", Location(file, m.line, m.column))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def compose(text: str, file: str) -> Node | None:
    """The node graph of a single YAML document (None for an empty file)."""
    try:
        _check_nesting(text, file)
        node: Node | None = yaml.compose(text, Loader=_LOADER)
        return node
    except yaml.MarkedYAMLError as exc:
        # Only the problem and its place: str(exc) quotes the offending line, which may hold a secret.
        ym = exc.problem_mark or exc.context_mark
        m = _mark_of(ym) if ym is not None else Mark(1, 1)
        _fail(f"the file is not valid YAML: {_syntax_problem(exc, text, m)}", Location(file, m.line, m.column))
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        _fail(
            f"the file is not valid YAML: character #x{exc.character:04x} is not allowed in YAML text",
            Location(file, line, column),
        )
    except yaml.YAMLError as exc:
        _fail(f"the file is not valid YAML: {exc.__class__.__name__}", file)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, at: Mark) -> str:
    """PyYAML's problem in words a config author can act on; where a construct began (an
    unclosed quote or bracket) is named, since the problem is only noticed further on."""
    problem = exc.problem or exc.context or "syntax error"
    context = exc.context if exc.problem else None
    since = _mark_of(exc.context_mark) if exc.context_mark is not None else None
    lines = text.splitlines()
    found = lines[at.line - 1][at.column - 1 : at.column] if 0 < at.line <= len(lines) else ""
    if "tab character" in problem or (found == "\t" and "cannot start any token" in problem):
        return "a tab character; YAML indents with spaces only, so replace the tabs with spaces"
    if context == "expected a single document in the stream":
        return "the file holds more than one YAML document (a second `---`); a config is one document"
    if context and context.startswith("found duplicate anchor") and since is not None:
        return f"an anchor is defined twice (first at line {since.line}, column {since.column}); rename one of them"
    if context and since is not None and since != at:
        return f"{problem} ({context} that starts at line {since.line}, column {since.column})"
    return f"{problem} ({context})" if context else problem


# --------------------------------------------------------------------------------------------
# Building values with their places
# --------------------------------------------------------------------------------------------


class _TooMuch(Exception):
    """Stop building: the document is a bomb or a loop, further errors would be noise."""

    def __init__(self, problem: ReconcilerError) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


class _Builder:
    """Turns a node graph into dicts, lists and scalars, filling a Document's marks."""

    def __init__(self, file: str) -> None:
        self.doc = Document(file, None)
        self.problems: list[ReconcilerError] = []
        self.count = 0
        self._scalars = SafeConstructor()

    def where(self, node: Node, path: Path) -> Location:
        m = _mark_of(node.start_mark)
        shown = format_path(path) if len(path) <= 8 else format_path(path[:4]) + "..."
        return Location(self.doc.file, m.line, m.column, shown)

    def _tick(self, node: Node, path: Path) -> None:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooMuch(
                ReconcilerError("the file expands to too many values (YAML aliases?)", self.where(node, path))
            )
        if len(path) > MAX_DEPTH:
            raise _TooMuch(
                ReconcilerError(
                    f"the config nests deeper than {MAX_DEPTH} levels (a recursive alias?)", self.where(node, path)
                )
            )

    def bad_tag(self, node: Node, path: Path) -> None:
        self.problems.append(
            ReconcilerError(
                f"the tag `{_short_tag(node.tag)}` is not allowed; the config takes plain YAML values only "
                "(strings, numbers, booleans, null, lists, mappings)",
                self.where(node, path),
            )
        )

    def build(self, node: Node, path: Path) -> Any:
        self._tick(node, path)
        self.doc.values[path] = _mark_of(node.start_mark)
        if isinstance(node, MappingNode):
            return self._mapping(node, path) if node.tag == _MAP else self.bad_tag(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                return self.bad_tag(node, path)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag in (_STR, _TIMESTAMP):  # a timestamp stays as written: JSON has none
            self.doc.raw[path] = node.value
            return node.value
        if node.tag not in _SCALAR_TAGS:
            return self.bad_tag(node, path)
        try:
            return self._scalars.yaml_constructors[node.tag](self._scalars, node)
        except Exception:  # an explicit tag on text it cannot mean, e.g. `!!int abc`
            message = f"the value is not a valid `{_short_tag(node.tag)}`"
            if node.tag == _INT and len(node.value) > 1000:  # Python refuses to convert so many digits
                message = f"the number has {len(node.value)} digits; no setting takes a number that large"
            self.problems.append(ReconcilerError(message, self.where(node, path)))
            return None

    def _key(self, node: Node, path: Path) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problems.append(ReconcilerError("a mapping key must be a plain name", self.where(node, path)))
            return None
        if node.tag not in _SCALAR_TAGS | {_STR, _TIMESTAMP}:
            self.bad_tag(node, path)
            return None
        return str(node.value)

    def _entries(self, node: MappingNode, path: Path, depth: int) -> list[tuple[str, Node, Node]]:
        """The (key, key node, value node) of a mapping, with ``<<`` merge keys applied.

        Keys written in the mapping win over merged ones, and earlier merge sources over later
        ones (YAML's merge-key rule). Only keys written twice in the same mapping are errors.
        """
        own: dict[str, tuple[Node, Node]] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in own:
                first = _mark_of(own[key][0].start_mark)
                self.problems.append(
                    ReconcilerError(
                        f"duplicate key `{key}` (first written at line {first.line}); YAML would keep only one, "
                        "so remove or rename one of them",
                        self.where(key_node, path + (key,)),
                    )
                )
                continue
            own[key] = (key_node, value_node)
        entries = [(k, kn, vn) for k, (kn, vn) in own.items()]
        seen = set(own)
        for source in merges:
            self._tick(source, path)
            if not isinstance(source, MappingNode) or source.tag != _MAP or depth > MAX_DEPTH:
                self.problems.append(
                    ReconcilerError(
                        "a `<<` merge key must name a mapping (or a list of them)", self.where(source, path)
                    )
                )
                continue
            for key, key_node, value_node in self._entries(source, path, depth + 1):
                self._tick(key_node, path)
                if key not in seen:
                    seen.add(key)
                    entries.append((key, key_node, value_node))
        return entries

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, key_node, value_node in self._entries(node, path, 0):
            self.doc.keys[path + (key,)] = _mark_of(key_node.start_mark)
            out[key] = self.build(value_node, path + (key,))
        return out


def build_document(node: Node, file: str) -> Document:
    """Plain values and their marks; ConfigError for tags, duplicate keys, bombs."""
    builder = _Builder(file)
    try:
        builder.doc.data = builder.build(node, ())
    except _TooMuch as exc:
        raise ConfigError([exc.problem]) from None
    if builder.problems:
        raise ConfigError(sorted(builder.problems, key=_sort_key))
    return builder.doc


def _sort_key(problem: ReconcilerError) -> tuple[int, int]:
    """By place; problems at one place keep the order they were found in (sorted is stable)."""
    where = problem.where
    return (where.line, where.column) if isinstance(where, Location) else (0, 0)


# --------------------------------------------------------------------------------------------
# ${VAR} expansion
# --------------------------------------------------------------------------------------------


def expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """Replace every ``${NAME}`` in ``text``; ``$${`` is a literal ``${``.

    Returns (result, unset names, malformed references). The caller decides how to report;
    no value from the environment ever appears in what is returned besides the result.
    """
    out: list[str] = []
    unset: list[str] = []
    malformed: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("$${", i):
            out.append("${")
            i += 3
        elif text.startswith("${", i):
            end = text.find("}", i + 2)
            name = text[i + 2 : end] if end >= 0 else ""
            if end < 0 or not _VAR_NAME.fullmatch(name):
                malformed.append(text[i : end + 1] if end >= 0 else "${")
                i = end + 1 if end >= 0 else n
                continue
            if name in env:
                out.append(env[name])
            else:
                unset.append(name)
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out), unset, malformed


def expand_env(doc: Document, env: Mapping[str, str], allow_unset: bool = False) -> None:
    """Expand ``${VAR}`` in every string value (not in keys: those are names, not settings).

    Every unset variable and malformed reference is reported, then the caller stops: checking
    the rest of a config whose values are missing would only produce confusing errors. With
    ``allow_unset`` (``validate``, which needs no environment), a value that names an unset
    variable stays as written and its path is recorded in ``doc.unresolved`` instead.
    """
    problems: list[ReconcilerError] = []

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path + (i,)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        result, unset, malformed = expand(value, env)
        where = doc.location(path)
        if unset and allow_unset:
            doc.unresolved[path] = tuple(unset)
            result = value
            unset = []
        for name in unset:
            problems.append(ReconcilerError(f"environment variable {name} is not set; export it before running", where))
        for ref in malformed:
            shown = ref if len(ref) <= 40 else ref[:37] + "..."
            problems.append(
                ReconcilerError(
                    f"`{shown}` is not a variable reference: write `${{NAME}}` with letters, digits and _ "
                    "(or `$${` for a literal `${`)",
                    where,
                )
            )
        if WHOLE_VAR.fullmatch(value):
            doc.from_env.add(path)
        return result

    doc.data = walk(doc.data, ())
    if problems:
        raise ConfigError(sorted(problems, key=_sort_key))


def load_document(file: str, env: Mapping[str, str], allow_unset: bool = False) -> Document:
    """Read, parse and expand a config file; any problem here stops loading."""
    text = read_text(file)
    node = compose(text, file)
    if node is None:
        _fail(f"the config file is empty; {TOP_LEVEL_HINT}", Location(file, 1, 1))
    doc = build_document(node, file)
    if not isinstance(doc.data, dict):
        _fail(TOP_LEVEL_HINT, doc.location(()))
    expand_env(doc, env, allow_unset)
    return doc
