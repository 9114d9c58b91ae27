"""The desired-state config (DESIGN §2): load, check and build ``model.Config``.

Loading goes in stages, each with its own module: ``yaml_loader`` reads the file into values
with their places and expands ``${VAR}``; ``schema`` checks the shape against the JSON Schema;
``rules`` checks what spans several values; ``build`` makes the model. A file that does not
parse, or whose variables are unset, stops at that stage; otherwise every schema and rule
problem is reported together, sorted by line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reconciler.config.build import build_config
from reconciler.config.durations import parse_duration
from reconciler.config.rules import check_rules
from reconciler.config.schema import config_schema, validate_schema
from reconciler.config.yaml_loader import load_document, printable
from reconciler.errors import ConfigError, Location, ReconcilerError
from reconciler.model import Config

__all__ = ["config_schema", "load_config", "parse_duration"]


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
