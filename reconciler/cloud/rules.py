"""ClickHouse Cloud's rules about what may be backed up where: the restricted-service rule (TDE,
regulated services), the declared facts against what the API reports, and whether a declared
external bucket can be set. Pure."""

from __future__ import annotations

from typing import Any

from ..errors import ReconcilerError
from ..model import STORE_CLOUD, Config, ServiceFacts

RESTRICTED_COMPLIANCE = ("hipaa", "pci")


# --------------------------------------------------------------------------------------------


def fact_mismatches(config: Config, service: str, facts: ServiceFacts) -> list[str]:
    """One phrase per declared fact that ClickHouse Cloud contradicts."""
    declared = config.services[service].cloud
    if declared is None:
        return []
    out = []
    pairs: list[tuple[str, Any, Any, str]] = [
        ("provider", declared.provider.value, (facts.provider or "").lower() or None, "cloud.provider"),
        ("region", declared.region, facts.region, "cloud.region"),
        ("tde", declared.tde, facts.tde, "cloud.tde"),
        ("compliance", declared.compliance, facts.compliance, "cloud.compliance"),
    ]
    for what, want, got, path in pairs:
        if what == "provider" and got is None or what == "region" and not got:
            continue  # not reported: nothing to contradict
        if (want.lower() if isinstance(want, str) else want) != (got.lower() if isinstance(got, str) else got):
            out.append(f"the config says {what} {_fact(want)} but ClickHouse Cloud reports {_fact(got)} (fix {path})")
    return out


def restriction(tde: bool, compliance: str | None) -> str | None:
    """Why ClickHouse Cloud allows no backup or restore of a service with Transparent Data
    Encryption or a regulated compliance type, or None. The one rule: config/ checks the declared
    facts with it, plan and apply the facts the API reports."""
    if tde:
        return "has Transparent Data Encryption"
    if compliance in RESTRICTED_COMPLIANCE:
        return f"is a regulated ({compliance}) service"
    return None


def restricted_by(facts: ServiceFacts) -> str | None:
    """Why ClickHouse Cloud allows no backup/restore of a service with these facts, or None."""
    return restriction(facts.tde, facts.compliance)


def uses_of(config: Config, service: str) -> list[str]:
    """What in the config backs up or restores ``service`` (for the restricted-service rule)."""
    out = [f"schedule {n}" for n, s in config.schedules.items() if s.service == service]
    out += [
        f"schedule {n} (drill)"
        for n, s in config.schedules.items()
        if s.validate.drill and s.validate.drill.service == service
    ]
    out += [f"restore {n}" for n, r in config.restores.items() if service in (r.source.service, r.target.service)]
    declared = config.services[service].cloud
    mb = declared.managed_backups if declared else None
    if mb and mb.external_bucket:
        out.append("managed_backups.external_bucket")
    return out


def check_facts(config: Config, service: str, facts: ServiceFacts) -> None:
    """Raise one error naming every contradicted fact, and what the Cloud rules then refuse."""
    problems = fact_mismatches(config, service, facts)
    if not problems:
        return
    message = f"service {service}: " + "; ".join(problems)
    why = restricted_by(facts)
    uses = uses_of(config, service)
    if why and uses:
        message += (
            f"; with the reported facts the service {why}, which ClickHouse Cloud does not allow to be "
            f"backed up or restored ({', '.join(uses)})"
        )
    raise ReconcilerError(message, where=config.path)


def external_bucket_problem(config: Config, service: str, facts: ServiceFacts | None) -> str | None:
    """Why the declared external bucket cannot be set on the service, or None. Uses the observed
    facts when there are some, else the declared ones."""
    declared = config.services[service].cloud
    mb = declared.managed_backups if declared else None
    if declared is None or mb is None or not mb.external_bucket or mb.external_bucket not in config.buckets:
        return None
    bucket = config.buckets[mb.external_bucket]
    provider = (facts.provider if facts and facts.provider else declared.provider.value).lower()
    restricted = restricted_by(facts) if facts else restriction(declared.tde, declared.compliance)
    if restricted:
        return (
            f"service {service} {restricted}: ClickHouse Cloud exports none of its backups to an external bucket; "
            "remove managed_backups.external_bucket"
        )
    store_cloud = STORE_CLOUD[bucket.provider].value
    if store_cloud != provider:
        return (
            f"external_bucket {bucket.name} is in {store_cloud} but service {service} runs in {provider}: "
            "ClickHouse Cloud's external backup bucket must be in the service's cloud; use a bucket there"
        )
    return None


def _fact(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
