"""Every body the sandbox serves validates against LaunchDarkly's OpenAPI schemas.

The schema for each response is looked up in ld-openapi.json by route and status, so the test
checks the sandbox against the spec rather than against our reading of it. Statuses a route
does not declare (the spec omits 401/403/429 on some beta routes) fall back to the generic
error rep for that status. We validate our output, never the spec's own examples (some of
those are invalid, see stack-notes.md).
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import orjson
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from etl.sandbox import PY_RELEASE_METHODS, Dataset, SandboxConfig

# A verbatim copy of ../shared/ld-openapi.json (LaunchDarkly's own schemas), kept in the repo so
# that CI, which has only a clone, validates the sandbox too.
SPEC_PATH = Path(__file__).parents[1] / "data" / "ld-openapi.json"
NOW_MS = 1_767_225_600_000
DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
WIDE = {"from": "0", "to": "9999999999999"}
FALLBACK = {
    400: "ValidationFailedErrorRep",
    401: "UnauthorizedErrorRep",
    403: "ForbiddenErrorRep",
    404: "NotFoundErrorRep",
    405: "MethodNotAllowedErrorRep",
    429: "RateLimitedErrorRep",
    500: "Error",
    502: "Error",
    503: "Error",
}

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


class Spec:
    """Validators for the response schemas of ld-openapi.json, by route template and status."""

    def __init__(self, document: dict) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT7)
        self.registry = Registry().with_resource("urn:ld-openapi", resource)
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), operation)
            for template, methods in document["paths"].items()
            for operation in [methods["get"]]
        ]

    def schema_name(self, path: str, status: int) -> str:
        for pattern, operation in self.routes:
            if pattern.match(path):
                declared = operation["responses"].get(str(status))
                if declared:
                    ref = declared["content"]["application/json"]["schema"]["$ref"]
                    return ref.rsplit("/", 1)[1]
                return FALLBACK[status]
        return FALLBACK[status]

    def validate(self, path: str, status: int, body: object) -> str:
        name = self.schema_name(path, status)
        schema = {"$ref": f"urn:ld-openapi#/components/schemas/{name}"}
        validator = jsonschema.Draft7Validator(
            schema, registry=self.registry, format_checker=FORMATS
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, (
            f"{path} {status} vs {name}: {errors[0].message} at {list(errors[0].absolute_path)}"
        )
        return name


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec(orjson.loads(SPEC_PATH.read_bytes()))


class Walker:
    """Fetches pages like a full sync and validates each one."""

    def __init__(self, api, spec: Spec) -> None:
        self.api, self.spec = api, spec
        self.validated: dict[str, int] = {}

    async def check(self, path, params=None, *, beta=True, auth=True, headers=None):
        reply = await self.api.get(path, params, beta=beta, auth=auth, headers=headers)
        name = self.spec.validate(path, reply.status, reply.json())
        self.validated[name] = self.validated.get(name, 0) + 1
        return reply

    async def offset_pages(self, path, params=None, *, beta=True):
        offset = 0
        while True:
            query = {**(params or {}), "limit": "5", "offset": str(offset)}
            body = (await self.check(path, query, beta=beta)).json()
            offset += len(body["items"])
            if not body["items"] or offset >= body["totalCount"]:
                return

    async def cursor_pages(self, params):
        query = {**params, "limit": "100"}
        while True:
            body = (await self.check(DEPLOYMENTS, query)).json()
            if "next" not in body["_links"]:
                return
            href_query = dict(parse_qsl(urlsplit(body["_links"]["next"]["href"]).query))
            query = {**query, "after": href_query["after"]}


async def test_every_successful_body_matches_its_schema(start_sandbox, api_for, spec):
    sandbox = await start_sandbox(SandboxConfig(scale="small", now_ms=NOW_MS))
    walker = Walker(api_for(sandbox), spec)
    await walker.offset_pages("/api/v2/projects", beta=False)
    await walker.check("/api/v2/projects", {"expand": "environments"}, beta=False)
    truth = sandbox.dataset.truth()
    for project in sandbox.dataset.projects:
        key = project["key"]
        await walker.offset_pages(f"/api/v2/projects/{key}/environments", beta=False)
        await walker.offset_pages(f"/api/v2/projects/{key}/release-pipelines")
        for pipeline in truth.release_pipelines[key]:
            releases = f"/api/v2/projects/{key}/release-pipelines/{pipeline['key']}/releases"
            await walker.offset_pages(releases)
        await walker.check(f"/api/v2/projects/{key}/release-policies")
        await walker.check(f"/api/v2/projects/{key}/release-policies", {"excludeDefault": "true"})
    for project, env in truth.deployments:
        params = {"projectKey": project, "environmentKey": env, **WIDE}
        await walker.cursor_pages({**params, "expand": "pullRequests,flagReferences"})
        await walker.check(DEPLOYMENTS, params)
    some = truth.deployments[("payments", "production")][0]["id"]
    await walker.check(f"{DEPLOYMENTS}/{some}", {"expand": "pullRequests"})
    assert set(walker.validated) == {
        "Projects",
        "Environments",
        "DeploymentCollectionRep",
        "DeploymentRep",
        "ReleasePipelineCollection",
        "ReleaseProgressionCollection",
        "ReleasePoliciesResponse",
    }


async def test_every_error_body_matches_its_schema(api, spec):
    walker = Walker(api, spec)
    policies = "/api/v2/projects/payments/release-policies"
    releases = "/api/v2/projects/payments/release-pipelines/standard-pipeline/releases"
    await walker.check(DEPLOYMENTS, {"limit": "500"})
    await walker.check(DEPLOYMENTS, {"projectKey": "payments", "environmentKey": "nope"})
    await walker.check(DEPLOYMENTS, beta=False)
    await walker.check(DEPLOYMENTS, auth=False)
    await walker.check("/api/v2/projects", {"limit": "x"}, beta=False)
    await walker.check("/api/v2/projects/nope/environments", beta=False)
    await walker.check(policies, {"excludeDefault": "maybe"})
    await walker.check("/api/v2/projects/nope/release-policies")
    await walker.check(policies, beta=False)
    await walker.check(releases, {"filter": "status:completed,activePhaseId:x"})
    await walker.check("/api/v2/projects/payments/release-pipelines/nope/releases")
    assert set(walker.validated) >= {
        "ValidationFailedErrorRep",
        "NotFoundErrorRep",
        "ForbiddenErrorRep",
        "UnauthorizedErrorRep",
        "InvalidRequestErrorRep",
        "Error",
    }


async def test_rate_limit_and_fault_bodies_match_their_schemas(start_sandbox, api_for, spec):
    config = SandboxConfig(scale="tiny", now_ms=NOW_MS, fault_rate=1.0, fault_kinds=("500",))
    walker = Walker(api_for(await start_sandbox(config)), spec)
    await walker.check("/api/v2/projects/payments/release-policies")
    limited = SandboxConfig(scale="tiny", now_ms=NOW_MS, rate=0.1, rate_window_s=10.0)
    walker = Walker(api_for(await start_sandbox(limited)), spec)
    replies = [await walker.check("/api/v2/projects", beta=False) for _ in range(2)]
    assert replies[-1].status == 429


async def test_schema_check_catches_a_stringly_timestamp(start_sandbox, api_for, spec):
    def stringify(request, body):
        body["items"][0]["startedAt"] = str(body["items"][0]["startedAt"])
        return body

    sandbox = await start_sandbox(hook=stringify)
    params = {"projectKey": "payments", "environmentKey": "production", **WIDE}
    with pytest.raises(AssertionError, match="startedAt"):
        await Walker(api_for(sandbox), spec).check(DEPLOYMENTS, params)


def test_newer_release_methods_need_the_newer_enum(spec):
    dataset = Dataset.generate(42, "tiny", NOW_MS, release_methods=PY_RELEASE_METHODS)
    body = {"items": dataset.releases.policies["payments"], "totalCount": 3}
    path = "/api/v2/projects/payments/release-policies"
    with pytest.raises(AssertionError, match="immediate-release"):
        spec.validate(path, 200, body)
    newer = copy.deepcopy(spec.document)
    newer["components"]["schemas"]["ReleaseMethod"]["enum"] = list(PY_RELEASE_METHODS)
    Spec(newer).validate(path, 200, body)
