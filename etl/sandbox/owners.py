"""Who owns what in the sandbox: teams, applications and Insights groups.

Derived, not stored: everything here is a pure function of the dataset's seed, its
applications (the ones deployments name) and the number of `advance()` calls so far, so the
deployment generator and its byte-identical output are untouched, and an advance changes
ownership without any hook. What the data looks like, so every team view has a case:

* teams that own applications, and one team that owns none;
* most applications owned by a team, some by a member, exactly one by no one;
* each advance moves one team-owned application to another team (the current owner counts);
* timestamps count from `origin_ms`, the day the history starts (its first deployment's
  day), which no advance moves;
* per project an "all applications" group on production, and per project a group of part of
  its applications on the environment before production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from etl.sandbox.records import JSON, hex_id, link
from etl.sandbox.store import Store

DAY = 86_400_000

TEAMS: tuple[tuple[str, str, str], ...] = (
    ("payments-team", "Payments 💳", "Billing, ledger and checkout."),
    ("web-platform", "Web Platform", "Storefront and the edge."),
    ("mobile-squad", "Mobile Squad", "iOS and Android apps."),
    ("data-eng", "Données & ML", "Search, recommendations and data pipelines."),
    ("sre", "Site Reliability", "Gateways, workers and internal tools."),
    ("design-systems", "Design Systems", "Owns no application yet."),
)
"""Team key, name, description; the last team owns nothing on purpose."""

MEMBERS: tuple[tuple[str, str, str], ...] = (
    ("569f183514f4432160000007", "Ariel", "Flores"),
    ("569f183514f4432160000012", "Zoë", "Müller"),
)
"""Members who maintain an application themselves (id, first name, last name)."""

_KIND = {"checkout-web": "browser", "admin-console": "browser"}
_MOBILE = ("mobile-ios", "mobile-android")


@dataclass(frozen=True, slots=True)
class Owner:
    """An application's maintainer: a team key, a member id, or neither."""

    team_key: str | None = None
    member_id: str | None = None


def application_keys(store: Store) -> list[str]:
    """Every application a project deploys, sorted (an application key is account-wide)."""
    return sorted({app for apps in store.applications.values() for app in apps})


def owners(seed: int, store: Store, advances: int) -> dict[str, Owner]:
    """Each application's maintainer after `advances` advances.

    The first application (by key) has no maintainer, every fourth of the rest a member, the
    others a team (never the last team, which owns nothing). Each advance then moves one
    team-owned application to a different team.
    """
    apps = application_keys(store)
    owning = [key for key, _, _ in TEAMS[:-1]]
    rng = random.Random(f"{seed}/owners")
    result: dict[str, Owner] = {}
    for index, app in enumerate(apps):
        if index == 0:
            result[app] = Owner()
        elif index % 4 == 2:
            result[app] = Owner(member_id=MEMBERS[index % len(MEMBERS)][0])
        else:
            result[app] = Owner(team_key=rng.choice(owning))
    for number in range(1, advances + 1):
        moving = random.Random(f"{seed}/owners/{number}")
        team_owned = [app for app in apps if result[app].team_key is not None]
        if not team_owned:
            break
        app = moving.choice(team_owned)
        others = [key for key in owning if key != result[app].team_key]
        result[app] = Owner(team_key=moving.choice(others))
    return result


def team_rep(index: int, origin_ms: int, *, members: bool) -> JSON:
    """A `Team` as the listing serves it; `members` (a count only) with `expand=members`."""
    key, name, description = TEAMS[index]
    rng = random.Random(f"team/{key}")
    created = origin_ms - 60 * DAY - index * 3 * DAY
    body: JSON = {
        "description": description,
        "key": key,
        "name": name,
        "_creationDate": created,
        "_lastModified": created + 9 * DAY,
        "_links": {
            "parent": link("/api/v2/teams"),
            "roles": link(f"/api/v2/teams/{key}/roles"),
            "self": link(f"/api/v2/teams/{key}"),
        },
        "_version": 1 + rng.randint(0, 4),
        "_idpSynced": False,
    }
    if members:
        body["members"] = {"totalCount": rng.randint(2, 9)}
    return body


def application_rep(key: str, owner: Owner, origin_ms: int, *, flags: bool) -> JSON:
    """An `ApplicationRep`; `_maintainer` names the member or the team (or is absent)."""
    rng = random.Random(f"application/{key}")
    kind = "mobile" if key in _MOBILE else _KIND.get(key, "server")
    body: JSON = {
        "_links": {"self": link(f"/api/v2/applications/{key}")},
        "_version": 1,
        "autoAdded": rng.random() < 0.6,
        "creationDate": origin_ms - rng.randint(1, 30) * DAY,
    }
    if rng.random() < 0.7:
        body["description"] = f"The {key} service."
    body["key"] = key
    body["kind"] = kind
    maintainer = _maintainer(owner)
    if maintainer is not None:
        body["_maintainer"] = maintainer
    body["name"] = key.replace("-", " ").title()
    if flags:
        body["flags"] = {"items": [], "totalCount": 0}
    return body


def _maintainer(owner: Owner) -> JSON | None:
    if owner.team_key is not None:
        index = [key for key, _, _ in TEAMS].index(owner.team_key)
        return {
            "team": {
                "customRoleKeys": [],
                "key": owner.team_key,
                "_links": {"self": link(f"/api/v2/teams/{owner.team_key}")},
                "name": TEAMS[index][1],
            }
        }
    if owner.member_id is not None:
        member_id, first, last = next(m for m in MEMBERS if m[0] == owner.member_id)
        return {
            "member": {
                "_links": {"self": link(f"/api/v2/members/{member_id}")},
                "_id": member_id,
                "firstName": first,
                "lastName": last,
                "role": "writer",
                "email": f"{first.lower()}@example.com",
            }
        }
    return None


@dataclass(frozen=True, slots=True)
class Group:
    """An Insights group: a named set of applications in one project and environment."""

    key: str
    name: str
    project_key: str
    environment_key: str
    application_keys: tuple[str, ...]
    created_at: int

    def rep(self) -> JSON:
        """The `InsightGroup` without expansions."""
        return {
            "key": self.key,
            "name": self.name,
            "projectKey": self.project_key,
            "environmentKey": self.environment_key,
            "applicationKeys": list(self.application_keys),
            "createdAt": self.created_at,
        }


def groups(seed: int, store: Store, origin_ms: int) -> list[Group]:
    """Every Insights group, sorted by key (the served default order is by name).

    Per project: all its applications on production, and (with two or more applications and
    two or more environments) half of them, at least one, on the environment before it.
    """
    result = []
    for project_key in sorted(store.applications):
        apps = tuple(sorted(store.applications[project_key]))
        chain = store.environments[project_key]
        created = origin_ms + 7 * DAY
        result.append(
            Group(
                f"{project_key}-{chain[-1]}-all-apps",
                f"{project_key} · {chain[-1]} · all apps",
                project_key,
                chain[-1],
                apps,
                created,
            )
        )
        if len(apps) >= 2 and len(chain) >= 2:
            rng = random.Random(f"{seed}/group/{project_key}")
            picked = tuple(sorted(rng.sample(apps, max(1, len(apps) // 2))))
            result.append(
                Group(
                    f"{project_key}-{chain[-2]}-core-{hex_id(rng, 4)}",
                    f"{project_key} · {chain[-2]} · core",
                    project_key,
                    chain[-2],
                    picked,
                    created + DAY,
                )
            )
    return sorted(result, key=lambda group: group.key)
