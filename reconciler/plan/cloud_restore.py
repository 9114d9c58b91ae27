"""Restores of a ClickHouse Cloud backup into a new service (``from: {service: ...}``). Pure."""

from __future__ import annotations

from ..model import Action, Config, Observed, Restore


def decide_cloud_restore(restore: Restore, config: Config, observed: Observed) -> tuple[Action | None, str | None]:
    """(action, warning)."""
    return None, (
        f"restore {restore.name}: restoring a ClickHouse Cloud backup into a new service needs the Cloud API "
        "support, which this version does not have yet; nothing is planned for it"
    )
