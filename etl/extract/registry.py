"""What each stream family reads for a project, and the routes `etl doctor` checks for it.

A family's `Extract` names its streams, a `start` that opens its chains for one project
inside that project's task group (after its environments are known), and `probes`: one cheap
request per route the family reads, for the doctor. `StreamReader` starts every declaration
whose streams are selected; adding a family is one line in `EXTRACTS`. Discovery (projects,
environments) is not here: it always runs, because every family needs its keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from etl.config import Stream
from etl.extract import flags, teams
from etl.extract.family import Extract, Probe
from etl.extract.streams import (
    DEPLOYMENTS,
    PIPELINES,
    POLICIES,
    StreamReader,
)


def _core_probes(
    project: str, environments: Sequence[str], streams: frozenset[Stream], now: datetime
) -> list[Probe]:
    probes: list[Probe] = []
    if Stream.DEPLOYMENTS in streams and environments:
        day_ago = int((now - timedelta(days=1)).timestamp() * 1000)
        params = {"projectKey": project, "environmentKey": environments[0], "limit": "1",
                  "from": str(day_ago)}  # fmt: skip
        probes.append(Probe("deployments", DEPLOYMENTS, DEPLOYMENTS, Stream.DEPLOYMENTS, params))
    if streams & {Stream.RELEASE_PIPELINES, Stream.RELEASE_PROGRESSIONS}:
        path = PIPELINES.format(projectKey=project)
        probes.append(
            Probe("release pipelines", path, PIPELINES, Stream.RELEASE_PIPELINES, {"limit": "1"})
        )
    if Stream.RELEASE_POLICIES in streams:
        path = POLICIES.format(projectKey=project)
        probes.append(Probe("release policies", path, POLICIES, Stream.RELEASE_POLICIES))
    return probes


CORE = Extract(
    frozenset(
        {
            Stream.DEPLOYMENTS,
            Stream.RELEASE_PIPELINES,
            Stream.RELEASE_PROGRESSIONS,
            Stream.RELEASE_POLICIES,
        }
    ),
    StreamReader.start_core,
    _core_probes,
)

EXTRACTS: tuple[Extract, ...] = (CORE, flags.EXTRACT, teams.EXTRACT)
