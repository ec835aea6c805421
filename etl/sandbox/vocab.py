"""Word pools for the synthetic dataset.

Fixed tuples (never sets) so that drawing from them with a seeded RNG is reproducible. Several
entries carry non-ASCII text on purpose: LaunchDarkly names and Git metadata are free text, and
an ETL that only ever saw ASCII would not find its encoding bugs.
"""

from __future__ import annotations

PROJECTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("payments", "Payments 💳", ("billing", "pci")),
    ("storefront", "Storefront — Web", ("web",)),
    ("mobile", "Mobile Apps (iOS/Android)", ("mobile", "ios", "android")),
    ("platform", "Plateforme commune", ()),
    ("data", "Données & Analytics", ("data",)),
    ("growth", "Growth 🚀", ("marketing",)),
    ("identity", "Identität", ("security",)),
    ("internal-tools", "Internal Tools", ("internal",)),
)

# Environment chains by length; the last environment is always production.
ENVIRONMENT_CHAINS: dict[int, tuple[str, ...]] = {
    2: ("staging", "production"),
    3: ("development", "staging", "production"),
    4: ("development", "qa", "staging", "production"),
    5: ("development", "qa", "staging", "canary", "production"),
}

ENVIRONMENTS: dict[str, tuple[str, str]] = {
    "development": ("Développement", "7B61FF"),
    "qa": ("QA ✅", "00A3E0"),
    "staging": ("Staging", "F5A623"),
    "canary": ("Canary 🐤", "FFD700"),
    "production": ("Production", "D0021B"),
}

APPLICATIONS: tuple[str, ...] = (
    "billing-service",
    "checkout-web",
    "search-api",
    "notifications-worker",
    "auth-gateway",
    "ledger",
    "recommendations-ml",
    "mobile-ios",
    "mobile-android",
    "admin-console",
    "inventory-sync",
    "edge-proxy",
)

AUTHORS: tuple[str, ...] = (
    "jane.doe",
    "sam.lee",
    "ana.ruiz",
    "zoë.müller",
    "李雷",
    "søren.kierkegaard",
    "priya.natarajan",
    "josé.álvarez",
    "olga.ivanova",
    "kwame.mensah",
    "dependabot[bot]",
    "renée.dupont",
)

TITLE_VERBS: tuple[str, ...] = (
    "Fix",
    "Add",
    "Refactor",
    "Remove",
    "Bump",
    "Speed up",
    "Retry",
    "Document",
    "Harden",
    "Migrate",
)

TITLE_OBJECTS: tuple[str, ...] = (
    "invoice webhook on 5xx",
    "coupon rounding",
    "ümlaut handling in CSV export",
    "snowman ☃ in product names",
    "search ranking for 日本語 queries",
    "session refresh race",
    "stripe-python to 9.9.0",
    "dark mode toggle 🌙",
    "flaky checkout test",
    "N+1 query in order history",
    "legacy cart endpoint",
    "rate limiter burst size",
    "emoji 👍 reactions",
    "Zahlungsstatus mapping",
    "metrics cardinality",
)

FLAG_WORDS: tuple[str, ...] = (
    "new-checkout-flow",
    "dark-mode",
    "invoice-v2",
    "fast-search",
    "one-click-pay",
    "beta-dashboard",
    "smart-retries",
    "edge-cache",
    "passkeys",
    "bulk-export",
    "ai-summaries",
    "guest-checkout",
)

PIPELINES: tuple[tuple[str, str], ...] = (
    ("standard-pipeline", "Standard pipeline"),
    ("mobile-staged-rollout", "Mobile staged rollout 📱"),
    ("guarded-production", "Guarded production"),
    ("fast-lane", "Fast lane ⚡"),
    ("compliance-review", "Revisión de cumplimiento"),
    ("canary-first", "Canary first"),
)

PHASE_NAMES: tuple[str, ...] = (
    "Phase 1 - Testing",
    "QA sign-off",
    "Staging soak",
    "Canary 🐤 5%",
    "Production rollout",
)

RELEASE_STRATEGIES: tuple[str, ...] = (
    "immediate-rollout",
    "guarded-rollout",
    "progressive-rollout",
)

METRICS: tuple[str, ...] = (
    "error-rate",
    "p95-latency",
    "checkout-conversion",
    "crash-free-sessions",
)

TEAMS: tuple[str, ...] = ("release-managers", "sre-oncall", "example-reviewer-team")
