"""Renderers: turn plans, status documents and apply results into text, JSON or Markdown.
Pure string functions; the CLI decides where the strings go."""

from .markdown import plan_markdown
from .text import apply_text, drift_text, plan_text, status_text

__all__ = ["plan_text", "plan_markdown", "status_text", "apply_text", "drift_text", "to_json"]


def to_json(doc: object) -> str:
    import json

    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
