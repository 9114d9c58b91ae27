"""The desired-state config (docs/config.md): load, check and build ``model.Config``.

Loading goes in stages, each with its own module: ``yaml_loader`` reads the file into values
with their places and expands ``${VAR}``; ``schema`` checks the shape against the JSON Schema;
``rules`` checks what spans several values; ``build`` makes the model. A file that does not
parse, or whose variables are unset, stops at that stage; otherwise every schema and rule
problem is reported together, sorted by line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.config.build import build_config
from reconciler.config.durations import parse_duration
from reconciler.config.rules import check_rules
from reconciler.config.schema import config_schema, validate_schema
from reconciler.config.yaml_loader import Document, format_path, load_document, printable
from reconciler.errors import ConfigError, Location, ReconcilerError
from reconciler.model import Config

__all__ = ["ConfigCheck", "check_config", "config_schema", "load_config", "parse_duration"]


def load_config(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Read, check and build the config at ``path``; ``${VAR}`` from ``env`` (default os.environ).

    Raises ConfigError carrying every problem found, each with ``file:line:col at path``.
    Messages quote what the file says; control and bidi characters in it are shown escaped, so
    a config from a pull request cannot rewrite a terminal or a CI log through an error.
    """
    try:
        doc = load_document(path, os.environ if env is None else env)
        problems = validate_schema(doc)
        findings = check_rules(doc)
        problems += findings.problems
        if problems:
            raise ConfigError(_unique_sorted(problems))
    except ConfigError as e:
        raise ConfigError([ReconcilerError(printable(p.message), p.where) for p in e.problems]) from None
    return build_config(doc, tuple(printable(w) for w in findings.sorted_warnings()))


@dataclass(frozen=True)
class ConfigCheck:
    """What ``validate`` reports of a config it checked without the environment."""

    sections: dict[str, int]  # entries per top-level section
    warnings: tuple[str, ...]
    #: variables that are not set here, each with the first place it is used
    unset: tuple[tuple[str, str], ...]


def check_config(path: str, env: Mapping[str, str] | None = None) -> ConfigCheck:
    """Check the config at ``path`` as ``validate`` does: like ``load_config``, but a variable
    that is not set is no error (a pull request from a fork has no secrets); every check that
    does not depend on its value still runs. Raises ConfigError like ``load_config``."""
    try:
        doc = load_document(path, os.environ if env is None else env, allow_unset=True)
        skipped = {format_path(p) for p in doc.unresolved}
        problems = [p for p in validate_schema(doc) if not _at(p, skipped)]
        findings = check_rules(doc)
        problems += [p for p in findings.problems if not _at(p, skipped)]
        if problems:
            raise ConfigError(_unique_sorted(problems))
        if not doc.unresolved:
            build_config(doc)  # everything is known: build it as the connecting commands will
    except ConfigError as e:
        raise ConfigError([ReconcilerError(printable(p.message), p.where) for p in e.problems]) from None
    return ConfigCheck(
        sections=_sections(doc),
        warnings=tuple(printable(w) for w in findings.sorted_warnings()),
        unset=_first_uses(doc),
    )


def _at(problem: ReconcilerError, paths: set[str]) -> bool:
    where = problem.where
    return isinstance(where, Location) and where.path in paths


def _sections(doc: Document) -> dict[str, int]:
    data = doc.data if isinstance(doc.data, dict) else {}
    return {k: len(v) if isinstance(v, dict | list) else 0 for k, v in data.items() if k != "version"}


def _first_uses(doc: Document) -> tuple[tuple[str, str], ...]:
    first: dict[str, str] = {}
    for path, names in sorted(doc.unresolved.items(), key=lambda kv: (doc.mark(kv[0]).line, doc.mark(kv[0]).column)):
        for name in names:
            first.setdefault(name, str(doc.location(path)))
    return tuple(first.items())


def _unique_sorted(problems: list[ReconcilerError]) -> list[ReconcilerError]:
    seen: set[str] = set()
    unique = []
    for problem in problems:
        if problem.line() not in seen:
            seen.add(problem.line())
            unique.append(problem)

    def key(problem: ReconcilerError) -> tuple[int, int]:
        where = problem.where
        return (where.line, where.column) if isinstance(where, Location) else (0, 0)

    return sorted(unique, key=key)
