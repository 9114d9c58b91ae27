"""``configure`` actions and ``config_drift``: a Cloud service's settings against the desired
``managed_backups``. Pure."""

from __future__ import annotations

from ..model import Action, Config, Drift, Observed
from ..targets import Selection


def decide_configure(config: Config, observed: Observed, sel: Selection) -> tuple[list[Action], list[Drift], list[str]]:
    """(actions, drift, warnings)."""
    return [], [], []
