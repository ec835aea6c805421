"""Flags, flag statuses and flag events (`ld-api.md` §6), derived from the dataset.

Every project has the flags its deployments reference (`vocab.FLAG_WORDS`) and a few more:
permanent kill switches, archived and deprecated flags. Each flag behaves one way in each
environment, fixed by the seed:

- **active**: changed now and then, up to now (flag events keep coming);
- **launched**: rolled out to everyone at a fixed moment (the last event, impact `large`),
  still evaluated; its status is `launched` from seven days after that moment;
- **inactive**: evaluated until a fixed moment, no event after it; `inactive` seven days on;
- **new**: created in the last week and never evaluated (no events).

Flag events fall on days of the flag's life (one per day at most, with a per-scale chance),
so the history is the same at every `now` and an `advance` only adds the events of the time
it moves over. A few flags run an experiment: the events inside its iteration carry it. The
statuses follow from the same moments, so they agree with the events. Nothing here depends
on anything but the seed, the scale, the dataset's projects and environments, its first
anchor (`Dataset.origin_ms`) and its current one (`Dataset.now_ms`).
"""

from __future__ import annotations

import random
import uuid
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from etl.sandbox import vocab
from etl.sandbox.data import Dataset
from etl.sandbox.errors import ApiError
from etl.sandbox.links import href
from etl.sandbox.params import QueryReader, insights_page
from etl.sandbox.records import JSON, link
from etl.sandbox.serving import DATASET, listing_count, offset_page, respond

NAME = "flags"
FLAGS_PATH = "/api/v2/flags/{projectKey}"
STATUSES_PATH = "/api/v2/flag-statuses/{projectKey}/{environmentKey}"
EVENTS_PATH = "/api/v2/engineering-insights/flag-events"

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_WEEK_MS = 7 * DAY_MS

# (key, temporary, archived, deprecated): flags no deployment references.
EXTRA_FLAGS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("kill-switch-payments", False, False, False),
    ("maintenance-mode", False, False, False),
    ("legacy-banner", True, True, False),
    ("old-pricing-page", True, False, True),
)
MAINTAINER_TEAMS: tuple[tuple[str, str], ...] = (
    ("web", "Web"),
    ("payments", "Payments"),
    ("platform", "Platform"),
    ("mobile", "Mobile"),
)
EVENT_TYPES: tuple[str, ...] = (
    "flag-updated",
    "targeting-rule-updated",
    "rollout-updated",
    "flag-turned-on",
)
EXPERIMENTS: tuple[tuple[str, str], ...] = (
    ("checkout-conversion", "Checkout conversion"),
    ("search-latency", "Search latency"),
    ("onboarding-retention", "Onboarding retention"),
)
EVENTS_PER_FLAG_DAY: dict[str, float] = {
    "tiny": 0.02,
    "small": 0.03,
    "medium": 0.08,
    "large": 0.2,
}
"""The chance of an event on a day of a flag's life in one environment, before the first
anchor: about a tenth as many flag events as deployments at medium and large."""
EVENTS_PER_FLAG_HOUR = 0.05
"""The same per hour after the first anchor (what `advance` adds): small's 144 flags and
environments change ~7 times an hour."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How one flag behaves in one environment (see the module docstring)."""

    kind: str  # active | launched | inactive | new
    until_ms: int | None
    """launched: the rollout's moment; inactive: the last evaluation; else None."""


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag of one project, as generated (its reps are rendered from it)."""

    project_key: str
    key: str
    name: str
    kind: str
    temporary: bool
    archived_ms: int | None
    deprecated_ms: int | None
    created_ms: int
    maintainer_id: str
    team: tuple[str, str] | None
    tags: tuple[str, ...]
    experiment: tuple[str, str, int, int | None] | None
    """(key, name, iteration start, iteration end or None while it runs)."""
    behaviours: dict[str, Behaviour] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """One flag event, newest-first sortable by `sort_key`."""

    id: str
    project_key: str
    environment_key: str
    flag: Flag
    time_ms: int
    event_type: str
    size: str
    percentage: float
    audit_id: str
    member: int

    @property
    def sort_key(self) -> tuple[int, str]:
        """Ascending key for the served order: newest first, then id."""
        return (-self.time_ms, self.id)


@dataclass
class World:
    """Every flag, status and event of a dataset at one `now`."""

    now_ms: int
    flags: dict[str, list[Flag]]
    events: dict[tuple[str, str], list[Event]]
    keys: dict[tuple[str, str], list[tuple[int, str]]]
    by_id: dict[str, Event]


_WORLDS: weakref.WeakKeyDictionary[Dataset, World] = weakref.WeakKeyDictionary()


def world(dataset: Dataset) -> World:
    """The flags of `dataset` at its current anchor (cached until it moves)."""
    found = _WORLDS.get(dataset)
    if found is None or found.now_ms != dataset.now_ms:
        found = _build(dataset)
        _WORLDS[dataset] = found
    return found


def _build(dataset: Dataset) -> World:
    origin, now = dataset.origin_ms, dataset.now_ms
    odds = (EVENTS_PER_FLAG_DAY[dataset.scale], EVENTS_PER_FLAG_HOUR)
    flags: dict[str, list[Flag]] = {}
    events: dict[tuple[str, str], list[Event]] = {}
    for project in dataset.projects:
        project_key = project["key"]
        environments = [env["key"] for env in dataset.environments[project_key]]
        made = [
            _flag(dataset.seed, origin, project_key, key, True, False, False, environments)
            for key in vocab.FLAG_WORDS
        ]
        made += [
            _flag(dataset.seed, origin, project_key, key, temporary, archived, deprecated,
                  environments)
            for key, temporary, archived, deprecated in EXTRA_FLAGS
        ]  # fmt: skip
        flags[project_key] = made
        for environment_key in environments:
            pair = [
                event
                for flag in made
                for event in _events(dataset.seed, flag, environment_key, odds, origin, now)
            ]
            pair.sort(key=lambda event: event.sort_key)
            events[(project_key, environment_key)] = pair
    keys = {pair: [event.sort_key for event in items] for pair, items in events.items()}
    by_id = {event.id: event for items in events.values() for event in items}
    return World(now, flags, events, keys, by_id)


def _flag(
    seed: int,
    origin: int,
    project_key: str,
    key: str,
    temporary: bool,
    archived: bool,
    deprecated: bool,
    environments: list[str],
) -> Flag:
    rng = random.Random(f"{seed}/flag/{project_key}/{key}")
    # Most flags are months old; one in eight was created in the last week.
    age_days = rng.randint(1, 6) if rng.random() < 0.125 else rng.randint(20, 150)
    created = origin - age_days * DAY_MS - rng.randint(0, DAY_MS - 1)
    archived_ms = created + rng.randint(5, 15) * DAY_MS if archived else None
    deprecated_ms = created + rng.randint(5, 15) * DAY_MS if deprecated else None
    team = None if rng.random() < 0.1 else rng.choice(MAINTAINER_TEAMS)
    experiment = None
    if rng.random() < 0.25 and age_days > 14:
        exp_key, exp_name = rng.choice(EXPERIMENTS)
        started = created + rng.randint(1, 7) * DAY_MS
        ended = started + rng.randint(10, 40) * DAY_MS
        experiment = (f"{exp_key}-{key}", exp_name, started, ended if ended < origin else None)
    flag = Flag(
        project_key=project_key,
        key=key,
        name=key.replace("-", " ").capitalize(),
        kind="boolean" if rng.random() < 0.8 else "multivariate",
        temporary=temporary,
        archived_ms=archived_ms,
        deprecated_ms=deprecated_ms,
        created_ms=created,
        maintainer_id=f"{rng.getrandbits(96):024x}",
        team=team,
        tags=tuple(sorted(rng.sample(("frontend", "backend", "mobile", "ops"), rng.randint(0, 2)))),
        experiment=experiment,
    )
    for environment_key in environments:
        flag.behaviours[environment_key] = _behaviour(rng, flag, age_days, origin)
    return flag


def _behaviour(rng: random.Random, flag: Flag, age_days: int, origin: int) -> Behaviour:
    if age_days < 7 and rng.random() < 0.7:
        return Behaviour("new", None)
    if flag.archived_ms is not None:
        return Behaviour("inactive", flag.archived_ms)
    roll = rng.random()
    if roll < 0.3:
        # Rolled out somewhere between a week after creation and two weeks from the anchor.
        return Behaviour("launched", origin + rng.randint(-age_days + 7, 14) * DAY_MS)
    if roll < 0.5:
        return Behaviour("inactive", origin + rng.randint(-age_days + 3, 10) * DAY_MS)
    return Behaviour("active", None)


def _events(
    seed: int, flag: Flag, environment_key: str, odds: tuple[float, float], origin: int, now: int
) -> list[Event]:
    chance, live = odds
    behaviour = flag.behaviours[environment_key]
    if behaviour.kind == "new":
        return []
    end = now if behaviour.until_ms is None else min(now, behaviour.until_ms)
    made: list[Event] = []
    # History (before the first anchor) by the day; the time `advance` moves over by the hour,
    # with a higher chance, so that an hourly sync finds new events.
    buckets = [
        (day * DAY_MS, DAY_MS, chance)
        for day in range(flag.created_ms // DAY_MS, origin // DAY_MS + 1)
    ]
    buckets += [
        (hour * HOUR_MS, HOUR_MS, live) for hour in range(origin // HOUR_MS, end // HOUR_MS + 1)
    ]
    for start, span, bucket_odds in buckets:
        rng = random.Random(f"{seed}/fe/{flag.project_key}/{environment_key}/{flag.key}/{start}")
        if rng.random() >= bucket_odds:
            continue
        moment = start + rng.randrange(span)
        before_origin = moment < origin
        if (span == DAY_MS) != before_origin or not flag.created_ms < moment <= end:
            continue
        made.append(_event(rng, flag, environment_key, moment))
    if behaviour.kind == "launched" and behaviour.until_ms is not None:
        launch = behaviour.until_ms
        if flag.created_ms < launch <= now:
            rng = random.Random(f"{seed}/launch/{flag.project_key}/{environment_key}/{flag.key}")
            made.append(_event(rng, flag, environment_key, launch, launch=True))
    return made


def _event(
    rng: random.Random, flag: Flag, environment_key: str, moment: int, *, launch: bool = False
) -> Event:
    if launch:
        event_type, size, percentage = "rollout-updated", "large", 100.0
    else:
        event_type = rng.choice(EVENT_TYPES)
        percentage = rng.choice((0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0))
        size = _size(percentage)
    return Event(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        project_key=flag.project_key,
        environment_key=environment_key,
        flag=flag,
        time_ms=moment,
        event_type=event_type,
        size=size,
        percentage=percentage,
        audit_id=f"{rng.getrandbits(96):024x}",
        member=rng.randrange(len(vocab.AUTHORS)),
    )


def _size(percentage: float) -> str:
    """LaunchDarkly's sizes: none (0 %), small (0–20 %), medium (20–80 %), large (> 80 %)."""
    if percentage == 0:
        return "none"
    if percentage <= 20:
        return "small"
    return "medium" if percentage <= 80 else "large"


# ------------------------------------------------------------------------- statuses


def status_of(flag: Flag, environment_key: str, now: int) -> tuple[str, int | None]:
    """(status, last evaluation in ms or None) of a flag in an environment at `now`.

    LaunchDarkly's definitions: new (created < 7 days ago, never evaluated); inactive (not
    evaluated for 7 days); launched (one variation to everyone and no change for 7 days);
    active otherwise.
    """
    behaviour = flag.behaviours[environment_key]
    if behaviour.kind == "new":
        return ("new" if now - flag.created_ms < _WEEK_MS else "inactive"), None
    if behaviour.kind == "inactive" and behaviour.until_ms is not None:
        last = min(now, behaviour.until_ms)
        return ("inactive" if now - last >= _WEEK_MS else "active"), last
    recently = now - (flag.created_ms % 600_000) - 60_000  # evaluated a few minutes ago
    if behaviour.kind == "launched" and behaviour.until_ms is not None:
        launched = now - behaviour.until_ms >= _WEEK_MS
        return ("launched" if launched else "active"), recently
    return "active", recently


# ------------------------------------------------------------------------- reps


def _ms_text(ms: int) -> str:
    """LaunchDarkly's `lastRequested` form: `2020-02-05 18:17:01.514000+00:00`."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(sep=" ", timespec="microseconds")


def flag_rep(flag: Flag, environments: list[str], now: int, events: World) -> JSON:
    """A `FeatureFlag` in LaunchDarkly's default summary form (no targets or rules)."""
    rep: JSON = {
        "name": flag.name,
        "kind": flag.kind,
        "key": flag.key,
        "_version": 1,
        "creationDate": flag.created_ms,
        "variations": [{"value": True}, {"value": False}]
        if flag.kind == "boolean"
        else [{"value": "a"}, {"value": "b"}, {"value": "c"}],
        "temporary": flag.temporary,
        "tags": list(flag.tags),
        "_links": {
            "parent": link(f"/api/v2/flags/{flag.project_key}"),
            "self": link(f"/api/v2/flags/{flag.project_key}/{flag.key}"),
        },
        "maintainerId": flag.maintainer_id,
        "experiments": {"baselineIdx": 0, "items": []},
        "customProperties": {},
        "archived": flag.archived_ms is not None and flag.archived_ms <= now,
        "deprecated": flag.deprecated_ms is not None and flag.deprecated_ms <= now,
        "environments": {},
    }
    if flag.team is not None:
        rep["maintainerTeamKey"] = flag.team[0]
        rep["_maintainerTeam"] = {"key": flag.team[0], "name": flag.team[1]}
    if rep["archived"]:
        rep["archivedDate"] = flag.archived_ms
    if rep["deprecated"]:
        rep["deprecatedDate"] = flag.deprecated_ms
    version = 1
    for environment_key in environments:
        changes = [e for e in events.events[(flag.project_key, environment_key)] if e.flag is flag]
        version += len(changes)
        rep["environments"][environment_key] = {
            "on": flag.behaviours[environment_key].kind in ("active", "launched"),
            "archived": rep["archived"],
            "salt": f"{flag.key}-salt",
            "sel": f"{flag.key}-sel",
            "lastModified": max((e.time_ms for e in changes), default=flag.created_ms),
            "version": len(changes) + 1,
            "_site": link(f"/default/{environment_key}/features/{flag.key}"),
            "_environmentName": environment_key.capitalize(),
            "trackEvents": False,
            "trackEventsFallthrough": False,
        }
    rep["_version"] = version
    return rep


def status_rep(flag: Flag, environment_key: str, now: int) -> JSON:
    """A `FlagStatusRep`; the flag is named only by its links, as LaunchDarkly does."""
    status, last = status_of(flag, environment_key, now)
    rep: JSON = {
        "name": status,
        "default": True if flag.kind == "boolean" else "a",
        "_links": {
            "parent": link(f"/api/v2/flags/{flag.project_key}/{flag.key}"),
            "self": link(f"/api/v2/flag-statuses/{flag.project_key}/{environment_key}/{flag.key}"),
        },
    }
    if last is not None:
        rep["lastRequested"] = _ms_text(last)
    return rep


def event_rep(dataset: Dataset, event: Event, *, experiments: bool) -> JSON:
    """A `FlagEventRep`, with the experiments running at the event when expanded."""
    project = dataset.project(event.project_key) or {}
    environment = next(
        (e for e in dataset.environments[event.project_key] if e["key"] == event.environment_key),
        {},
    )
    login = vocab.AUTHORS[event.member]
    first, _, last = login.partition(".")
    rep: JSON = {
        "id": event.id,
        "projectId": project.get("_id", ""),
        "projectKey": event.project_key,
        "environmentId": environment.get("_id", ""),
        "environmentKey": event.environment_key,
        "flagKey": event.flag.key,
        "eventType": event.event_type,
        "eventTime": event.time_ms,
        "description": f"{event.event_type.replace('-', ' ')}: {event.flag.name}",
        "auditLogEntryId": event.audit_id,
        "member": {"id": f"member-{login}", "email": f"{login}@example.com",
                   "firstName": first.capitalize(), "lastName": last.capitalize()},
        "impact": {"size": event.size, "percentage": event.percentage,
                   "reason": "percentage of contexts whose variation changed"},
    }  # fmt: skip
    if experiments:
        running = _experiment_at(event)
        rep["experiments"] = {"totalCount": len(running), "items": running}
    return rep


def _experiment_at(event: Event) -> list[JSON]:
    if event.flag.experiment is None:
        return []
    key, name, started, ended = event.flag.experiment
    if event.time_ms < started or (ended is not None and event.time_ms > ended):
        return []
    iteration: JSON = {
        "id": f"{key}-1",
        "status": "running" if ended is None else "stopped",
        "startedAt": started,
    }
    if ended is not None:
        iteration["endedAt"] = ended
    return [{"key": key, "name": name, "iteration": iteration}]


# ------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class FlagsTruth:
    """What a complete sync of the flag streams must hold (reps exactly as served)."""

    flags: dict[str, list[JSON]]
    statuses: dict[tuple[str, str], list[JSON]]
    events: dict[tuple[str, str], list[JSON]]


def truth(dataset: Dataset) -> FlagsTruth:
    """Every flag (per project), status and flag event (per pair, newest first, expanded)."""
    found = world(dataset)
    now = dataset.now_ms
    flags: dict[str, list[JSON]] = {}
    statuses: dict[tuple[str, str], list[JSON]] = {}
    for project_key, items in found.flags.items():
        environments = [env["key"] for env in dataset.environments[project_key]]
        flags[project_key] = [flag_rep(flag, environments, now, found) for flag in items]
        for environment_key in environments:
            statuses[(project_key, environment_key)] = [
                status_rep(flag, environment_key, now) for flag in items
            ]
    events = {
        pair: [event_rep(dataset, event, experiments=True) for event in items]
        for pair, items in found.events.items()
    }
    return FlagsTruth(flags, statuses, events)


def counts(dataset: Dataset) -> dict[str, int]:
    """Totals and per-scope counts (the bench's floor): flags per project, events per pair."""
    found = world(dataset)
    result = {
        "flags": sum(map(len, found.flags.values())),
        "flag_statuses": sum(len(found.flags[project]) for project, _ in found.events),
        "flag_events": sum(map(len, found.events.values())),
    }
    for project_key, flags in found.flags.items():
        result[f"flags/{project_key}"] = len(flags)
    for (project_key, environment_key), events in found.events.items():
        result[f"flag_statuses/{project_key}/{environment_key}"] = len(found.flags[project_key])
        result[f"flag_events/{project_key}/{environment_key}"] = len(events)
    return result


# ------------------------------------------------------------------------- routes


def register(app: web.Application) -> None:
    """Add the flag routes to the sandbox app."""
    app.router.add_get(FLAGS_PATH, _flags)
    app.router.add_get(STATUSES_PATH, _statuses)
    app.router.add_get(EVENTS_PATH, _flag_events)


async def _flags(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    project_key = request.match_info["projectKey"]
    if dataset.project(project_key) is None:
        raise ApiError.not_found()
    reader = QueryReader(request.query)
    reader.boolean("summary", True)
    filters = reader.filters(frozenset({"state", "type", "maintainerTeamKey"}))
    reader.check()
    found = world(dataset)
    environments = [env["key"] for env in dataset.environments[project_key]]
    reps = [
        flag_rep(flag, environments, dataset.now_ms, found) for flag in found.flags[project_key]
    ]
    for name, value in filters:
        if name == "state":
            reps = [r for r in reps if _state(r) == value]
        elif name == "type":
            reps = [r for r in reps if ("temporary" if r["temporary"] else "permanent") == value]
        else:
            reps = [r for r in reps if r.get("maintainerTeamKey") == value]
    page, links = offset_page(request, reps)
    return respond(
        request, {"_links": links, "items": page, "totalCount": listing_count(request, len(reps))}
    )


def _state(rep: JSON) -> str:
    if rep["archived"]:
        return "archived"
    return "deprecated" if rep["deprecated"] else "live"


async def _statuses(request: web.Request) -> web.Response:
    dataset = request.app[DATASET]
    project_key = request.match_info["projectKey"]
    environment_key = request.match_info["environmentKey"]
    if not dataset.has_environment(project_key, environment_key):
        raise ApiError.not_found()
    QueryReader(request.query).check()
    items = [
        status_rep(flag, environment_key, dataset.now_ms)
        for flag in world(dataset).flags[project_key]
    ]
    return respond(request, {"_links": {"self": link(request.path)}, "items": items})


async def _flag_events(request: web.Request) -> web.Response:
    """Cursor-paged flag events of one (project, environment), newest first."""
    dataset = request.app[DATASET]
    reader = QueryReader(request.query)
    asked = insights_page(reader)
    expand = reader.csv("expand")
    query = reader.query.get("query", "")
    sizes = reader.csv("impactSize")
    with_experiments = reader.query.get("hasExperiments")
    found = world(dataset)
    after = _cursor(found, reader, "after")
    before = _cursor(found, reader, "before")
    if after is not None and before is not None:
        reader.fail("before", "cannot be combined with after")
    reader.check()
    pair = (asked.project_key, asked.environment_key)
    if not dataset.has_environment(*pair):
        raise ApiError.not_found()
    keys, events = found.keys.get(pair, []), found.events.get(pair, [])
    low = bisect_left(keys, (-asked.to_ms, ""))
    high = bisect_right(keys, (-asked.from_ms, "~"))

    def matches(event: Event) -> bool:
        return (
            (not query or query in event.flag.key)
            and (not sizes or event.size in sizes)
            and (
                with_experiments is None
                or bool(_experiment_at(event)) == (with_experiments.lower() == "true")
            )
        )

    selected = [event for event in events[low:high] if matches(event)]
    start, stop = 0, len(selected)
    if after is not None:
        start = bisect_right([e.sort_key for e in selected], after.sort_key)
    if before is not None:
        stop = bisect_left([e.sort_key for e in selected], before.sort_key)
        start = max(0, stop - asked.limit)
    page = selected[start : min(stop, start + asked.limit)]
    experiments = "experiments" in expand
    links: JSON = {"self": link(request.path_qs)}
    if page and start + len(page) < len(selected):
        links["next"] = link(_cursor_href(request, "after", page[-1].id))
    if page and start > 0:
        links["prev"] = link(_cursor_href(request, "before", page[0].id))
    items = [event_rep(dataset, event, experiments=experiments) for event in page]
    return respond(request, {"totalCount": len(selected), "items": items, "_links": links})


def _cursor(found: World, reader: QueryReader, name: str) -> Event | None:
    token = reader.query.get(name)
    if token is None:
        return None
    event = found.by_id.get(token)
    if event is None:
        reader.fail(name, "unknown or malformed cursor")
    return event


def _cursor_href(request: web.Request, name: str, token: str) -> str:
    kept = [(k, v) for k, v in request.query.items() if k not in ("after", "before")]
    return href(EVENTS_PATH, [*kept, (name, token)])
