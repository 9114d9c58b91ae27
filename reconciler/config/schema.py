"""The JSON Schema of the config, and its errors turned into sentences with a place.

The schema (``reconciler/schemas/config.v1.json``) is the one editors and ``reconciler schema
config`` show; it checks the shape: keys, types, enums, ranges and name patterns. What needs
more than one value at a time (references, cron, cloud rules) is in ``rules.py``.

jsonschema's own messages quote whole instances (``{'secret_access_key': ...} is not valid``),
which could print a secret and does not say where, so every error is rewritten here.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from reconciler.config.durations import DURATION_PATTERN, EXAMPLES, duration_hint
from reconciler.config.yaml_loader import Document, Path, format_path, non_ascii_note, quoted
from reconciler.errors import ReconcilerError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
TABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
START_TIME_PATTERN = r"^([01][0-9]|2[0-3]):00$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

_PATTERN_HINTS = {
    NAME_PATTERN: "must be lowercase letters, digits, `-` and `_`, starting with a letter or digit, "
    "at most 63 characters",
    IDENT_PATTERN: "must be a ClickHouse identifier without backquotes: letters, digits and _, "
    "not starting with a digit",
    TABLE_PATTERN: "must be `database.table`, each part letters, digits and _ (no backquotes)",
    START_TIME_PATTERN: "must be a whole hour in UTC written HH:00, like 03:00",
    DATE_PATTERN: "must be a date written YYYY-MM-DD, like 2027-01-31",
    DURATION_PATTERN: "must be a duration: an integer and one unit, like 30s, 15m, 6h, 7d or 2w",
}

_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}

_LOOKS_TYPED = re.compile(r"[-+]?[0-9][0-9._]*|true|false|null|yes|no|on|off|~", re.IGNORECASE)

#: keywords that judge a value already judged by its type
_VALUE_KEYWORDS = frozenset({"enum", "const", "pattern", "minimum", "maximum", "minLength", "minItems", "uniqueItems"})

#: credential fields that must never be written literally (rules.py) and never echoed
LITERAL_SECRET_FIELDS = frozenset(
    {"secret_access_key", "session_token", "hmac_secret", "connection_string", "account_key"}
)


def config_schema() -> dict[str, Any]:
    """The config's JSON Schema (a fresh copy: callers may change what they get)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("reconciler.schemas").joinpath("config.v1.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(_schema_text()))


def is_secret_path(path: Path) -> bool:
    """Whether the value at ``path`` is (or may hold) a secret: never quote it in a message."""
    if len(path) >= 3 and path[0] == "buckets" and path[2] == "credentials":
        return True
    if len(path) >= 3 and path[0] == "services" and path[2] == "dsn":
        return True
    return len(path) >= 4 and path[0] == "services" and path[2:4] == ("cloud", "api")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_schema(doc: Document) -> list[ReconcilerError]:
    """Every schema problem of the document, each once, with its place."""
    problems: list[ReconcilerError] = []
    seen: set[tuple[str, str]] = set()
    errors = list(_validator().iter_errors(doc.data))
    # A value of the wrong type also fails its enum/pattern/range: say only what its type should be.
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    for error in errors:
        if tuple(error.absolute_path) in mistyped and error.validator in _VALUE_KEYWORDS:
            continue
        for problem in _describe(error, doc):
            key = (problem.message, str(problem.where))
            if key not in seen:
                seen.add(key)
                problems.append(problem)
    return problems


def _describe(error: ValidationError, doc: Document) -> list[ReconcilerError]:
    path: Path = tuple(error.absolute_path)
    kind = str(error.validator)
    if "propertyNames" in error.relative_schema_path:
        return [_bad_name(error, doc, path)]
    if kind == "additionalProperties":
        return _unknown_keys(error, doc, path)
    if kind == "required":
        return _missing_keys(error, doc, path)
    return [ReconcilerError(_value_message(error, doc, path), doc.location(path))]


def _bad_name(error: ValidationError, doc: Document, path: Path) -> ReconcilerError:
    name = str(error.instance)
    if error.validator == "pattern":
        hint = _PATTERN_HINTS.get(str(error.validator_value), "is not allowed")
    else:
        hint = f"must be {_TYPE_WORDS.get(str(error.validator_value), 'valid')}"
    where = f"under {format_path(path)}" if path else "at the top"
    shown = f"name `{quoted(name, 80)}`" if name else "an empty name"
    if len(name) > 63 and error.validator == "pattern":
        hint += f" (it has {len(name)})"
    return ReconcilerError(f"{shown} {where} {hint}{non_ascii_note(name)}", doc.location(path + (name,), at_key=True))


def _unknown_keys(error: ValidationError, doc: Document, path: Path) -> list[ReconcilerError]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = list(schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    under = f"under {format_path(path)}" if path else "at the top of the config"
    out = []
    for key in instance:
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1)
        guess = f" (did you mean `{close[0]}`?)" if close else ""
        out.append(
            ReconcilerError(
                f"unknown key `{quoted(key)}` {under}{guess}; allowed: {', '.join(allowed)}",
                doc.location(path + (key,), at_key=True),
            )
        )
    return out


def _missing_keys(error: ValidationError, doc: Document, path: Path) -> list[ReconcilerError]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    required = error.validator_value if isinstance(error.validator_value, list) else []
    out = []
    for key in required:
        if key in instance:
            continue
        if not path and key == "version":
            message = "missing required key `version` at the top of the config; add `version: 1`"
        else:
            under = f"under {format_path(path)}" if path else "at the top of the config"
            message = f"missing required key `{key}` {under}"
        out.append(ReconcilerError(message, doc.location(path)))
    return out


def _value_message(error: ValidationError, doc: Document, path: Path) -> str:
    """One sentence for a value of the wrong type, range or form."""
    name = _name(path)
    got = _got(doc, path, error.instance)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind, expected = error.validator, error.validator_value
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
        examples = schema.get("examples")
        like = f" like {examples[0]}" if examples and "string" in types else ""
        hint = ""
        if isinstance(error.instance, bool) and "boolean" not in types and "string" in types:
            hint = '; YAML reads unquoted yes, no, on, off, true and false as booleans, so quote it, like "no"'
        return f"`{name}` must be {words}{like}{got}{hint}"
    if kind == "const":
        return f"`{name}` must be {_show(expected)}{got}"
    if kind == "enum":
        choices = ", ".join(_show(v) for v in expected)
        return f"`{name}` must be one of {choices}{got}"
    if kind == "minimum":
        return f"`{name}` must be at least {expected}{got}"
    if kind == "maximum":
        return f"`{name}` must be at most {expected}{got}"
    if kind == "minLength":
        return f"`{name}` must not be empty"
    if kind == "minItems":
        return f"`{name}` must not be an empty list"
    if kind == "uniqueItems":
        return f"`{name}` lists the same value more than once"
    if kind == "pattern":
        if expected == DURATION_PATTERN and got and isinstance(error.instance, str):
            return f"`{name}` must be an integer and one unit, like {EXAMPLES}{got}{duration_hint(error.instance)}"
        hint = _PATTERN_HINTS.get(str(expected), "is not in the expected form")
        return f"`{name}` {hint}{got}"
    detail = "" if is_secret_path(path) or path in doc.from_env else f": {error.message}"
    return f"`{name}` is not valid{detail}"


def _name(path: Path) -> str:
    if not path:
        return "the config"
    last = path[-1]
    if isinstance(last, int):
        return format_path(path[-2:]) if len(path) >= 2 else f"[{last}]"
    return last


def _got(doc: Document, path: Path, value: Any) -> str:
    """``, got <value>`` unless the value is, or may be, a secret."""
    if is_secret_path(path) or path in doc.from_env:
        return ""
    return f", got {_show(value)}"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return quoted(str(value))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    if not text:
        return "an empty string"
    if _LOOKS_TYPED.fullmatch(text):  # `version: "1"`: say it is a string, or "got 1" confuses
        return f'the string "{quoted(text)}"'
    return f"`{quoted(text)}`"
