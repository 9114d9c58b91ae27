"""Observe ClickHouse Cloud services through the Cloud API (services with ``cloud.api``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..connections import Connections
from ..model import Config


def observe_cloud(config: Config, conns: Connections, services: Iterable[str]) -> dict[str, Any]:
    """service name -> CloudState, for the selected services that declare ``cloud.api``."""
    return {}


def cloud_digest(cloud: Mapping[str, Any]) -> Any:
    """What of the Cloud state a saved plan depends on (JSON-serialisable)."""
    return {}
