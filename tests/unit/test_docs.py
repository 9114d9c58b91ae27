"""The reference in docs/ covers the schemas, and the repository's Markdown links stay inside it.

- every property key of ``schemas/config.v1.json`` (wherever it is: properties, $defs, items,
  additionalProperties, patternProperties, allOf/anyOf/oneOf, if/then/else) is named in backticks
  somewhere in ``docs/*.md``, and ``docs/config.md`` names each one by its full dotted path
  (``schedules.<name>.retention.keep_daily``);
- every action type and drift type of ``schemas/plan.v1.json``, and every key of the plan, is
  named in backticks in ``docs/*.md``;
- README.md and docs/*.md link nothing outside the repository (``../shared/...``, an absolute
  path, a ``file:`` URL, any relative link that resolves above the repository root) and no
  relative link points at a file that does not exist;
- docs/ does not mention documents that users of the repository do not have.

The checkers are plain functions of paths, so the tests at the end can prove that each one fails
on a broken copy.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
CONFIG_SCHEMA = ROOT / "schemas" / "config.v1.json"
PLAN_SCHEMA = ROOT / "schemas" / "plan.v1.json"

#: keywords whose value is one subschema
_ONE = ("additionalProperties", "items", "additionalItems", "contains", "propertyNames", "not", "if", "then", "else")
#: keywords whose value is a list of subschemas
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
#: keywords whose value maps names to subschemas (walked, but their names are not property keys)
_MAPS = ("patternProperties", "$defs", "definitions", "dependentSchemas")

# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


def _subschemas(node: dict[str, Any]) -> Iterator[Any]:
    yield from node.get("properties", {}).values() if isinstance(node.get("properties"), dict) else ()
    for key in _ONE:
        if isinstance(node.get(key), dict):
            yield node[key]
    for key in _MANY:
        if isinstance(node.get(key), list):
            yield from node[key]
    for key in _MAPS:
        if isinstance(node.get(key), dict):
            yield from node[key].values()


def property_keys(schema: Any) -> set[str]:
    """Every key of every ``properties`` object anywhere in the schema document."""
    keys: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("properties"), dict):
            keys |= set(node["properties"])
        stack.extend(_subschemas(node))
    return keys


def _resolve(schema: dict[str, Any], node: Any) -> Any:
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        ref = node["$ref"]
        if ref in seen:
            break
        seen.add(ref)
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def property_paths(schema: dict[str, Any]) -> set[str]:
    """Full dotted paths of every key a config can hold, from the top of the document:
    ``schedules.<name>.retention.keep_daily``; a map's entries are ``<name>``, a list's items
    ``[]``. $refs are followed (once per path, so recursion ends)."""
    paths: set[str] = set()

    def walk(node: Any, path: str, refs: frozenset[str]) -> None:
        ref = node.get("$ref") if isinstance(node, dict) else None
        if ref in refs:
            return
        refs = refs | {ref} if ref else refs
        node = _resolve(schema, node)
        if not isinstance(node, dict):
            return
        for key, sub in (node.get("properties") or {}).items():
            here = f"{path}.{key}" if path else key
            paths.add(here)
            walk(sub, here, refs)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.<name>", refs)
        for sub in (node.get("patternProperties") or {}).values():
            walk(sub, f"{path}.<name>", refs)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", refs)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or ():
                walk(sub, path, refs)
        for key in ("if", "then", "else"):
            if isinstance(node.get(key), dict):
                walk(node[key], path, refs)

    walk(schema, "", frozenset())
    return paths


def plan_action_types(plan_schema: dict[str, Any]) -> list[str]:
    return list(plan_schema["$defs"]["action"]["properties"]["type"]["enum"])


def plan_drift_types(plan_schema: dict[str, Any]) -> list[str]:
    return list(plan_schema["$defs"]["drift"]["properties"]["type"]["enum"])


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
#: a code span: a run of backticks, closed by a run of exactly as many (CommonMark)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_HTML_LINK = re.compile(r"""<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def code_spans(text: str) -> list[str]:
    """The contents of every inline code span (outside fenced blocks), trimmed."""
    return [m.group(2).strip() for m in _CODE_SPAN.finditer(_FENCE.sub("", text))]


def backticked_words(files: Iterable[Path]) -> set[str]:
    """What counts as naming a key: a code span as a whole, each part of a dotted path in one
    (``schedules.<name>.retention.keep_daily`` names ``retention`` and ``keep_daily``), and the
    key of a ``key: value`` span."""
    words: set[str] = set()
    for f in files:
        for span in code_spans(f.read_text(encoding="utf-8")):
            words.add(span)
            for part in re.split(r"[.\[\]]+", span):
                words.add(part.strip())
            head = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", span)
            if head:
                words.add(head.group(1))
    return words


def links(text: str) -> list[str]:
    """Link targets of Markdown text: inline links and images, reference definitions, HTML
    ``href``/``src``; code (fenced or inline) is not searched."""
    text = _FENCE.sub("", text)
    text = _CODE_SPAN.sub(lambda m: "code", text)
    found = [m.group(1) for m in _INLINE_LINK.finditer(text)]
    found += [m.group(1) for m in _REF_DEF.finditer(text)]
    found += [m.group(1) for m in _HTML_LINK.finditer(text)]
    return found


def link_problems(md: Path, root: Path) -> list[str]:
    """Links of ``md`` that leave the repository ``root`` or point at nothing."""
    problems = []
    root = root.resolve()
    for target in links(md.read_text(encoding="utf-8")):
        if not target or target.startswith("#"):
            continue
        if target.lower().startswith("file:"):
            problems.append(f"{md.name}: {target} is a file: URL")
            continue
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # https:, mailto:, ...: not a path in the repository
        path = target.split("#", 1)[0].split("?", 1)[0]
        if "/shared/" in f"/{path}" or path.startswith("../shared"):
            problems.append(f"{md.name}: {target} points at a shared folder outside the repository")
            continue
        if path.startswith("/"):
            problems.append(f"{md.name}: {target} is an absolute path; link relative to the file")
            continue
        resolved = (md.parent / path).resolve()
        if resolved != root and root not in resolved.parents:
            problems.append(f"{md.name}: {target} resolves outside the repository ({resolved})")
        elif not resolved.exists():
            problems.append(f"{md.name}: {target} does not exist")
    return problems


def doc_files(docs: Path = DOCS) -> list[Path]:
    return sorted(docs.glob("*.md"))


# --------------------------------------------------------------------------------------------
# Checks (functions of paths, so that the self-tests can run them on broken copies)
# --------------------------------------------------------------------------------------------


def missing_config_keys(schema_path: Path, docs: Path) -> list[str]:
    words = backticked_words(doc_files(docs))
    return sorted(k for k in property_keys(json.loads(schema_path.read_text())) if k not in words)


def missing_config_paths(schema_path: Path, docs: Path) -> list[str]:
    spans = set(code_spans((docs / "config.md").read_text(encoding="utf-8")))
    return sorted(p for p in property_paths(json.loads(schema_path.read_text())) if p not in spans)


def missing_plan_names(plan_path: Path, docs: Path) -> list[str]:
    plan = json.loads(plan_path.read_text())
    words = backticked_words(doc_files(docs))
    wanted = set(plan_action_types(plan)) | set(plan_drift_types(plan)) | property_keys(plan)
    return sorted(w for w in wanted if w not in words)


def markdown_files(root: Path) -> list[Path]:
    return [root / "README.md", *doc_files(root / "docs")]


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


def test_docs_exist() -> None:
    names = {p.name for p in doc_files()}
    for name in (
        "README.md",
        "config.md",
        "bucket-layout.md",
        "plan.md",
        "commands.md",
        "validation.md",
        "retention.md",
        "time.md",
    ):
        assert name in names, f"docs/{name} is missing"


def test_every_config_key_is_documented() -> None:
    missing = missing_config_keys(CONFIG_SCHEMA, DOCS)
    assert not missing, f"config keys of {CONFIG_SCHEMA.name} named in no docs/*.md in backticks: {missing}"


def test_every_config_path_is_in_the_config_reference() -> None:
    missing = missing_config_paths(CONFIG_SCHEMA, DOCS)
    assert not missing, f"docs/config.md does not name these config keys by their full path in backticks: {missing}"


def test_every_drift_type_is_documented() -> None:
    words = backticked_words(doc_files())
    missing = [t for t in plan_drift_types(json.loads(PLAN_SCHEMA.read_text())) if t not in words]
    assert not missing, f"drift types of {PLAN_SCHEMA.name} named in no docs/*.md in backticks: {missing}"


def test_every_action_type_is_documented() -> None:
    words = backticked_words(doc_files())
    missing = [t for t in plan_action_types(json.loads(PLAN_SCHEMA.read_text())) if t not in words]
    assert not missing, f"action types of {PLAN_SCHEMA.name} named in no docs/*.md in backticks: {missing}"


def test_every_plan_key_is_documented() -> None:
    missing = missing_plan_names(PLAN_SCHEMA, DOCS)
    assert not missing, f"plan keys of {PLAN_SCHEMA.name} named in no docs/*.md in backticks: {missing}"


@pytest.mark.parametrize("md", markdown_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_in_the_repository_and_exist(md: Path) -> None:
    problems = link_problems(md, ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("md", doc_files(), ids=lambda p: p.name)
def test_docs_do_not_mention_documents_users_do_not_have(md: Path) -> None:
    text = md.read_text(encoding="utf-8")
    for word in ("DESIGN.md", "DESIGN §", "../shared", "/shared/"):
        assert word not in text, f"docs/{md.name} mentions {word!r}: the docs must stand on their own"


# --------------------------------------------------------------------------------------------
# The checks can fail: run them on broken copies (never on the real schema or docs)
# --------------------------------------------------------------------------------------------


def test_a_key_missing_from_the_docs_is_found(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    for f in doc_files(docs):  # remove every mention of one key from a copy of the docs
        f.write_text(f.read_text(encoding="utf-8").replace("keep_monthly", "keep_m"), encoding="utf-8")
    assert "keep_monthly" in missing_config_keys(CONFIG_SCHEMA, docs)
    assert "schedules.<name>.retention.keep_monthly" in missing_config_paths(CONFIG_SCHEMA, docs)


def test_a_key_added_to_the_schema_is_found(tmp_path: Path) -> None:
    schema = json.loads(CONFIG_SCHEMA.read_text())
    # deep inside: a $def reached through additionalProperties, then a nested object
    schema["$defs"]["retention"]["properties"]["keep_secondly"] = {"type": "integer"}
    schema["$defs"]["bucket"]["properties"]["tags"] = {
        "type": "array",
        "items": {"type": "object", "properties": {"tag_key": {"type": "string"}}},
    }
    schema["$defs"]["bucket"]["patternProperties"] = {"^x-": {"properties": {"x_extension": {}}}}
    copy = tmp_path / "config.v1.json"
    copy.write_text(json.dumps(schema))
    assert {"keep_secondly", "tags", "tag_key", "x_extension"} <= set(missing_config_keys(copy, DOCS))
    paths = missing_config_paths(copy, DOCS)
    assert "schedules.<name>.retention.keep_secondly" in paths
    assert "buckets.<name>.tags[].tag_key" in paths
    assert "buckets.<name>.<name>.x_extension" in paths


def test_a_drift_or_action_type_added_to_the_plan_schema_is_found(tmp_path: Path) -> None:
    plan = json.loads(PLAN_SCHEMA.read_text())
    plan["$defs"]["drift"]["properties"]["type"]["enum"].append("made_up_drift")
    plan["$defs"]["action"]["properties"]["type"]["enum"].append("made_up_action")
    copy = tmp_path / "plan.v1.json"
    copy.write_text(json.dumps(plan))
    assert {"made_up_drift", "made_up_action"} <= set(missing_plan_names(copy, DOCS))


def test_links_outside_the_repository_or_to_nothing_are_found(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "here.md").write_text("x")
    (tmp_path / "outside.md").write_text("x")
    md = root / "docs" / "bad.md"
    md.write_text(
        "[contract](../shared/DESIGN.md) [up](../../outside.md) [abs](/etc/passwd) [gone](gone.md)\n"
        "[fine](here.md#part) [web](https://example.com/x.md) [anchor](#top) `[code](../../no.md)`\n"
        "```\n[fenced](../../no.md)\n```\n"
        '[ref]: ../../outside.md\n<a href="../nowhere.md">x</a>\n'
    )
    problems = link_problems(md, root)
    reported = [p.split(" ")[1] for p in problems]  # "bad.md: <target> <why>"
    assert sorted(reported) == sorted(
        ["../shared/DESIGN.md", "../../outside.md", "/etc/passwd", "gone.md", "../../outside.md", "../nowhere.md"]
    ), "\n".join(problems)
