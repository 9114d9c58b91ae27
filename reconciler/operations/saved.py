"""A plan saved by ``plan --out``: read, checked against the plan schema and the config, and
refused as stale when the config or the observed state changed since it was made."""

from __future__ import annotations

import json
from pathlib import Path

from ..apply import check_references
from ..errors import ReconcilerError, StalePlan
from ..model import Config, Plan, PlanFormatError
from ..schemas import validate_plan


def read_saved_plan(path: Path, config: Config) -> Plan:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise ReconcilerError(f"cannot read the plan: {e.strerror}", where=str(path)) from None
    except json.JSONDecodeError as e:
        raise ReconcilerError(f"the plan is not JSON: {e.msg}", where=f"{path}:{e.lineno}:{e.colno}") from None
    except UnicodeDecodeError:
        raise ReconcilerError("the plan is not UTF-8 text", where=str(path)) from None
    problem = validate_plan(doc)
    if problem:
        raise ReconcilerError(f"the plan does not match the plan schema: {problem}", where=str(path))
    try:
        plan = Plan.from_json(doc)
    except (PlanFormatError, ValueError, KeyError) as e:
        raise ReconcilerError(f"the plan does not match the plan schema: {e}", where=str(path)) from None
    if plan.config_digest != config.digest:
        raise StalePlan(
            "the saved plan is stale: the config changed since it was made "
            f"({plan.config_digest} → {config.digest}); run plan again",
            where=str(path),
        )
    check_references(plan, config)
    return plan


def check_state(plan: Plan, state_digest: str, path: Path | None) -> None:
    if state_digest != plan.state_digest:
        raise StalePlan(
            "the saved plan is stale: the observed state changed since it was made "
            f"({plan.state_digest} → {state_digest}); run plan again",
            where=str(path) if path else None,
        )
