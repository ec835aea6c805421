"""Deployments that exercise the metric definitions' edge cases (docs/metrics.md).

Random data shows them rarely or never, so every dataset gets them on purpose, in the first
project's last (production) environment, on two applications of their own so the random
history around them cannot blur them:

- `status-page`: a failure overlapped by a shorter success that ended before the failure did
  (it must not count as the recovery), a deployment without pull requests and a redeployment
  (neither has a lead time that counts), and a failed change at the end that nothing recovered.
- `legacy-reports`: an application that stopped deploying weeks ago (a silent one: zero weeks
  up to the data's end, zero deployments in a recent range).

A generator of its own (seeded from the dataset's seed) draws them after the rest, so the rest
of the data is the same with or without them. The two applications join the project's list
(what the applications listing serves); later `advance()` calls may deploy them like any other.
"""

from __future__ import annotations

import random

from etl.sandbox.generate import DAY, HOUR, MINUTE, _new_pull_request, deploy
from etl.sandbox.records import hex_id
from etl.sandbox.store import Store, Version

# Every scale but tiny: its ~80 deployments would be an eighth edge cases.
SCALES = ("small", "medium", "large")
BUSY_APP = "status-page"
SILENT_APP = "legacy-reports"


def add_edge_cases(seed: int, store: Store, project_key: str) -> None:
    """Add the edge cases to `project_key`; times count back from the store's anchor."""
    rng = random.Random(f"edge-cases-{seed}")
    store.applications[project_key] += (BUSY_APP, SILENT_APP)
    now = store.now_ms
    last = len(store.environments[project_key]) - 1
    day = now - now % DAY  # today 00:00 UTC: the cases fall at fixed hours of past days

    def version(app: str, at: int, prs: int) -> Version:
        ids = tuple(
            _new_pull_request(rng, store, project_key, app, at, merged=True) for _ in range(prs)
        )
        return Version(project_key, app, hex_id(rng, 7), at, ids, (), None)

    def ship(target: Version, env: int, at: int, minutes: int, kind: str = "deployment",
             outcome: str = "finished") -> None:  # fmt: skip
        record = deploy(rng, store, target, env, at, kind, outcome=outcome,
                        duration=minutes * MINUTE)  # fmt: skip
        store.deployments[record.id] = record._replace(archived=False)

    silent = version(SILENT_APP, day - 70 * DAY, 2)
    for env in range(last + 1):
        ship(silent, env, day - 70 * DAY + 10 * HOUR + env * 2 * HOUR, 12)
    ship(version(SILENT_APP, day - 63 * DAY, 1), last, day - 63 * DAY + 11 * HOUR, 9)

    stable = version(BUSY_APP, day - 20 * DAY, 1)
    ship(stable, last, day - 20 * DAY + 9 * HOUR, 10)
    # 10:00–10:30 failed; a redeployment of the stable version ran 10:10–10:20 and ended before
    # the failure did; the fix ran 11:00–11:10 (recovery 1 h 10 min).
    broken = version(BUSY_APP, day - 12 * DAY, 1)
    ship(broken, last, day - 12 * DAY + 10 * HOUR, 30, outcome="failed")
    ship(stable, last, day - 12 * DAY + 10 * HOUR + 10 * MINUTE, 10, kind="redeployment")
    ship(version(BUSY_APP, day - 12 * DAY, 2), last, day - 12 * DAY + 11 * HOUR, 10)
    config_only = version(BUSY_APP, day - 6 * DAY, 0)  # no pull request: a config rebuild
    ship(config_only, last, day - 6 * DAY + 9 * HOUR, 8)
    ship(config_only, last, day - 5 * DAY + 9 * HOUR, 8, kind="redeployment")
    # A failed change near the end that nothing has recovered.
    ship(version(BUSY_APP, now - 5 * HOUR, 2), last, now - 4 * HOUR, 12, outcome="failed")
