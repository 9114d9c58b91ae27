"""``notify``: tell webhooks after ``apply``, ``drift`` and ``plan`` runs (docs/config.md).

Events: ``failure`` is an apply that exits 1 after the config was read (a failed or skipped
action, a held lock, an unreachable bucket, a stale plan); ``success`` an apply that exits 0;
``drift`` a ``drift`` or ``plan`` run that finds drift. Each webhook whose ``events`` name the
event gets one POST of JSON::

    {"text": "<one short line, Slack/Teams-compatible>", "event": "failure", "command": "apply",
     "run": <the run record written to the bucket, or null>, "drift": [<drift entries>]}

A webhook that cannot be reached or answers anything but 2xx is retried within ``POLICY``
(bounded attempts with backoff), then reported as a warning: a webhook never changes the
exit code. The URL is a secret (Slack's and Teams' carry their token): no message names it; a
webhook is named by its place in the config (``notify[0]``).

HTTP through urllib3, the client the ClickHouse Cloud API client already uses (it comes with
botocore): no new dependency for one POST.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from ..errors import TemporaryError
from ..model import ApplyResult, Config, Drift, OutcomeStatus, Plan
from ..redact import redact
from ..retry import RetryPolicy

#: at most 4 attempts, backing off 1, 2 and 4 s (+ jitter), and 30 s in all: a webhook is told
#: of a run a few seconds late rather than not at all, and a dead one delays the exit by ~40 s
#: at worst (each attempt is also bounded by TIMEOUT)
POLICY = RetryPolicy(attempts=4, total=30.0, initial=1.0, max_wait=4.0, jitter=0.5)
TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
#: how many drift entries and failed actions the short text names
SHOWN = 3
TEXT_LIMIT = 400

# urllib3 logs connection problems itself; the reconciler reports them as one warning
logging.getLogger("urllib3").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Event:
    kind: str  # failure | drift | success
    command: str  # apply | drift | plan
    text: str
    run: dict[str, Any] | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> bytes:
        doc = {"text": self.text, "event": self.kind, "command": self.command, "run": self.run, "drift": self.drift}
        return redact(json.dumps(doc, ensure_ascii=False)).encode()


def _config_name(config: Config) -> str:
    return Path(config.path).name


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def apply_event(config: Config, result: ApplyResult | None, plan: Plan | None, error: str | None = None) -> Event:
    """The event of an apply: ``error`` when it stopped before (or while) carrying out its plan."""
    where = _config_name(config)
    drift = [d.to_json() for d in plan.drift] if plan is not None else []
    if error is not None:
        return Event("failure", "apply", _clip(f"reconciler apply failed ({where}): {error}"), None, drift)
    if result is None:
        return Event("success", "apply", f"reconciler apply ({where}): nothing to do", None, drift)
    total = len(result.outcomes)
    run = dict(result.record) if result.record is not None else None
    if result.ok:
        kinds: dict[str, int] = {}
        if plan is not None:
            for a in plan.actions:
                kinds[a.type.value] = kinds.get(a.type.value, 0) + 1
        what = ", ".join(f"{n} {k}" for k, n in kinds.items())
        text = f"reconciler apply ({where}): {total} action{'s' if total != 1 else ''} done" + (
            f" ({what})" if what else ""
        )
        return Event("success", "apply", _clip(text), run, drift)
    bad = [o for o in result.outcomes if o.status not in (OutcomeStatus.DONE, OutcomeStatus.HELD)]
    named = "; ".join(f"{o.action_id} {o.status.value}: {o.detail}" for o in bad[:SHOWN])
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    text = f"reconciler apply failed ({where}): {len(bad)} of {total} actions not done ({named}{more})"
    return Event("failure", "apply", _clip(text), run, drift)


def drift_event(config: Config, plan: Plan, command: str) -> Event | None:
    """The event of a ``drift`` or ``plan`` run: None when it found no drift."""
    if not plan.drift:
        return None
    named = "; ".join(_drift_words(d) for d in plan.drift[:SHOWN])
    more = f" and {len(plan.drift) - SHOWN} more" if len(plan.drift) > SHOWN else ""
    n = len(plan.drift)
    text = f"reconciler {command} ({_config_name(config)}): {n} drift entr{'ies' if n != 1 else 'y'}: {named}{more}"
    return Event("drift", command, _clip(text), None, [d.to_json() for d in plan.drift])


def _drift_words(d: Drift) -> str:
    subject = d.schedule or d.service or d.bucket or ""
    return f"{d.type.value}" + (f" {subject}" if subject else "") + f": {d.detail}"


def send(
    config: Config,
    event: Event | None,
    pool: urllib3.PoolManager | None = None,
    policy: RetryPolicy | None = None,
) -> list[str]:
    """POST the event to every webhook that asked for it; returns the warnings (never raises)."""
    if event is None:
        return []
    hooks = [(i, h) for i, h in enumerate(config.notify) if event.kind in h.events]
    if not hooks:
        return []
    pool = pool or urllib3.PoolManager(num_pools=2, maxsize=2)
    body = event.payload()
    warnings = []
    for i, hook in hooks:
        problem = _post(pool, hook.url, body, policy or POLICY, f"notify[{i}]")
        if problem:
            warnings.append(
                redact(f"notify[{i}]: the {event.kind} webhook was not told: {problem}; the exit code is unchanged")
            )
    return warnings


def _post(pool: urllib3.PoolManager, url: str, body: bytes, policy: RetryPolicy, name: str) -> str | None:
    def attempt() -> None:
        try:
            r = pool.request(
                "POST",
                url,
                body=body,
                headers={"Content-Type": "application/json", "User-Agent": "clickhouse-backup-reconciler"},
                timeout=TIMEOUT,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError:
            raise TemporaryError("cannot connect") from None
        except urllib3.exceptions.TimeoutError:
            raise TemporaryError("timed out") from None
        except urllib3.exceptions.HTTPError as e:  # protocol errors; their text may quote the URL
            raise TemporaryError(e.__class__.__name__) from None
        except ValueError:  # a URL urllib3 cannot parse: retrying does not help
            raise _Permanent("the URL cannot be parsed") from None
        if not 200 <= r.status < 300:
            raise TemporaryError(f"answered HTTP {r.status}")

    try:
        policy.run(f"POST to {name}", attempt)
    except TemporaryError as e:
        return e.message
    except _Permanent as e:
        return str(e)
    return None


class _Permanent(Exception):
    pass
