"""The sandbox HTTP app: LaunchDarkly's REST routes over a `Dataset`, plus admin routes.

Request flow (outermost first): request log → rate limit (API routes) → auth and beta header
→ latency and faults (API routes) → error mapping → handler. See `faults` for the rate-limit
and fault semantics and /work/shared/ld-api.md for the contract each route follows.

Routes:
    GET  /api/v2/projects                                             offset paging
    GET  /api/v2/projects/{projectKey}/environments                   offset paging
    GET  /api/v2/engineering-insights/deployments                     cursor paging (beta)
    GET  /api/v2/engineering-insights/deployments/{deploymentID}      one deployment (beta)
    GET  /api/v2/projects/{projectKey}/release-pipelines              offset, no _links (beta)
    GET  /api/v2/projects/{projectKey}/release-pipelines/{pipelineKey}/releases      (beta)
    GET  /api/v2/projects/{projectKey}/release-policies               no paging (beta)
    POST /_sandbox/advance[?now_ms=]        Dataset.advance(); returns its counts
    GET  /_sandbox/truth/counts             Dataset.counts()
    GET  /_sandbox/requests/summary         request totals by status and fault
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import replace

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from etl.sandbox.config import SandboxConfig
from etl.sandbox.data import Dataset, DeploymentQuery
from etl.sandbox.errors import (
    FORBIDDEN_BETA,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    UNAUTHORIZED,
    ApiError,
    error_response,
    json_response,
)
from etl.sandbox.families import FAMILIES
from etl.sandbox.faults import fault_middleware, rate_limit_middleware
from etl.sandbox.links import href
from etl.sandbox.params import QueryReader, insights_page
from etl.sandbox.records import JSON, Deployment, link
from etl.sandbox.requestlog import REQUEST_LOG, log_requests, summarize
from etl.sandbox.serving import (
    BETA_PREFIX,
    CONFIG,
    DATASET,
    RESPONSE_HOOK,
    listing_count,
    offset_page,
    respond,
)

DEPLOYMENTS_PATH = "/api/v2/engineering-insights/deployments"
_BETA_ROUTES = frozenset(
    {
        DEPLOYMENTS_PATH,
        DEPLOYMENTS_PATH + "/{deploymentID}",
        "/api/v2/projects/{projectKey}/release-pipelines",
        "/api/v2/projects/{projectKey}/release-pipelines/{pipelineKey}/releases",
        "/api/v2/projects/{projectKey}/release-policies",
    }
)


def make_app(dataset: Dataset, config: SandboxConfig | None = None) -> web.Application:
    """Build the sandbox app serving `dataset` with the behaviour `config` asks for.

    The app holds the dataset (`app[DATASET]`), the request log (`app[REQUEST_LOG]`) and an
    optional response hook (`app[RESPONSE_HOOK]`, set it before the server starts).
    """
    config = config or SandboxConfig()
    app = web.Application(
        middlewares=[
            log_requests,
            rate_limit_middleware(config),
            _auth,
            fault_middleware(config),
            _errors,
        ]
    )
    app[DATASET] = dataset
    app[CONFIG] = config
    app[REQUEST_LOG] = []
    app[RESPONSE_HOOK] = None
    app.router.add_get("/", _index)
    app.router.add_get("/api/v2/projects", _projects)
    app.router.add_get("/api/v2/projects/{projectKey}/environments", _environments)
    app.router.add_get(DEPLOYMENTS_PATH, _deployments)
    app.router.add_get(DEPLOYMENTS_PATH + "/{deploymentID}", _deployment)
    app.router.add_get("/api/v2/projects/{projectKey}/release-pipelines", _pipelines)
    app.router.add_get(
        "/api/v2/projects/{projectKey}/release-pipelines/{pipelineKey}/releases", _progressions
    )
    app.router.add_get("/api/v2/projects/{projectKey}/release-policies", _policies)
    for family in FAMILIES:  # route families in their own modules (families.py)
        family.register(app)
    app.router.add_post("/_sandbox/advance", _advance)
    app.router.add_get("/_sandbox/truth/counts", _truth_counts)
    app.router.add_get("/_sandbox/requests/summary", _requests_summary)
    return app


# --------------------------------------------------------------------------- middlewares


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without the exact token (API and admin routes); 403 on beta routes without beta."""
    if not request.path.startswith(("/api/", "/_sandbox/")):
        return await handler(request)
    token = request.app[CONFIG].token
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return error_response(401, UNAUTHORIZED)
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    beta = canonical in _BETA_ROUTES or canonical.startswith(BETA_PREFIX)
    if beta and request.headers.get("LD-API-Version") != "beta":
        return error_response(403, FORBIDDEN_BETA)
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: turn `ApiError` and aiohttp's 404/405 into JSON error bodies."""
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPMethodNotAllowed:
        return error_response(405, METHOD_NOT_ALLOWED)
    except web.HTTPNotFound:
        return error_response(404, NOT_FOUND)


# --------------------------------------------------------------------------- discovery


async def _index(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    return json_response(
        {
            "name": "ld-insights-etl sandbox: a fake LaunchDarkly REST API",
            "auth": "Authorization: <token printed at startup> (no Bearer prefix)",
            "beta": "LD-API-Version: beta on engineering-insights and release routes",
            "seed": dataset.seed,
            "scale": dataset.scale,
            "nowMs": dataset.now_ms,
            "routes": sorted({resource.canonical for resource in request.app.router.resources()}),
        }
    )


async def _projects(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    reader = QueryReader(request.query)
    projects = _filter_named(dataset.projects, reader.filters(frozenset({"query", "keys", "tags"})))
    expand = reader.csv("expand")
    reader.check()
    page, links = offset_page(request, projects)
    if "environments" in expand:
        page = [
            {**project, "environments": _embedded_environments(dataset, project)}
            for project in page
        ]
    return respond(
        request,
        {"_links": links, "items": page, "totalCount": listing_count(request, len(projects))},
    )


def _embedded_environments(dataset: Dataset, project: JSON) -> JSON:
    environments = dataset.environments[project["key"]]
    return {
        "_links": {"self": link(f"/api/v2/projects/{project['key']}/environments")},
        "totalCount": len(environments),
        "items": environments,
    }


async def _environments(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    environments = dataset.environments.get(request.match_info["projectKey"])
    if environments is None:
        raise ApiError.not_found()
    reader = QueryReader(request.query)
    filters = reader.filters(frozenset({"query", "tags", "critical"}))
    reader.check()
    selected = _filter_named(environments, filters)
    page, links = offset_page(request, selected)
    return respond(
        request,
        {"_links": links, "totalCount": listing_count(request, len(selected)), "items": page},
    )


def _filter_named(items: Sequence[JSON], filters: Iterable[tuple[str, str]]) -> list[JSON]:
    """Apply project/environment filters: `query` (key or name), `keys`, `tags`, `critical`."""
    selected = list(items)
    for field, value in filters:
        if field == "query":
            needle = value.lower()
            selected = [i for i in selected if needle in i["key"] or needle in i["name"].lower()]
        elif field == "keys":
            keys = set(value.split("|"))
            selected = [item for item in selected if item["key"] in keys]
        elif field == "tags":
            tags = set(value.split("+"))
            selected = [item for item in selected if tags & set(item["tags"])]
        elif field == "critical":
            selected = [item for item in selected if item["critical"] == (value == "true")]
    return selected


# --------------------------------------------------------------------------- deployments


async def _deployments(request: web.Request) -> web.Response:
    """Cursor-paged deployments; see `Dataset.query_deployments` for the ordering contract."""
    dataset = request.app[DATASET]
    reader = QueryReader(request.query)
    asked = insights_page(reader)
    expand = reader.csv("expand")
    after = _cursor(dataset, reader, "after")
    before = _cursor(dataset, reader, "before")
    if after is not None and before is not None:
        reader.fail("before", "cannot be combined with after")
    reader.check()
    if not dataset.has_environment(asked.project_key, asked.environment_key):
        raise ApiError.not_found()
    query = DeploymentQuery(
        project_key=asked.project_key,
        environment_key=asked.environment_key,
        from_ms=asked.from_ms,
        to_ms=asked.to_ms,
        limit=asked.limit,
        applications=reader.csv("applicationKey"),
        kinds=reader.csv("kind"),
        statuses=reader.csv("status"),
        after=after,
        before=before,
    )
    page = dataset.query_deployments(query)
    prs, flags = "pullRequests" in expand, "flagReferences" in expand
    items = [
        orjson.Fragment(dataset.deployment_bytes(record, prs=prs, flags=flags))
        for record in page.items
    ]
    links: JSON = {}
    if page.items:
        older = page.has_more if before is None else _more(dataset, query, after=page.items[-1])
        if older:
            links["next"] = link(_cursor_href(request, "after", page.items[-1].id))
        if (after or before) and _more(dataset, query, before=page.items[0]):
            links["prev"] = link(_cursor_href(request, "before", page.items[0].id))
    links["self"] = link(request.path_qs)
    return respond(request, {"totalCount": page.total, "items": items, "_links": links})


def _cursor(dataset: Dataset, reader: QueryReader, name: str) -> Deployment | None:
    """The deployment a cursor names; the cursor is its id, as in LaunchDarkly's example."""
    token = reader.query.get(name)
    if token is None:
        return None
    found = dataset.find_deployment(token)
    if found is None:
        reader.fail(name, "unknown or malformed cursor")
    return found


def _more(
    dataset: Dataset,
    query: DeploymentQuery,
    *,
    after: Deployment | None = None,
    before: Deployment | None = None,
) -> bool:
    """Whether any matching deployment lies beyond `after` (older) or `before` (newer)."""
    probe = replace(query, after=after, before=before, limit=0, count_total=False)
    return dataset.query_deployments(probe).has_more


def _cursor_href(request: web.Request, name: str, token: str) -> str:
    """The href for the page after/before `token`, in the configured `next_href` style."""
    if request.app[CONFIG].next_href == "after-only":
        return href(DEPLOYMENTS_PATH, [(name, token)])
    kept = [(k, v) for k, v in request.query.items() if k not in ("after", "before")]
    return href(DEPLOYMENTS_PATH, [*kept, (name, token)])


async def _deployment(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    record = dataset.find_deployment(request.match_info["deploymentID"])
    if record is None:
        raise ApiError.not_found()
    expand = QueryReader(request.query).csv("expand")
    rep = dataset.deployment_rep(
        record, prs="pullRequests" in expand, flags="flagReferences" in expand
    )
    return respond(request, rep)


# --------------------------------------------------------------------------- releases


async def _pipelines(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    project_key = request.match_info["projectKey"]
    if dataset.project(project_key) is None:
        raise ApiError.not_found()
    reader = QueryReader(request.query)
    filters = reader.filters(frozenset({"query", "env"}))
    reader.check()
    pipelines = dataset.releases.pipelines.get(project_key, [])
    for field, value in filters:
        if field == "query":
            needle = value.lower()
            pipelines = [p for p in pipelines if needle in _pipeline_text(p)]
        else:
            pipelines = [p for p in pipelines if value in _pipeline_environments(p)]
    page, _ = offset_page(request, pipelines, links=False)
    return respond(request, {"items": page, "totalCount": listing_count(request, len(pipelines))})


def _pipeline_text(pipeline: JSON) -> str:
    return " ".join((pipeline["key"], pipeline["name"], pipeline.get("description", ""))).lower()


def _pipeline_environments(pipeline: JSON) -> set[str]:
    return {
        audience["environment"]["key"]
        for phase in pipeline["phases"]
        for audience in phase["audiences"]
        if "environment" in audience
    }


async def _progressions(request: web.Request) -> web.Response:
    """Offset-paged releases with counts and a phase summary over the whole pipeline.

    `activeCount`, `completedCount` and each phase's `releaseCount` describe the pipeline as a
    whole; `totalCount` counts the releases that match the filter.
    """
    dataset = request.app[DATASET]
    project_key = request.match_info["projectKey"]
    pipeline = dataset.pipeline(project_key, request.match_info["pipelineKey"])
    if pipeline is None:
        raise ApiError.not_found()
    reader = QueryReader(request.query)
    status, phase_id = None, None
    for field, value in reader.filters(frozenset({"status", "activePhaseId"})):
        if field == "status" and value not in ("active", "completed"):
            reader.fail("filter", "status must be active or completed")
        elif field == "status":
            status = value
        else:
            phase_id = value
    if status == "completed" and phase_id is not None:
        reader.fail("filter", "status completed cannot be combined with activePhaseId")
    reader.check()
    everything = dataset.progressions(project_key, pipeline["key"])
    selected = [
        progression
        for progression in everything
        if (status != "active" or progression.active_phase_id is not None)
        and (status != "completed" or progression.completed_at is not None)
        and (phase_id is None or progression.active_phase_id == phase_id)
    ]
    reps = [progression.rep() for progression in selected]
    page, links = offset_page(request, reps)
    active = [p.active_phase_id for p in everything if p.active_phase_id is not None]
    phases = [
        {"_id": phase["id"], "name": phase["name"], "releaseCount": active.count(phase["id"])}
        for phase in pipeline["phases"]
    ]
    body = {
        "activeCount": len(active),
        "completedCount": len(everything) - len(active),
        "items": page,
        "phases": phases,
        "totalCount": listing_count(request, len(selected)),
        "_links": {"self": links["self"]},
    }
    return respond(request, body)


async def _policies(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    policies = dataset.releases.policies.get(request.match_info["projectKey"])
    if policies is None:
        raise ApiError.not_found()
    reader = QueryReader(request.query)
    exclude_default = reader.boolean("excludeDefault", False)
    reader.check()
    if exclude_default:
        policies = [policy for policy in policies if policy["key"] != "default"]
    return respond(
        request, {"items": policies, "totalCount": listing_count(request, len(policies))}
    )


# --------------------------------------------------------------------------- admin


async def _advance(request: web.Request) -> web.Response:
    reader = QueryReader(request.query)
    now_ms = reader.integer("now_ms", 0, minimum=0) or None
    reader.check()
    return json_response(request.app[DATASET].advance(now_ms))


async def _truth_counts(request: web.Request) -> web.Response:
    return json_response(request.app[DATASET].counts())


async def _requests_summary(request: web.Request) -> web.Response:
    records = request.app[REQUEST_LOG]
    return json_response(summarize(records))
