"""Fuzzing the config loader (issue 9, part 5): whatever the file holds, ``load_config`` either
returns a Config or raises ConfigError whose every line has the shape

    error: <what> (<file>:<line>:<col>[ at <path>])      a problem at a place
    error: <what> (<file>)                               a problem of the whole file

with nothing unprintable in it, and never hangs. A config that loads can be planned with:
its schedules name defined services and buckets, and their slots can be computed.

Four sources of text: YAML-ish noise; mutations of the full example config (lines deleted,
duplicated, re-indented, values swapped or replaced by other types, tags and anchors inserted);
random documents from ``st.recursive`` over the config's own vocabulary; and the valid config
with one leaf replaced by a random (often nearly right) value.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.model import UTC, Config
from reconciler.model.slots import latest_slot, next_slot, previous_slot

FULL = Path(__file__).parent.parent / "configs" / "full.yaml"
FULL_LINES = FULL.read_text().splitlines()
FULL_DOC: dict[str, Any] = yaml.safe_load(FULL.read_text())

ENV = {
    "ANALYTICS_DSN": "https://reader:fuzz-dsn-pass@analytics.example.com:8443",
    "CH_KEY_ID": "fuzz-key-id",
    "CH_KEY_SECRET": "fuzz-key-secret",
    "STAGING_PASSWORD": "fuzz-staging-pass",
    "AWS_ACCESS_KEY_ID": "fuzz-access",
    "AWS_SECRET_ACCESS_KEY": "fuzz-aws-secret",
    "AWS_SESSION_TOKEN": "fuzz-aws-token",
    "GCS_HMAC_KEY": "fuzz-hmac-key",
    "GCS_HMAC_SECRET": "fuzz-hmac-secret",
    "AZURE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountKey=fuzz-conn-secret",
    "AZURE_ACCOUNT_KEY": "fuzz-azure-key",
}

#: examples per test (4 tests); FUZZ_EXAMPLES=20000 for a long hunt
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    # a guard against a loader that hangs (an alias bomb, a runaway regex), not a speed check:
    # 3 s flaked once on a machine loaded by parallel test runs
    deadline=timedelta(seconds=30),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
_PLACE = re.compile(r"^error: (?P<what>.+) \((?P<file>[^()]*?)(?::(?P<line>\d+):(?P<col>\d+)(?: at (?P<path>.+))?)?\)$")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "cfg.yaml"


def check(path: Path, data: str | bytes) -> None:
    """The one property: a Config, or a ConfigError of well-formed lines."""
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines_in_file = len(_LINE_BREAK.findall(text)) + 1  # YAML's line breaks, which editors count too
    try:
        config = load_config(str(path), ENV)
    except ConfigError as e:
        event("refused")
        assert e.problems, "a ConfigError without problems"
        for line in e.lines():
            m = _PLACE.match(line)
            assert m, f"malformed problem line: {line!r}"
            assert m.group("file") == str(path), line
            assert "\n" not in line and not _UNPRINTABLE.search(line), f"unprintable problem line: {line!r}"
            if m.group("line"):
                assert 1 <= int(m.group("line")) <= lines_in_file + 1, line
                assert int(m.group("col")) >= 1, line
        return
    event("loaded")
    usable(config)


def usable(config: Config) -> None:
    """What the planner relies on after a successful load."""
    assert isinstance(config, Config)
    assert config.digest.startswith("sha256:")
    for s in config.schedules.values():
        assert s.service in config.services and s.bucket in config.buckets
        assert (s.cron is None) != (s.every is None)
        slot = latest_slot(s, NOW)
        assert slot <= NOW
        previous_slot(s, slot)
        next_slot(s, slot)
    for r in config.restores.values():
        assert r.source.schedule is None or r.source.schedule in config.schedules
        assert r.target.service is None or r.target.service in config.services


# --------------------------------------------------------------------------------------------
# 1. YAML-ish noise
# --------------------------------------------------------------------------------------------

YAMLISH = st.text(
    alphabet=st.sampled_from(
        list(":-[]{},#&*!|>'\"%@`?~ \n\t\r\\$") + list("abcsv01") + ["\u0430", "\u202e", "\x1b", "é"]
    ),
    max_size=200,
)
TOKENS = st.sampled_from(
    [
        "version: 1\n",
        "services:\n",
        "  a:\n",
        "    dsn: x\n",
        "- ",
        "  ",
        "\t",
        ": ",
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "<<: *a\n",
        "!!python/object:os.system ",
        "!tag ",
        "'",
        '"',
        "${A}",
        "${",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "? ",
        "|\n",
        ">-\n",
        "#",
        "\n",
        "\ufeff",
        "\x00",
        "\x85",
    ]
)


@FUZZ
@given(st.one_of(YAMLISH, st.lists(TOKENS, max_size=40).map("".join), st.binary(max_size=200)))
def test_noise(cfg_file: Path, text: str | bytes) -> None:
    check(cfg_file, text)


# --------------------------------------------------------------------------------------------
# 2. Mutations of a valid config
# --------------------------------------------------------------------------------------------

ODD_VALUES = [
    "1",
    "-1",
    "0",
    "true",
    "no",
    "null",
    "~",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    '""',
    "0x10",
    "1e999",
    "-.inf",
    ".nan",
    "2026-11-25",
    "2026-11-25T03:00:00Z",
    "12:30",
    "!!python/object:os.system ls",
    "!!binary aGVsbG8=",
    "!!int abc",
    "!!str 1",
    "!custom x",
    "&anchor 1",
    "*anchor",
    "*undefined",
    "${UNSET_VAR}",
    "${}",
    "$${LITERAL}",
    "${BAD-NAME}",
    "9" * 50,
    "9" * 5000,
    "'unterminated",
    "[unterminated",
    "a: b: c",
    "@reserved",
    "`backtick`",
    "Analytics",
    "\u0430nalytics",
    '"\\e[31mred\\e[0m"',
    '"\\u202eevil"',
    "0 3 31 2 *",
    "99999999999w",
    "0s",
    "1h30m",
    "s3://bucket/..",
    "chdb:///other/path",
    "https://u:literal-pass@h:8443",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(FULL_LINES)
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "tab", "swap", "value", "tag", "insert"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + line
        elif op == "dedent":
            lines[i] = line[draw(st.integers(1, 4)) :]
        elif op == "tab":
            lines[i] = "\t" + line.lstrip(" ")
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            a, b = lines[i].partition(": "), lines[j].partition(": ")
            if a[1] and b[1]:
                lines[i], lines[j] = a[0] + a[1] + b[2], b[0] + b[1] + a[2]
        elif op in ("value", "tag"):
            key, sep, value = line.partition(": ")
            if sep:
                new = draw(st.sampled_from(ODD_VALUES))
                lines[i] = key + sep + (new if op == "value" else f"{new.split(' ')[0]} {value}")
        else:
            lines.insert(i, draw(st.sampled_from([*ODD_VALUES, "extra: 1", "  extra: 1", "- 1", "<<: *anchor"])))
        if not lines:
            break
    return "\n".join(lines) + "\n"


@FUZZ
@given(mutated())
def test_mutations_of_a_valid_config(cfg_file: Path, text: str) -> None:
    check(cfg_file, text)


# --------------------------------------------------------------------------------------------
# 3. Random documents over the config's vocabulary
# --------------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "version",
        "services",
        "buckets",
        "schedules",
        "restores",
        "analytics",
        "staging",
        "primary",
        "daily",
        "dsn",
        "cloud",
        "provider",
        "region",
        "tde",
        "compliance",
        "api",
        "managed_backups",
        "period_hours",
        "retention_hours",
        "start_time",
        "external_bucket",
        "bucket",
        "prefix",
        "endpoint",
        "credentials",
        "secret_access_key",
        "connection_string",
        "service",
        "databases",
        "tables",
        "cron",
        "every",
        "incremental",
        "full_every",
        "retention",
        "keep_last",
        "keep_within",
        "min_valid",
        "validate",
        "after_export",
        "drill",
        "from",
        "to",
        "new_service",
        "name",
        "backup",
        "<<",
    ]
) | st.text(max_size=8)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["s3", "gcs", "azure", "aws", "gcp", "0 3 * * *", "6h", "latest", "${ANALYTICS_DSN}", "manifest"])
)
DOCS = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=40
)


@FUZZ
@given(
    st.one_of(DOCS, st.dictionaries(KEYS, DOCS, max_size=6).map(lambda d: {"version": 1, **d})),
    st.booleans(),
    st.booleans(),
)
def test_random_documents(cfg_file: Path, doc: Any, flow: bool, unicode: bool) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=unicode, sort_keys=False)
    check(cfg_file, text)


# --------------------------------------------------------------------------------------------
# 4. The valid config with one leaf replaced by a nearly right value
# --------------------------------------------------------------------------------------------


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in _leaf_paths(v, (*path, i))]
    return [path]


PATHS = [p for p in _leaf_paths(FULL_DOC) if p]
CRON_FIELD = st.sampled_from(
    [
        "*",
        "*/0",
        "*/7",
        "0",
        "59",
        "60",
        "1-5",
        "5-1",
        "L",
        "W",
        "1W",
        "5L",
        "1#6",
        "?",
        "H",
        "MON",
        "JAN",
        "31",
        "2",
        "30",
        "-1",
        ",",
    ]
)
NEARLY = st.one_of(
    st.lists(CRON_FIELD, min_size=1, max_size=7).map(" ".join),
    st.sampled_from(["@daily", "@reboot", "@every 5m", "@hourly", "0 3 30 2 *", "0 0 29 2 *"]),
    st.tuples(st.integers(-5, 10**15), st.sampled_from(list("smhdwSMHy") + ["", "ms", "h30m"])).map(
        lambda t: f"{t[0]}{t[1]}"
    ),
    st.from_regex(r"[a-z0-9._/\\-]{0,70}", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from([0, -1, 1, 5, 6, 24, 25, 720, 721, 2**63, 1.5, True, None, [], {}, "03:00", "24:00", "3:00"]),
    st.sampled_from(["${UNSET}", "${ANALYTICS_DSN}", "literal-secret", "https://u:p@h", "chdb:///x", ":memory:"]),
)


@FUZZ
@given(st.sampled_from(PATHS), NEARLY, st.booleans())
def test_one_leaf_nearly_right(cfg_file: Path, path: tuple[Any, ...], value: Any, as_key: bool) -> None:
    doc = copy.deepcopy(FULL_DOC)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if as_key and isinstance(parent, dict) and isinstance(value, str):
        parent[value] = parent.pop(path[-1])  # a renamed key: a bad name, or a dangling reference
    else:
        parent[path[-1]] = value
    check(cfg_file, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
