"""Action ids: ``<type>/<service>/<schedule>/<backup>`` and friends, stable across plans so that
a reviewer, a saved plan and a run record name the same thing the same way."""

from __future__ import annotations


def export_id(service: str, schedule: str, backup: str) -> str:
    return f"export/{service}/{schedule}/{backup}"


def validate_id(service: str, schedule: str, backup: str) -> str:
    return f"validate/{service}/{schedule}/{backup}"


def prune_id(service: str, schedule: str, backup: str) -> str:
    return f"prune/{service}/{schedule}/{backup}"


def restore_id(name: str) -> str:
    return f"restore/{name}"


def configure_id(service: str, setting: str) -> str:
    return f"configure/{service}/{setting}"


def copy_id(service: str, schedule: str, backup: str, bucket: str) -> str:
    return f"copy/{service}/{schedule}/{backup}@{bucket}"


def in_copy(action_id: str, bucket: str) -> str:
    """The id of a validate or prune of a copy: the source's id and ``@<copy bucket>``."""
    return f"{action_id}@{bucket}"


def recover_id(service: str, schedule: str, backup: str) -> str:
    return f"recover/{service}/{schedule}/{backup}"
