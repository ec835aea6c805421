"""The sandbox's routes for ownership and Insights: applications, teams, groups, scores, PRs.

    GET /api/v2/applications                                  offset (limit default 10)
    GET /api/v2/teams                                         offset (limit default 20)
    GET /api/v2/engineering-insights/insights/groups          offset, limit 1–20 (beta)
    GET /api/v2/engineering-insights/insights/scores          one project+environment (beta)
    GET /api/v2/engineering-insights/pull-requests            cursor, limit ≤ 100 (beta)

A route family (`families.py`): the data is `insights.world(dataset)`, the truth
`insights.insights_truth(dataset)`. The Insights routes are beta like every
engineering-insights route; applications and teams are not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from etl.sandbox import insights, owners, scores
from etl.sandbox.data import Dataset
from etl.sandbox.errors import ApiError
from etl.sandbox.links import href, offset_links
from etl.sandbox.params import QueryReader
from etl.sandbox.records import JSON, link
from etl.sandbox.serving import DATASET, listing_count, respond

NAME = "teams"

APPLICATIONS_PATH = "/api/v2/applications"
TEAMS_PATH = "/api/v2/teams"
GROUPS_PATH = "/api/v2/engineering-insights/insights/groups"
SCORES_PATH = "/api/v2/engineering-insights/insights/scores"
PULL_REQUESTS_PATH = "/api/v2/engineering-insights/pull-requests"
_WEEK_MS = 7 * 86_400_000
_PR_STATUSES = frozenset({"open", "merged", "closed", "deployed"})


def register(app: web.Application) -> None:
    """Add the five routes to `app`."""
    routes = _Routes(DATASET, respond)
    app.router.add_get(APPLICATIONS_PATH, routes.applications)
    app.router.add_get(TEAMS_PATH, routes.teams)
    app.router.add_get(GROUPS_PATH, routes.groups)
    app.router.add_get(SCORES_PATH, routes.scores)
    app.router.add_get(PULL_REQUESTS_PATH, routes.pull_requests)


def truth(dataset: Dataset) -> insights.InsightsTruth:
    """What a complete sync of the ownership and Insights streams holds now."""
    return insights.insights_truth(dataset)


def counts(dataset: Dataset) -> dict[str, int]:
    """Totals per stream and pull requests per project, without rendering anything."""
    built = insights.world(dataset)
    found = {
        "applications": len(built.owner_of),
        "teams": len(owners.TEAMS),
        "insight_groups": len(built.groups),
        "insight_scopes": sum(map(len, dataset.environments.values())),
        "insight_pull_requests": sum(map(len, built.listed.values())),
    }
    for project, entries in built.listed.items():
        found[f"insight_pull_requests/{project}"] = len(entries)
    return found


Respond = Callable[[web.Request, JSON], web.Response]


def _page(request: web.Request, items: list[JSON], *, default: int, maximum: int | None) -> JSON:
    """An offset page with `_links` and `totalCount`."""
    reader = QueryReader(request.query)
    limit = reader.integer("limit", default, minimum=1, maximum=maximum)
    offset = reader.integer("offset", 0, minimum=0)
    reader.check()
    params = list(request.query.items())
    links = offset_links(request.path, params, offset=offset, limit=limit, total=len(items))
    total = listing_count(request, len(items))
    return {"_links": links, "items": items[offset : offset + limit], "totalCount": total}


class _Routes:
    def __init__(self, dataset: web.AppKey[Dataset], respond: Respond) -> None:
        self.dataset = dataset
        self.respond = respond

    async def applications(self, request: web.Request) -> web.Response:
        reader = QueryReader(request.query)
        filters = reader.filters(frozenset({"key", "name", "kind", "autoAdded"}))
        expand = reader.csv("expand")
        sort = request.query.get("sort", "")
        reader.check()
        reps = insights.applications(request.app[self.dataset], flags="flags" in expand)
        for name, value in filters:
            wanted = value.lower() if name == "autoAdded" else value
            reps = [
                rep
                for rep in reps
                if (str(rep[name]).lower() == wanted if name == "autoAdded" else value in rep[name])
            ]
        for field in reversed([part for part in sort.split(",") if part]):
            if field.lstrip("-") in ("name", "creationDate"):
                reps.sort(key=_field(field.lstrip("-")), reverse=field.startswith("-"))
        return self.respond(request, _page(request, reps, default=10, maximum=None))

    async def teams(self, request: web.Request) -> web.Response:
        reader = QueryReader(request.query)
        filters = reader.filters(frozenset({"query", "nomembers"}))
        expand = reader.csv("expand")
        reader.check()
        reps = insights.teams(request.app[self.dataset], members="members" in expand)
        for name, value in filters:
            if name == "query":
                needle = value.lower()
                reps = [r for r in reps if needle in r["key"] or needle in r["name"].lower()]
        return self.respond(request, _page(request, reps, default=20, maximum=None))

    async def groups(self, request: web.Request) -> web.Response:
        built = insights.world(request.app[self.dataset])
        reader = QueryReader(request.query)
        expand = reader.csv("expand")
        text = request.query.get("query", "").lower()
        sort = request.query.get("sort", "name")
        if sort.lstrip("-") != "name":
            reader.fail("sort", "must be name or -name")
        reader.check()
        chosen = [group for group in built.groups if text in group.name.lower()]
        chosen.sort(key=lambda group: (group.name, group.key), reverse=sort.startswith("-"))
        body = _page(request, [group.rep() for group in chosen], default=20, maximum=20)
        page_keys = {item["key"] for item in body["items"]}
        page = [group for group in chosen if group.key in page_keys]
        dataset = request.app[self.dataset]
        items = []
        for group in page:
            rep = insights.group_rep(built, group, with_scores="scores" in expand)
            if "environment" in expand:
                rep["environment"] = next(
                    env
                    for env in dataset.environments[group.project_key]
                    if env["key"] == group.environment_key
                )
            items.append(rep)
        body["items"] = items
        if "scores" in expand:
            period, last_period = scores.periods(built.anchor_ms)
            body["scoreMetadata"] = {"period": period, "lastPeriod": last_period}
        if "metadata" in expand:
            body["metadata"] = {"countByIndicator": _count_by_indicator(built, chosen)}
        return self.respond(request, body)

    async def scores(self, request: web.Request) -> web.Response:
        dataset = request.app[self.dataset]
        reader = QueryReader(request.query)
        project_key = reader.required("projectKey")
        environment_key = reader.required("environmentKey")
        applications = reader.csv("applicationKey")
        reader.check()
        if not dataset.has_environment(project_key, environment_key):
            raise ApiError.not_found()
        built = insights.world(dataset)
        period, last_period, values = insights.scope_scores(
            built, project_key, environment_key, applications
        )
        body = {
            "period": period,
            "lastPeriod": last_period,
            "scores": values,
            "_links": {"self": link(request.path_qs)},
        }
        return self.respond(request, body)

    async def pull_requests(self, request: web.Request) -> web.Response:
        dataset = request.app[self.dataset]
        reader = QueryReader(request.query)
        project_key = reader.required("projectKey")
        limit = reader.integer("limit", 20, minimum=1, maximum=100)
        now = int(time.time() * 1000)
        to_ms = _instant(reader, "to", now)
        from_ms = _instant(reader, "from", now - _WEEK_MS)
        statuses = reader.csv("status")
        if statuses - _PR_STATUSES:
            reader.fail("status", "must be open, merged, closed or deployed")
        expand = reader.csv("expand")
        built = insights.world(dataset)
        after = None
        token = request.query.get("after")
        if token is not None:
            after = built.by_id.get(token)
            if after is None:
                reader.fail("after", "unknown or malformed cursor")
        reader.check()
        if dataset.project(project_key) is None:
            raise ApiError.not_found()
        query = insights.PullRequestQuery(
            project_key=project_key,
            from_ms=from_ms,
            to_ms=to_ms,
            limit=limit,
            statuses=statuses,
            applications=reader.csv("applicationKey"),
            text=request.query.get("query", ""),
            after=after,
        )
        page, total, more = insights.query_pull_requests(built, query)
        links: JSON = {}
        if more and page:
            kept = [(k, v) for k, v in request.query.items() if k != "after"]
            links["next"] = link(href(request.path, [*kept, ("after", page[-1].pr.id)]))
        links["self"] = link(request.path_qs)
        body = {
            "totalCount": total,
            "items": [insights.pull_request_rep(entry, expand) for entry in page],
            "_links": links,
        }
        return self.respond(request, body)


def _field(name: str) -> Callable[[JSON], str | int]:
    def value(rep: JSON) -> str | int:
        found: str | int = rep[name]
        return found

    return value


def _instant(reader: QueryReader, name: str, default: int) -> int:
    """A time as Unix ms or an ISO 8601 date-time (the spec says date-time, the text says ms)."""
    raw = reader.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        reader.fail(name, "must be Unix milliseconds or an ISO 8601 date-time")
        return default
    if parsed.tzinfo is None:
        reader.fail(name, "must carry a time zone")
        return default
    return int(parsed.timestamp() * 1000)


def _count_by_indicator(built: insights.World, chosen: list[owners.Group]) -> JSON:
    """`InsightGroupsCountByIndicator` over the groups' overall scores."""
    counts = dict.fromkeys(
        ("excellent", "good", "fair", "needsAttention", "notCalculated", "unknown"), 0
    )
    for group in chosen:
        indicator = insights.group_scores(built, group)[2]["overall"]["indicator"]
        counts[indicator if indicator in counts else "unknown"] += 1
    return {**counts, "total": len(chosen)}
