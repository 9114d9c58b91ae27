"""Table-driven tests of the pure planner for restores of a ClickHouse Cloud backup into a new
service (reconciler/plan/cloud_restore.py): which backup, whether it is done, what is adopted,
what is refused. Config and Observed built by hand."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pytest

from reconciler.model import (
    UTC,
    Bucket,
    CloudApi,
    CloudBackup,
    CloudFacts,
    CloudProvider,
    CloudRestoreAction,
    CloudState,
    Config,
    Credentials,
    ManagedBackups,
    NewService,
    Observed,
    Provider,
    Restore,
    RestoreRecord,
    RestoreSource,
    RestoreTarget,
    Schedule,
    Service,
    ServiceFacts,
)
from reconciler.plan.cloud_restore import decide_cloud_restore

SRC, NEW = "analytics", "analytics-restored"
API = CloudApi("org-1", "svc-1", "key-id-value", "key-secret-value")
FACTS = ServiceFacts("svc-1", SRC, "aws", "us-east-1", False, None, "production", "running")
PRIMARY = Bucket(
    "primary",
    Provider.S3,
    "acme-ch-backups",
    prefix="clickhouse",
    credentials=Credentials(role_arn="arn:aws:iam::1:role/r"),
)
ARCHIVE = Bucket("archive", Provider.S3, "acme-ch-archive", credentials=Credentials(role_arn="arn:aws:iam::1:role/r"))


def t(day: int, hour: int = 3) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def cb(bid: str, status: str | None, started: datetime | None, name: str | None = None, **kw: Any) -> CloudBackup:
    return CloudBackup(bid, status, "full", name, started, **kw)


# the API lists newest first; the planner must not rely on it
BACKUPS = (
    cb("b-25", "in_progress", t(25)),
    cb("b-24e", "error", t(24, 9)),
    cb("b-22", "done", t(22), "analytics-20261122"),
    cb("b-24", "done", t(24), "analytics-20261124"),
    cb("b-23", "done", t(23), "analytics-20261123"),
)

LATEST = Restore("copy", RestoreSource(service=SRC), RestoreTarget(new_service=NewService(NEW)))
DONE_AT = datetime(2026, 11, 20, 4, 5, tzinfo=UTC)


def record(spec: Restore = LATEST) -> RestoreRecord:
    return RestoreRecord("copy", "b-19", spec.spec_digest(), DONE_AT, "run-1")


@dataclass(frozen=True)
class Case:
    restore: Restore = LATEST
    external_bucket: str | None = "primary"  # managed_backups.external_bucket of the source
    schedule_bucket: str | None = None  # a schedule of the source service into this bucket
    api: bool = True
    state: dict[str, Any] = field(default_factory=dict)  # CloudState fields over the defaults


def run(case: Case) -> tuple[CloudRestoreAction | None, str | None]:
    mb = ManagedBackups(period_hours=24, external_bucket=case.external_bucket)
    cloud = CloudFacts(CloudProvider.AWS, "us-east-1", api=API if case.api else None, managed_backups=mb)
    schedules = {}
    if case.schedule_bucket:
        schedules["nightly"] = Schedule("nightly", SRC, case.schedule_bucket, cron="0 3 * * *")
    config = Config(
        path="c.yaml",
        services={SRC: Service(SRC, "https://default:pw@svc.example.com:8443", cloud)},
        buckets={"primary": PRIMARY, "archive": ARCHIVE},
        schedules=schedules,
        restores={case.restore.name: case.restore},
        digest="sha256:" + "0" * 64,
    )
    fields: dict[str, Any] = {"facts": FACTS, "backups": BACKUPS, "restore_source": True}
    fields.update(case.state)
    cloud_states = {SRC: CloudState(SRC, "svc-1", **fields)} if case.api else {}
    observed = Observed(
        buckets={}, services={}, schedules={}, restores={}, digest="sha256:" + "1" * 64, cloud=cloud_states
    )
    action, warning = decide_cloud_restore(case.restore, config, observed)
    assert action is None or isinstance(action, CloudRestoreAction)
    return action, warning


def expect(
    backup: str = "b-24",
    name: str | None = "analytics-20261124",
    started: str | None = "2026-11-24T03:00:00Z",
    bucket: str | None = "primary",
    existing: str | None = None,
    new_service: dict[str, Any] | None = None,
    reason: str = "",
    spec: Restore = LATEST,
) -> dict[str, Any]:
    """The action as the plan JSON has it."""
    out: dict[str, Any] = {"id": "restore/copy", "type": "restore", "service": SRC}
    if bucket:
        out["bucket"] = bucket
    out["backup"] = backup
    out.update(
        {
            "restore": "copy",
            "from_service": SRC,
            "source_service_id": "svc-1",
            "backup_name": name,
            "backup_started_at": started,
            "new_service": new_service
            or {"name": NEW, "provider": "aws", "region": "us-east-1", "tier": "production", "extra": {}},
            "existing_service_id": existing,
            "record_bucket": bucket,
            "spec_digest": spec.spec_digest(),
            "reason": reason,
            "depends_on": [],
        }
    )
    return out


WHY_24 = (
    "declared restore not done yet: Cloud backup b-24 of 2026-11-24T03:00:00Z of service analytics into new "
    "service analytics-restored (us-east-1, production)"
)
NAMED = replace(LATEST, source=RestoreSource(service=SRC, backup="analytics-20261123"))
BY_ID = replace(LATEST, source=RestoreSource(service=SRC, backup="b-22"))
IN_PROGRESS = replace(LATEST, source=RestoreSource(service=SRC, backup="b-25"))
CHANGED = replace(LATEST, target=RestoreTarget(new_service=NewService("analytics-restored-2")))
EXTRA = replace(
    LATEST, target=RestoreTarget(new_service=NewService(NEW, region="US-EAST-1", extra={"idleScaling": True}))
)
OTHER_REGION = replace(LATEST, target=RestoreTarget(new_service=NewService(NEW, region="eu-west-1")))
INTO_SERVICE = replace(LATEST, target=RestoreTarget(service=SRC))
NO_RECORD_WARNING = (
    "restore copy: service analytics has no external bucket and no schedule, so this restore will not be "
    "recorded; the existing service of that name is what marks it done"
)

CASES = [
    pytest.param(Case(), expect(reason=WHY_24), None, id="latest-picks-newest-done-ignores-in-progress-and-error"),
    pytest.param(
        Case(restore=NAMED),
        expect(
            "b-23",
            "analytics-20261123",
            "2026-11-23T03:00:00Z",
            spec=NAMED,
            reason=WHY_24.replace("b-24", "b-23").replace("11-24", "11-23"),
        ),
        None,
        id="named-by-backup-name",
    ),
    pytest.param(
        Case(restore=BY_ID),
        expect(
            "b-22",
            "analytics-20261122",
            "2026-11-22T03:00:00Z",
            spec=BY_ID,
            reason=WHY_24.replace("b-24", "b-22").replace("11-24", "11-22"),
        ),
        None,
        id="named-by-backup-id",
    ),
    pytest.param(
        Case(restore=IN_PROGRESS),
        None,
        "restore copy: ClickHouse Cloud has no backup b-25 of service analytics to restore",
        id="named-backup-in-progress-is-not-restorable",
    ),
    pytest.param(
        Case(state={"backups": BACKUPS[:2]}),
        None,
        "restore copy: ClickHouse Cloud has no complete (done) backup of service analytics to restore",
        id="no-done-backup-warning-no-action",
    ),
    pytest.param(
        Case(state={"backups": (cb("b-1", "done", None, finished_at=t(1)), cb("b-2", "done", None, finished_at=t(2)))}),
        expect(
            "b-2",
            None,
            None,
            reason="declared restore not done yet: Cloud backup b-2 of service analytics into new service "
            "analytics-restored (us-east-1, production)",
        ),
        None,
        id="no-start-time-newest-by-finish-time",
    ),
    pytest.param(Case(state={"restores": {"copy": record()}}), None, None, id="already-restored-same-spec-nothing"),
    pytest.param(
        Case(restore=CHANGED, state={"restores": {"copy": record()}}),
        expect(
            spec=CHANGED,
            new_service={
                "name": "analytics-restored-2",
                "provider": "aws",
                "region": "us-east-1",
                "tier": "production",
                "extra": {},
            },
            reason="declaration changed since it was done on 2026-11-20 04:05Z from b-19: "
            + WHY_24.replace(NEW, "analytics-restored-2"),
        ),
        None,
        id="changed-spec-restored-again",
    ),
    pytest.param(
        Case(state={"org_services": {NEW: "svc-9"}}),
        expect(
            existing="svc-9",
            reason=WHY_24 + "; service analytics-restored exists already (svc-9): it is adopted, not created again",
        ),
        None,
        id="existing-service-of-that-name-adopted",
    ),
    pytest.param(
        Case(external_bucket=None, schedule_bucket="archive"),
        expect(bucket="archive", reason=WHY_24),
        None,
        id="recorded-in-the-first-schedule-bucket",
    ),
    pytest.param(
        Case(external_bucket=None),
        expect(bucket=None, reason=WHY_24),
        NO_RECORD_WARNING,
        id="no-bucket-restore-not-recorded-warning",
    ),
    pytest.param(
        Case(external_bucket=None, state={"org_services": {NEW: "svc-9"}}),
        None,
        "restore copy: service analytics-restored exists (svc-9); as service analytics has no external bucket and "
        "no schedule, the restore is not recorded, and the existing service counts as done",
        id="no-bucket-existing-service-counts-as-done",
    ),
    pytest.param(
        Case(restore=EXTRA, state={"facts": replace(FACTS, tier=None)}),
        expect(
            spec=EXTRA,
            new_service={
                "name": NEW,
                "provider": "aws",
                "region": "us-east-1",
                "tier": None,
                "extra": {"idleScaling": True},
            },
            reason=WHY_24.replace(", production", ""),
        ),
        None,
        id="same-region-any-case-extra-kept-no-tier",
    ),
    pytest.param(
        Case(restore=OTHER_REGION),
        None,
        "restore copy: to.new_service.region is eu-west-1 but the backup's service analytics is in us-east-1; "
        "ClickHouse Cloud restores a backup only into the same region and tier, so nothing is planned: remove "
        "to.new_service.region or set it to us-east-1",
        id="other-region-refused",
    ),
    pytest.param(
        Case(state={"facts": None}),
        None,
        "restore copy: ClickHouse Cloud reported nothing about service analytics",
        id="no-facts-reported",
    ),
    pytest.param(
        Case(state={"error": "HTTP 401 Unauthorized"}),
        None,
        "restore copy: the ClickHouse Cloud API of service analytics cannot be reached: HTTP 401 Unauthorized",
        id="api-unreachable",
    ),
    pytest.param(
        Case(state={"restore_errors": {"copy": "not JSON"}}),
        None,
        "restore copy: its record cannot be read (not JSON); nothing is planned",
        id="unreadable-record-nothing-planned",
    ),
    pytest.param(
        Case(api=False),
        None,
        "restore copy: service analytics has no cloud.api, so its Cloud backups cannot be read",
        id="source-without-cloud-api",
    ),
    pytest.param(
        Case(restore=INTO_SERVICE),
        None,
        "restore copy: a ClickHouse Cloud backup can only be restored into a new service",
        id="into-an-existing-config-service-refused",
    ),
]


@pytest.mark.parametrize(("case", "action", "warning"), CASES)
def test_cloud_restore(case: Case, action: dict[str, Any] | None, warning: str | None) -> None:
    got, got_warning = run(case)
    assert (got.to_json() if got else None) == action
    assert got_warning == warning
