"""Table-driven tests of the pure planner for ``configure`` actions and ``config_drift``
(reconciler/plan/configure.py): a Cloud service's settings and external backup bucket, as the
API reports them, against the declared ``managed_backups``. Config and Observed built by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from reconciler.errors import ReconcilerError
from reconciler.model import (
    BackupBucketInfo,
    BackupSettings,
    Bucket,
    CloudApi,
    CloudFacts,
    CloudProvider,
    CloudState,
    Config,
    ConfigureAction,
    Credentials,
    ManagedBackups,
    Observed,
    Provider,
    Service,
    ServiceFacts,
)
from reconciler.model.targets import Selection
from reconciler.plan.configure import decide_configure

SVC = "analytics"
ROLE = "arn:aws:iam::123456789012:role/ch-backups"
OTHER_ROLE = "arn:aws:iam::123456789012:role/someone-else"
HMAC_KEY = "GOOG1EXAMPLEHMACKEY"
HMAC_SECRET = "hmac-secret-value"
AZ_CONN = "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net"
S3_PATH = "https://acme-ch-backups.s3.amazonaws.com/clickhouse/analytics/_cloud"
GCS_PATH = "https://storage.googleapis.com/acme-ch-gcs/clickhouse/analytics/_cloud"
API = CloudApi("org-1", "svc-1", "key-id-value", "key-secret-value")

S3 = Bucket("primary", Provider.S3, "acme-ch-backups", prefix="clickhouse", credentials=Credentials(role_arn=ROLE))
S3_NO_ROLE = replace(S3, credentials=Credentials(access_key_id="AKIAEXAMPLE", secret_access_key="s3-secret"))
GCS = Bucket(
    "primary",
    Provider.GCS,
    "acme-ch-gcs",
    prefix="clickhouse",
    credentials=Credentials(hmac_key=HMAC_KEY, hmac_secret=HMAC_SECRET),
)
AZ = Bucket("primary", Provider.AZURE, "ch-backups", credentials=Credentials(connection_string=AZ_CONN))
AZ_KEYS = replace(AZ, credentials=Credentials(account_name="acme", account_key="c2VjcmV0"))
AZ_NONE = replace(AZ, credentials=Credentials())

FACTS = ServiceFacts("svc-1", SVC, "aws", "us-east-1", False, None, "production", "running")
SETTINGS = BackupSettings(24, 48, "03:00")
S3_INFO = BackupBucketInfo("AWS", path=S3_PATH, role_arn=ROLE, id="bb-1")

MB_ALL = ManagedBackups(period_hours=24, retention_hours=48, start_time="03:00")
MB_S3 = ManagedBackups(external_bucket="primary")


@dataclass(frozen=True)
class Case:
    mb: ManagedBackups | None = MB_ALL
    bucket: Bucket | None = None  # the config's bucket "primary"
    provider: CloudProvider = CloudProvider.AWS
    region: str = "us-east-1"
    tde: bool = False
    compliance: str | None = None
    api: bool = True
    state: CloudState | None = field(
        default_factory=lambda: CloudState(SVC, "svc-1", facts=FACTS, settings=SETTINGS)
    )  # None: nothing observed
    selected: bool = True


def run(case: Case) -> tuple[list[Any], list[Any], list[str]]:
    cloud = CloudFacts(
        case.provider,
        case.region,
        tde=case.tde,
        compliance=case.compliance,
        api=API if case.api else None,
        managed_backups=case.mb,
    )
    config = Config(
        path="c.yaml",
        services={SVC: Service(SVC, "https://default:pw@svc.example.com:8443", cloud)},
        buckets={"primary": case.bucket} if case.bucket else {},
        schedules={},
        restores={},
        digest="sha256:" + "0" * 64,
    )
    observed = Observed(
        buckets={},
        services={},
        schedules={},
        restores={},
        digest="sha256:" + "1" * 64,
        cloud={SVC: case.state} if case.state else {},
    )
    services = frozenset({SVC} if case.selected else set())
    sel = Selection(services, frozenset(), frozenset(), frozenset(), frozenset())
    return decide_configure(config, observed, sel)


def state(**kw: Any) -> CloudState:
    base: dict[str, Any] = {"facts": FACTS, "settings": SETTINGS}
    base.update(kw)
    return CloudState(SVC, "svc-1", **base)


def act(a: Any) -> dict[str, Any]:
    """The action as the plan JSON has it."""
    assert isinstance(a, ConfigureAction)
    return a.to_json()


def drift(ds: list[Any]) -> list[tuple[str, str | None, str]]:
    return [(d.type.value, d.bucket, d.detail) for d in ds]


def change(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


def patch_config(before: Mapping[str, Any], after: Mapping[str, Any], changes: dict, reason: str) -> dict:
    return {
        "id": "configure/analytics/backupConfiguration",
        "type": "configure",
        "service": SVC,
        "setting": "backupConfiguration",
        "method": "PATCH",
        "before": dict(before),
        "after": dict(after),
        "changes": changes,
        "reason": reason,
        "depends_on": [],
    }


def bucket_action(method: str, before: Any, after: Any, changes: dict, reason: str) -> dict:
    return {
        "id": "configure/analytics/backupBucket",
        "type": "configure",
        "service": SVC,
        "bucket": "primary",
        "setting": "backupBucket",
        "method": method,
        "before": before,
        "after": after,
        "changes": changes,
        "reason": reason,
        "depends_on": [],
    }


PERIOD, RETENTION, START = "backupPeriodInHours", "backupRetentionPeriodInHours", "backupStartTime"
S3_SHOWN = {"bucketProvider": "AWS", "bucketPath": S3_PATH, "iamRoleArn": "[HIDDEN]"}
NOT_MANAGED_DRIFT = (
    "config_drift",
    None,
    "backupBucket is set (AWS " + S3_PATH + ") but managed_backups declares no external_bucket; the reconciler "
    "never removes it on its own: declare it as managed_backups.external_bucket, or remove it in the ClickHouse "
    "Cloud console",
)

# --------------------------------------------------------------------------------------------
# backupConfiguration, and when nothing is looked at
# --------------------------------------------------------------------------------------------

SETTINGS_CASES = [
    pytest.param(Case(), [], [], id="settings-equal-nothing"),
    pytest.param(
        Case(state=state(settings=BackupSettings.from_api({PERIOD: 24.0, RETENTION: "48", START: "3:00:00"}))),
        [],
        [],
        id="api-spellings-24.0-and-3:00:00-are-equal",
    ),
    pytest.param(
        Case(mb=replace(MB_ALL, retention_hours=72)),
        [
            patch_config(
                {PERIOD: 24, RETENTION: 48, START: "03:00"},
                {PERIOD: 24, RETENTION: 72, START: "03:00"},
                {RETENTION: change(48, 72)},
                "the backup configuration differs from managed_backups: backupRetentionPeriodInHours 48 → 72",
            )
        ],
        [
            (
                "config_drift",
                None,
                "backupConfiguration.backupRetentionPeriodInHours is 48 in ClickHouse Cloud; managed_backups wants 72",
            )
        ],
        id="one-field-differs-one-patch-naming-only-it",
    ),
    pytest.param(
        Case(mb=ManagedBackups(retention_hours=48), state=state(settings=BackupSettings(6, 48, "22:30"))),
        [],
        [],
        id="undeclared-fields-not-managed",
    ),
    pytest.param(
        Case(mb=ManagedBackups(start_time="04:00"), state=state(settings=BackupSettings(6, 12, "22:30"))),
        [
            patch_config(
                {START: "22:30"},
                {START: "04:00"},
                {START: change("22:30", "04:00")},
                "the backup configuration differs from managed_backups: backupStartTime 22:30 → 04:00",
            )
        ],
        [
            (
                "config_drift",
                None,
                "backupConfiguration.backupStartTime is 22:30 in ClickHouse Cloud; managed_backups wants 04:00",
            )
        ],
        id="patch-body-holds-only-declared-fields",
    ),
    pytest.param(
        Case(mb=replace(MB_ALL, period_hours=12, start_time="01:15")),
        [
            patch_config(
                {PERIOD: 24, RETENTION: 48, START: "03:00"},
                {PERIOD: 12, RETENTION: 48, START: "01:15"},
                {PERIOD: change(24, 12), START: change("03:00", "01:15")},
                "the backup configuration differs from managed_backups: backupPeriodInHours 24 → 12, "
                "backupStartTime 03:00 → 01:15",
            )
        ],
        [
            (
                "config_drift",
                None,
                "backupConfiguration.backupPeriodInHours is 24 in ClickHouse Cloud; managed_backups wants 12",
            ),
            (
                "config_drift",
                None,
                "backupConfiguration.backupStartTime is 03:00 in ClickHouse Cloud; managed_backups wants 01:15",
            ),
        ],
        id="two-fields-differ-one-patch-two-drifts",
    ),
    pytest.param(
        Case(mb=ManagedBackups(period_hours=24), state=state(settings=None)),
        [
            patch_config(
                {PERIOD: None},
                {PERIOD: 24},
                {PERIOD: change(None, 24)},
                "the backup configuration differs from managed_backups: backupPeriodInHours not set → 24",
            )
        ],
        [
            (
                "config_drift",
                None,
                "backupConfiguration.backupPeriodInHours is not set in ClickHouse Cloud; managed_backups wants 24",
            )
        ],
        id="settings-not-reported-all-declared-patched",
    ),
    pytest.param(
        Case(mb=None, state=state(settings=BackupSettings(1, 1, "00:00"))), [], [], id="no-managed-backups-nothing"
    ),
    pytest.param(Case(mb=ManagedBackups()), [], [], id="empty-managed-backups-nothing"),
    pytest.param(Case(mb=replace(MB_ALL, retention_hours=72), api=False), [], [], id="no-cloud-api-not-looked-at"),
    pytest.param(Case(mb=replace(MB_ALL, retention_hours=72), state=None), [], [], id="no-cloud-state-observed"),
    pytest.param(Case(mb=replace(MB_ALL, retention_hours=72), selected=False), [], [], id="service-not-targeted"),
    pytest.param(
        Case(state=state(error="GET /v1/organizations/org-1/services/svc-1: HTTP 503")),
        [],
        [("unreachable_service", None, "ClickHouse Cloud API: GET /v1/organizations/org-1/services/svc-1: HTTP 503")],
        id="api-unreachable-unreachable-service",
    ),
    pytest.param(
        Case(mb=replace(MB_ALL, retention_hours=72), state=state(facts=None)),
        [
            patch_config(
                {PERIOD: 24, RETENTION: 48, START: "03:00"},
                {PERIOD: 24, RETENTION: 72, START: "03:00"},
                {RETENTION: change(48, 72)},
                "the backup configuration differs from managed_backups: backupRetentionPeriodInHours 48 → 72",
            )
        ],
        [
            (
                "config_drift",
                None,
                "backupConfiguration.backupRetentionPeriodInHours is 48 in ClickHouse Cloud; managed_backups wants 72",
            )
        ],
        id="facts-not-reported-settings-still-compared",
    ),
    pytest.param(
        Case(region="US-EAST-1", state=state(facts=replace(FACTS, provider=None))),
        [],
        [],
        id="facts-compared-case-insensitively-unreported-provider-ok",
    ),
]


@pytest.mark.parametrize(("case", "actions", "drifts"), SETTINGS_CASES)
def test_backup_configuration(case: Case, actions: list[dict], drifts: list[tuple]) -> None:
    got_actions, got_drift, warnings = run(case)
    assert [act(a) for a in got_actions] == actions
    assert drift(got_drift) == drifts
    assert warnings == []


# --------------------------------------------------------------------------------------------
# backupBucket
# --------------------------------------------------------------------------------------------

GCS_INFO = BackupBucketInfo("GCP", path=GCS_PATH, access_key_id=HMAC_KEY)
GCS_FACTS = replace(FACTS, provider="gcp", region="us-central1")
AZ_FACTS = replace(FACTS, provider="azure", region="eastus2")
GCS_SHOWN = {"bucketProvider": "GCP", "bucketPath": GCS_PATH, "accessKeyId": "[HIDDEN]", "secretAccessKey": "(set)"}
AZ_SHOWN = {"bucketProvider": "AZURE", "containerName": "ch-backups", "connectionString": "(set)"}

BUCKET_CASES = [
    pytest.param(
        Case(mb=MB_S3, bucket=S3, state=state(bucket=S3_INFO)),
        [],
        [],
        [],
        id="s3-bucket-equal-nothing",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3),
        [
            bucket_action(
                "POST",
                None,
                S3_SHOWN,
                {},  # a POST: every field is new ("all fields")
                "the service has no external backup bucket; set bucket primary (AWS " + S3_PATH + ")",
            )
        ],
        [("config_drift", "primary", "backupBucket is not set; managed_backups wants bucket primary")],
        [],
        id="no-bucket-on-service-post",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3, state=state(bucket=replace(S3_INFO, path=S3_PATH.replace("clickhouse/", "old/")))),
        [
            bucket_action(
                "PATCH",
                {
                    "bucketProvider": "AWS",
                    "bucketPath": S3_PATH.replace("clickhouse/", "old/"),
                    "iamRoleArn": "[HIDDEN]",
                },
                S3_SHOWN,
                {"bucketPath": change(S3_PATH.replace("clickhouse/", "old/"), S3_PATH)},
                "the external backup bucket differs from bucket primary: bucketPath "
                + S3_PATH.replace("clickhouse/", "old/")
                + " → "
                + S3_PATH,
            )
        ],
        [
            (
                "config_drift",
                "primary",
                f"backupBucket.bucketPath is {S3_PATH.replace('clickhouse/', 'old/')} in ClickHouse Cloud; "
                f"bucket primary wants {S3_PATH}",
            )
        ],
        [],
        id="non-secret-bucket-path-differs-patch",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3, state=state(bucket=replace(S3_INFO, role_arn=OTHER_ROLE, role_session_name="ch"))),
        [
            bucket_action(
                "PATCH",
                {"bucketProvider": "AWS", "bucketPath": S3_PATH, "iamRoleArn": "[HIDDEN]", "iamRoleSessionName": "ch"},
                S3_SHOWN,
                {"iamRoleArn": change("[HIDDEN]", "[HIDDEN]")},
                "the external backup bucket differs from bucket primary: iamRoleArn differs (value hidden)",
            )
        ],
        [
            (
                "config_drift",
                "primary",
                "backupBucket.iamRoleArn is [HIDDEN] in ClickHouse Cloud; bucket primary wants [HIDDEN]",
            )
        ],
        [],
        id="role-arn-differs-patch-shows-hidden",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3, state=state(bucket=GCS_INFO)),
        [
            bucket_action(
                "PATCH",
                {"bucketProvider": "GCP", "bucketPath": GCS_PATH, "accessKeyId": "[HIDDEN]"},
                S3_SHOWN,
                {
                    "accessKeyId": change("[HIDDEN]", None),
                    "bucketPath": change(GCS_PATH, S3_PATH),
                    "bucketProvider": change("GCP", "AWS"),
                    "iamRoleArn": change(None, "[HIDDEN]"),
                },
                "the external backup bucket differs from bucket primary: accessKeyId differs (value hidden), "
                f"bucketPath {GCS_PATH} → {S3_PATH}, bucketProvider GCP → AWS, iamRoleArn differs (value hidden)",
            )
        ],
        [
            (
                "config_drift",
                "primary",
                "backupBucket.accessKeyId is [HIDDEN] in ClickHouse Cloud; bucket primary wants not set",
            ),
            (
                "config_drift",
                "primary",
                f"backupBucket.bucketPath is {GCS_PATH} in ClickHouse Cloud; bucket primary wants {S3_PATH}",
            ),
            (
                "config_drift",
                "primary",
                "backupBucket.bucketProvider is GCP in ClickHouse Cloud; bucket primary wants AWS",
            ),
            (
                "config_drift",
                "primary",
                "backupBucket.iamRoleArn is not set in ClickHouse Cloud; bucket primary wants [HIDDEN]",
            ),
        ],
        [],
        id="other-provider-bucket-on-service-patch-every-field",
    ),
    pytest.param(
        Case(mb=ManagedBackups(), bucket=S3, state=state(bucket=S3_INFO)),
        [],
        [NOT_MANAGED_DRIFT],
        [],
        id="bucket-set-none-declared-drift-only-no-delete",
    ),
    pytest.param(
        Case(mb=ManagedBackups(), state=state(bucket=None)),
        [],
        [],
        [],
        id="no-bucket-set-none-declared-nothing",
    ),
    pytest.param(
        Case(mb=replace(MB_ALL, retention_hours=72, external_bucket=None), bucket=S3, state=state(bucket=S3_INFO)),
        [
            patch_config(
                {PERIOD: 24, RETENTION: 48, START: "03:00"},
                {PERIOD: 24, RETENTION: 72, START: "03:00"},
                {RETENTION: change(48, 72)},
                "the backup configuration differs from managed_backups: backupRetentionPeriodInHours 48 → 72",
            )
        ],
        [
            (
                "config_drift",
                None,
                "backupConfiguration.backupRetentionPeriodInHours is 48 in ClickHouse Cloud; managed_backups wants 72",
            ),
            NOT_MANAGED_DRIFT,
        ],
        [],
        id="settings-patched-but-undeclared-bucket-kept",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3_NO_ROLE),
        [],
        [
            (
                "config_drift",
                "primary",
                "backupBucket is not bucket primary, and it cannot be configured (bucket primary needs "
                "credentials.role_arn (the Cloud API sets an AWS backup bucket only with an IAM role))",
            )
        ],
        [
            "service analytics: bucket primary cannot be set as its external backup bucket: it needs "
            "credentials.role_arn (the Cloud API sets an AWS backup bucket only with an IAM role)"
        ],
        id="s3-bucket-without-role-arn-drift-and-warning",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=replace(S3, region="eu-west-1"), state=state(bucket=S3_INFO)),
        [],
        [],
        [
            "service analytics: ClickHouse Cloud's exports to eu-west-1 from us-east-1 incur data transfer charges "
            "(external_bucket primary)"
        ],
        id="bucket-in-other-region-warns-even-when-equal",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=replace(S3, region="US-EAST-1"), state=state(bucket=S3_INFO)),
        [],
        [],
        [],
        id="bucket-region-same-ignoring-case-no-warning",
    ),
    pytest.param(
        Case(
            mb=MB_S3,
            bucket=replace(S3, endpoint="https://s3.eu-central-1.amazonaws.com/"),
            state=state(
                bucket=replace(
                    S3_INFO, path="https://s3.eu-central-1.amazonaws.com/acme-ch-backups/clickhouse/analytics/_cloud"
                )
            ),
        ),
        [],
        [],
        [],
        id="s3-endpoint-path-style-equal",
    ),
    pytest.param(
        Case(
            mb=MB_S3,
            bucket=GCS,
            provider=CloudProvider.GCP,
            region="us-central1",
            state=state(facts=GCS_FACTS, bucket=GCS_INFO),
        ),
        [],
        [],
        [],
        id="gcs-equal-secret-not-compared",
    ),
    pytest.param(
        Case(
            mb=MB_S3,
            bucket=GCS,
            provider=CloudProvider.GCP,
            region="us-central1",
            state=state(facts=GCS_FACTS, bucket=replace(GCS_INFO, access_key_id="GOOG1OLDKEY")),
        ),
        [
            bucket_action(
                "PATCH",
                {"bucketProvider": "GCP", "bucketPath": GCS_PATH, "accessKeyId": "[HIDDEN]"},
                GCS_SHOWN,
                {"accessKeyId": change("[HIDDEN]", "[HIDDEN]")},
                "the external backup bucket differs from bucket primary: accessKeyId differs (value hidden)",
            )
        ],
        [
            (
                "config_drift",
                "primary",
                "backupBucket.accessKeyId is [HIDDEN] in ClickHouse Cloud; bucket primary wants [HIDDEN]",
            )
        ],
        [],
        id="gcs-hmac-key-differs-patch-secret-as-set",
    ),
    pytest.param(
        Case(
            mb=MB_S3,
            bucket=replace(GCS, credentials=Credentials(hmac_key=HMAC_KEY)),
            provider=CloudProvider.GCP,
            region="us-central1",
            state=state(facts=GCS_FACTS),
        ),
        [],
        [
            (
                "config_drift",
                "primary",
                "backupBucket is not bucket primary, and it cannot be configured (bucket primary needs "
                "credentials.hmac_key and hmac_secret)",
            )
        ],
        [
            "service analytics: bucket primary cannot be set as its external backup bucket: it needs "
            "credentials.hmac_key and hmac_secret"
        ],
        id="gcs-without-hmac-secret-drift-and-warning",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=AZ_KEYS, provider=CloudProvider.AZURE, region="eastus2", state=state(facts=AZ_FACTS)),
        [
            bucket_action(
                "POST",
                None,
                AZ_SHOWN,
                {},
                "the service has no external backup bucket; set bucket primary (AZURE ch-backups)",
            )
        ],
        [("config_drift", "primary", "backupBucket is not set; managed_backups wants bucket primary")],
        [],
        id="azure-post-connection-string-from-account-key",
    ),
    pytest.param(
        Case(
            mb=MB_S3,
            bucket=AZ,
            provider=CloudProvider.AZURE,
            region="eastus2",
            state=state(facts=AZ_FACTS, bucket=BackupBucketInfo("AZURE", container="old-backups")),
        ),
        [
            bucket_action(
                "PATCH",
                {"bucketProvider": "AZURE", "containerName": "old-backups"},
                AZ_SHOWN,
                {"containerName": change("old-backups", "ch-backups")},
                "the external backup bucket differs from bucket primary: containerName old-backups → ch-backups",
            )
        ],
        [
            (
                "config_drift",
                "primary",
                "backupBucket.containerName is old-backups in ClickHouse Cloud; bucket primary wants ch-backups",
            )
        ],
        [],
        id="azure-container-differs-patch",
    ),
    pytest.param(
        Case(
            mb=MB_S3,
            bucket=AZ_NONE,
            provider=CloudProvider.AZURE,
            region="eastus2",
            state=state(facts=AZ_FACTS, bucket=BackupBucketInfo("AZURE", container="ch-backups")),
        ),
        [],
        [],
        [],
        id="azure-equal-even-without-credentials",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=AZ_NONE, provider=CloudProvider.AZURE, region="eastus2", state=state(facts=AZ_FACTS)),
        [],
        [
            (
                "config_drift",
                "primary",
                "backupBucket is not bucket primary, and it cannot be configured (bucket primary needs "
                "credentials.connection_string (or account_name and account_key))",
            )
        ],
        [
            "service analytics: bucket primary cannot be set as its external backup bucket: it needs "
            "credentials.connection_string (or account_name and account_key)"
        ],
        id="azure-without-credentials-drift-and-warning",
    ),
]


@pytest.mark.parametrize(("case", "actions", "drifts", "warnings"), BUCKET_CASES)
def test_backup_bucket(case: Case, actions: list[dict], drifts: list[tuple], warnings: list[str]) -> None:
    got_actions, got_drift, got_warnings = run(case)
    assert [act(a) for a in got_actions] == actions
    assert drift(got_drift) == drifts
    assert got_warnings == warnings
    assert all(a.method in ("POST", "PATCH") for a in got_actions)  # never a DELETE
    text = repr([act(a) for a in got_actions]) + repr(drift(got_drift)) + repr(got_warnings)
    for secret in (ROLE, OTHER_ROLE, HMAC_KEY, HMAC_SECRET, AZ_CONN, "c2VjcmV0", "GOOG1OLDKEY", "s3-secret"):
        assert secret not in text


# --------------------------------------------------------------------------------------------
# errors: the whole plan stops
# --------------------------------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(
        Case(state=state(facts=replace(FACTS, region="eu-west-1"))),
        "service analytics: the config says region us-east-1 but ClickHouse Cloud reports eu-west-1 (fix cloud.region)",
        id="declared-region-contradicted",
    ),
    pytest.param(
        Case(state=state(facts=replace(FACTS, provider="gcp", region="us-central1"))),
        "service analytics: the config says provider aws but ClickHouse Cloud reports gcp (fix cloud.provider); "
        "the config says region us-east-1 but ClickHouse Cloud reports us-central1 (fix cloud.region)",
        id="declared-provider-and-region-contradicted-one-error",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3, state=state(facts=replace(FACTS, tde=True))),
        "service analytics: the config says tde false but ClickHouse Cloud reports true (fix cloud.tde); with the "
        "reported facts the service has Transparent Data Encryption, which ClickHouse Cloud does not allow to be "
        "backed up or restored (managed_backups.external_bucket)",
        id="reported-tde-contradicts-and-forbids-external-bucket",
    ),
    pytest.param(
        Case(state=state(facts=replace(FACTS, compliance="hipaa"))),
        "service analytics: the config says compliance none but ClickHouse Cloud reports hipaa (fix cloud.compliance)",
        id="reported-compliance-contradicted-nothing-uses-it",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=GCS),
        "external_bucket primary is in gcp but service analytics runs in aws: ClickHouse Cloud's external backup "
        "bucket must be in the service's cloud; use a bucket there",
        id="external-bucket-in-another-cloud",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3, tde=True, state=state(facts=replace(FACTS, tde=True))),
        "service analytics has Transparent Data Encryption: ClickHouse Cloud exports none of its backups to an "
        "external bucket; remove managed_backups.external_bucket",
        id="tde-service-cannot-have-external-bucket",
    ),
    pytest.param(
        Case(mb=MB_S3, bucket=S3, compliance="pci", state=state(facts=None)),
        "service analytics is a regulated (pci) service: ClickHouse Cloud exports none of its backups to an "
        "external bucket; remove managed_backups.external_bucket",
        id="declared-facts-used-when-none-reported",
    ),
]


@pytest.mark.parametrize(("case", "message"), ERROR_CASES)
def test_errors_stop_the_plan(case: Case, message: str) -> None:
    with pytest.raises(ReconcilerError) as err:
        run(case)
    assert err.value.message == message
    assert err.value.where == "c.yaml"
