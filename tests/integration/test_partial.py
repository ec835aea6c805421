"""A failure confined to one partition is reported for its stream; the rest of the run loads."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.sandbox import Dataset, SandboxConfig, make_app
from etl.sandbox.errors import error_response
from etl.sync import sync
from tests.integration.conftest import Sandbox
from tests.integration.warehouse_truth import warehouse_differences


async def test_forbidden_environment_and_missing_pipeline_fail_only_their_partitions(
    settings_for,
):
    config = SandboxConfig(scale="tiny", now_ms=int(time.time() // 60 * 60_000))
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
    project = dataset.projects[0]["key"]
    environment = dataset.environments[project][1]["key"]
    pipeline = dataset.releases.pipelines[project][0]["key"]

    @web.middleware
    async def refuse(request: web.Request, handler):
        query = request.query
        if (query.get("projectKey"), query.get("environmentKey")) == (project, environment):
            return error_response(403, ("forbidden", "Forbidden"))
        if request.path == f"/api/v2/projects/{project}/release-pipelines/{pipeline}/releases":
            return error_response(404, ("not_found", "Invalid resource identifier"))
        return await handler(request)

    app = make_app(dataset, config)
    app.middlewares.insert(0, refuse)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        settings = settings_for(Sandbox(url, dataset, app, config))
        report = await sync(settings)

    assert (report.status, report.exit_code) == ("partial", 3)
    (deployment_error,) = report.streams["deployments"].errors  # one, not one per window
    assert f"deployments {project}/{environment}" in deployment_error
    assert "403" in deployment_error
    (progression_error,) = report.streams["release_progressions"].errors
    assert f"releases of pipeline {project}/{pipeline}" in progression_error
    assert "404" in progression_error

    (event_error,) = report.streams["flag_events"].errors
    assert f"flag events {project}/{environment}" in event_error

    truth = dataset.truth()
    truth.deployments[(project, environment)] = []
    truth.release_progressions[(project, pipeline)] = []
    truth.extras["flags"].events[(project, environment)] = []
    del truth.extras["teams"].scores[(project, environment)]  # its scores were refused too
    assert warehouse_differences(settings.warehouse.path, truth) == []


async def test_a_token_without_the_flag_events_beta_route_ends_only_flag_events_partial(
    settings_for,
):
    config = SandboxConfig(scale="tiny", now_ms=int(time.time() // 60 * 60_000))
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())

    @web.middleware
    async def no_beta_access(request: web.Request, handler):
        if request.path == "/api/v2/engineering-insights/flag-events":
            return error_response(403, ("forbidden", "Forbidden"))
        return await handler(request)

    app = make_app(dataset, config)
    app.middlewares.insert(0, no_beta_access)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        settings = settings_for(Sandbox(url, dataset, app, config))
        report = await sync(settings)

    assert (report.status, report.exit_code) == ("partial", 3)
    failed = {name for name, stream in report.streams.items() if stream.errors}
    assert failed == {"flag_events"}
    pairs = sum(len(envs) for envs in dataset.environments.values())
    errors = report.streams["flag_events"].errors
    assert len(errors) == pairs  # one line per (project, environment), not per window or page
    assert all("HTTP 403" in error and "flag events " in error for error in errors)
    truth = dataset.truth()
    for pair in truth.extras["flags"].events:
        truth.extras["flags"].events[pair] = []
    assert warehouse_differences(settings.warehouse.path, truth) == []
