"""Renderers: turn plans, status documents and apply results into text, JSON or Markdown.
Pure string functions; the CLI decides where the strings go."""

import json

from ..model import Plan
from .markdown import plan_markdown
from .text import apply_text, drift_text, plan_text, status_text

__all__ = [
    "apply_text",
    "drift_json",
    "drift_markdown",
    "drift_text",
    "plan_markdown",
    "plan_text",
    "plan_view",
    "status_text",
    "to_json",
]


def to_json(doc: object) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def plan_view(plan: Plan, fmt: str) -> str:
    """The plan as ``text``, ``json`` or ``markdown``."""
    if fmt == "json":
        return to_json(plan.to_json())
    return plan_markdown(plan) if fmt == "markdown" else plan_text(plan)


def drift_json(plan: Plan) -> str:
    """``drift --format json``: ``{"now", "drift": [...], "warnings": [...]}``."""
    drift = [d.to_json() for d in plan.drift]
    return to_json({"now": plan.to_json()["now"], "drift": drift, "warnings": list(plan.warnings)})


def drift_markdown(plan: Plan) -> str:
    """The plan's Markdown without its actions."""
    return plan_markdown(Plan(plan.now, plan.config_digest, plan.state_digest, (), plan.drift, plan.warnings))
