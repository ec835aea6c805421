"""The dataset: deterministic by seed, realistic in shape, and changed only as reported."""

from __future__ import annotations

import re

import pytest

from etl.sandbox import PY_RELEASE_METHODS, Dataset, SandboxConfig

NOW_MS = 1_767_225_600_000
HOUR = 3_600_000
DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
WIDE = {"from": "0", "to": "9999999999999"}


@pytest.fixture(scope="module")
def small():
    return Dataset.generate(42, "small", NOW_MS)


def all_deployments(truth):
    return [rep for reps in truth.deployments.values() for rep in reps]


async def fetch_everything(api, sandbox):
    """Raw bytes of every page a full sync would fetch, in order."""
    bodies = [(await api.get("/api/v2/projects", beta=False)).body]
    for project, env in sandbox.dataset.truth().deployments:
        params = {"projectKey": project, "environmentKey": env, "limit": "100", **WIDE}
        bodies.append((await api.get(DEPLOYMENTS, {**params, "expand": "pullRequests"})).body)
    for project in sandbox.dataset.projects:
        base = f"/api/v2/projects/{project['key']}"
        bodies.append((await api.get(base + "/environments", beta=False)).body)
        bodies.append((await api.get(base + "/release-pipelines")).body)
        bodies.append((await api.get(base + "/release-policies")).body)
    return bodies


async def test_same_seed_serves_identical_bytes(start_sandbox, api_for):
    config = SandboxConfig(scale="tiny", now_ms=NOW_MS, seed=7)
    first, second = await start_sandbox(config), await start_sandbox(config)
    assert await fetch_everything(api_for(first), first) == await fetch_everything(
        api_for(second), second
    )


async def test_different_seed_serves_different_data(start_sandbox, api_for):
    one = await start_sandbox(SandboxConfig(scale="tiny", now_ms=NOW_MS, seed=1))
    two = await start_sandbox(SandboxConfig(scale="tiny", now_ms=NOW_MS, seed=2))
    bodies_one = await fetch_everything(api_for(one), one)
    bodies_two = await fetch_everything(api_for(two), two)
    assert all(a != b for a, b in zip(bodies_one, bodies_two, strict=True))


def test_generation_is_deterministic_across_calls():
    assert (
        Dataset.generate(3, "tiny", NOW_MS).truth() == Dataset.generate(3, "tiny", NOW_MS).truth()
    )


@pytest.mark.parametrize(("scale", "target"), [("tiny", 80), ("small", 1000)])
def test_scale_sets_the_number_of_deployments(scale, target):
    counts = Dataset.generate(42, scale, NOW_MS).counts()
    assert 0.9 * target <= counts["deployments"] <= 1.1 * target


def test_truth_counts_match_dataset_counts(small):
    assert small.truth().counts() == small.counts()


def test_deployments_span_120_days_denser_recently(small):
    started = [rep["startedAt"] for rep in all_deployments(small.truth())]
    assert NOW_MS - min(started) <= 120 * 24 * HOUR
    last_week = sum(s >= NOW_MS - 7 * 24 * HOUR for s in started)
    assert last_week > len(started) * 7 / 120 * 1.5


def test_the_same_pull_request_ships_in_several_deployments(small):
    seen = {}
    for rep in all_deployments(small.truth()):
        for pr in rep["pullRequests"]["items"]:
            seen.setdefault(pr["id"], []).append(rep["environmentKey"])
    assert sum(len(set(envs)) > 1 for envs in seen.values()) > len(seen) / 2


def test_running_deployments_have_no_end_or_duration(small):
    running = [r for r in all_deployments(small.truth()) if r["status"] == "started"]
    assert running
    assert not any("endedAt" in r or "durationMs" in r for r in running)
    assert all("totalLeadTimeMs" not in r.get("leadTimeStages", {}) for r in running)


def test_finished_deployments_have_consistent_duration_and_lead_time(small):
    for rep in all_deployments(small.truth()):
        if "endedAt" in rep:
            assert rep["durationMs"] == rep["endedAt"] - rep["startedAt"]
        if "totalLeadTimeMs" in rep.get("leadTimeStages", {}):
            assert rep["leadTime"] == rep["leadTimeStages"]["totalLeadTimeMs"]


def test_data_covers_kinds_statuses_and_optional_fields(small):
    reps = all_deployments(small.truth())
    assert {r["kind"] for r in reps} == {"deployment", "redeployment", "rollback"}
    assert {r["status"] for r in reps} == {"started", "finished", "failed"}
    assert any(r["archived"] for r in reps)
    assert any("metadata" not in r for r in reps)
    assert any(r["numberOfPullRequests"] == 0 and "leadTimeStages" not in r for r in reps)
    assert any(r["flagReferences"]["totalCount"] == 0 for r in reps)
    prs = [pr for r in reps for pr in r["pullRequests"]["items"]]
    assert {pr["status"] for pr in prs} == {"open", "merged", "closed", "deployed"}
    unmerged = [pr for pr in prs if pr["status"] in ("open", "closed")]
    assert not any("mergeTime" in pr or "mergeCommitKey" in pr for pr in unmerged)


def test_text_fields_include_unicode(small):
    truth = small.truth()
    names = [p["name"] for p in truth.projects]
    authors = {pr["author"] for r in all_deployments(truth) for pr in r["pullRequests"]["items"]}
    assert any(not name.isascii() for name in names)
    assert any(not author.isascii() for author in authors)


def test_pipelines_have_hex_phase_ids_and_environment_audiences(small):
    for pipelines in small.truth().release_pipelines.values():
        for pipeline in pipelines:
            for phase in pipeline["phases"]:
                assert re.fullmatch(r"[0-9a-f]{24}", phase["id"])
                assert all("releaseStrategy" in a["configuration"] for a in phase["audiences"])


def test_policies_cover_the_spec_release_methods_by_default(small):
    for policies in small.truth().release_policies.values():
        assert {p["releaseMethod"] for p in policies} == {"guarded-release", "progressive-release"}
        assert sum(p["key"] == "default" for p in policies) == 1


def test_newer_release_methods_are_available_on_request():
    dataset = Dataset.generate(42, "small", NOW_MS, release_methods=PY_RELEASE_METHODS)
    methods = {p["releaseMethod"] for ps in dataset.truth().release_policies.values() for p in ps}
    assert methods == set(PY_RELEASE_METHODS)


# ------------------------------------------------------------------------ advance


def without_prs(rep):
    return {key: value for key, value in rep.items() if key != "pullRequests"}


def diff(before, after):
    """What changed between two truths, by entity id."""
    old = {r["id"]: r for r in all_deployments(before)}
    new = {r["id"]: r for r in all_deployments(after)}
    old_prs = {pr["id"]: pr for r in old.values() for pr in r["pullRequests"]["items"]}
    new_prs = {pr["id"]: pr for r in new.values() for pr in r["pullRequests"]["items"]}
    return {
        "added": [new[i] for i in new.keys() - old.keys()],
        "changed": [i for i in old if without_prs(old[i]) != without_prs(new[i])],
        "finished": [i for i in old if "endedAt" not in old[i] and "endedAt" in new[i]],
        "archived": [i for i in old if not old[i]["archived"] and new[i]["archived"]],
        "removed": old.keys() - new.keys(),
        "prs_added": new_prs.keys() - old_prs.keys(),
        "prs_changed": [i for i in old_prs if old_prs[i] != new_prs[i]],
    }


def test_advance_changes_exactly_the_deployments_it_reports():
    dataset = Dataset.generate(42, "tiny", NOW_MS)
    before = dataset.truth()
    report = dataset.advance(NOW_MS + 6 * HOUR)
    found = diff(before, dataset.truth())
    assert not found["removed"]
    assert len(found["added"]) == report["deployments_added"] > 0
    assert sum("endedAt" not in r for r in found["added"]) == report["deployments_running"] > 0
    assert len(found["finished"]) == report["deployments_finished"] > 0
    assert len(found["archived"]) == report["deployments_archived"] > 0
    assert len(found["changed"]) == report["deployments_finished"] + report["deployments_archived"]
    assert len(found["prs_added"]) == report["pull_requests_added"]
    assert len(found["prs_changed"]) == report["pull_requests_changed"]


def test_advance_adds_deployments_between_the_old_and_new_anchor():
    dataset = Dataset.generate(42, "tiny", NOW_MS)
    before = dataset.truth()
    dataset.advance(NOW_MS + HOUR)
    added = diff(before, dataset.truth())["added"]
    assert all(NOW_MS < r["startedAt"] <= NOW_MS + HOUR for r in added)
    assert dataset.now_ms == NOW_MS + HOUR


def test_pr_changes_show_in_every_deployment_that_shipped_the_pr():
    dataset = Dataset.generate(42, "small", NOW_MS)
    for step in range(1, 4):
        dataset.advance(NOW_MS + step * 6 * HOUR)
    copies = {}
    for rep in all_deployments(dataset.truth()):
        for pr in rep["pullRequests"]["items"]:
            copies.setdefault(pr["id"], []).append(pr)
    assert all(all(c == versions[0] for c in versions) for versions in copies.values())


def releases_by_identity(truth):
    return {
        (pair, r["flagKey"], r["_createdAt"]): r
        for pair, reps in truth.release_progressions.items()
        for r in reps
    }


def test_advance_changes_releases_as_reported():
    dataset = Dataset.generate(42, "tiny", NOW_MS)
    before = dataset.truth()
    report = dataset.advance(NOW_MS + 6 * HOUR)
    after = dataset.truth()
    old, new = releases_by_identity(before), releases_by_identity(after)
    kept = old.keys() & new.keys()
    completed = [k for k in kept if "_completedAt" not in old[k] and "_completedAt" in new[k]]
    phases = [(old[k].get("activePhaseId"), new[k].get("activePhaseId")) for k in kept]
    moved = [(a, b) for a, b in phases if a and b and a != b]
    assert len(new.keys() - old.keys()) == report["progressions_added"]
    assert len(old.keys() - new.keys()) == report["progressions_deleted"]
    assert len(completed) == report["progressions_completed"]
    assert len(moved) == report["progressions_advanced"]
    assert all("activePhaseId" not in new[k] for k in completed)
    old_pipes = {(k, p["key"]) for k, ps in before.release_pipelines.items() for p in ps}
    new_pipes = {(k, p["key"]) for k, ps in after.release_pipelines.items() for p in ps}
    assert len(new_pipes - old_pipes) == report["pipelines_added"] == 1
    assert len(old_pipes - new_pipes) == report["pipelines_deleted"] == 1
    changed_policies = [
        (a["key"], a["rank"])
        for project in after.release_policies
        for a in after.release_policies[project]
        if a not in before.release_policies[project]
    ]
    assert len(changed_policies) == report["policies_changed"] == 2


def test_advance_is_deterministic_for_the_seed_and_call_count():
    one, two = Dataset.generate(5, "tiny", NOW_MS), Dataset.generate(5, "tiny", NOW_MS)
    reports = [(d.advance(NOW_MS + HOUR), d.advance(NOW_MS + 2 * HOUR)) for d in (one, two)]
    assert reports[0] == reports[1]
    assert one.truth() == two.truth()


async def test_new_deployments_are_served_after_the_advance_route(api, sandbox):
    params = {"projectKey": "payments", "environmentKey": "staging", "limit": "100", **WIDE}
    before = (await api.get(DEPLOYMENTS, params)).json()["totalCount"]
    report = (await api.post("/_sandbox/advance", {"now_ms": str(NOW_MS + HOUR)})).json()
    after = (await api.get(DEPLOYMENTS, params)).json()
    assert report["deployments_added"] > 0
    expected = sandbox.dataset.counts()["deployments/payments/staging"]
    assert after["totalCount"] == expected >= before
    counts = (await api.get("/_sandbox/truth/counts")).json()
    assert counts == sandbox.dataset.counts()
