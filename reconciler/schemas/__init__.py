"""The JSON Schemas of the config and of the plan, versioned with the package
(``schemas/`` at the top of the repository is the same folder)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

FILES = {"config": "config.v1.json", "plan": "plan.v1.json"}


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(FILES[name]).read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def validate_plan(doc: object) -> str | None:
    """The first problem of a plan document against the plan schema, or None."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(load_schema("plan")).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = errors[0]
    path = "/".join(str(p) for p in e.absolute_path) or "(top)"
    return f"{e.message} at {path}"
