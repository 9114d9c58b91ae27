"""Terraform-style reconciler for ClickHouse backups in your own object storage.

The public surface: load a config, observe, build a plan, apply it.

    from reconciler import load_config, Connections, observe, build_plan
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clickhouse-backup-reconciler")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__", "load_config", "Connections", "observe", "build_plan"]


def __getattr__(name: str) -> object:
    # lazy, so that `python -m reconciler --help` does not import boto3, chdb and friends
    if name == "load_config":
        from .config import load_config

        return load_config
    if name == "Connections":
        from .connections import Connections

        return Connections
    if name == "observe":
        from .observe import observe

        return observe
    if name == "build_plan":
        from .plan import build_plan

        return build_plan
    raise AttributeError(name)
