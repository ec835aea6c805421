"""What a run's requests bought, per stream: the ledger's account of the API budget.

The API's rate limits are the scarce resource of a sync (every request counts against budgets
the customer shares with other tools), so the ledger says, for each stream, how many requests
it spent, what they returned, and how long they were held. The client tags every request with
its stream; the counters are plain integers updated on the event loop, so anyone may read them
while the run goes on (`RequestLedger.snapshot()`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(slots=True)
class StreamRequests:
    """One stream's requests and what they returned.

    Attributes:
        requests: requests sent, every attempt (retried ones and 429s included).
        pages: 200 answers.
        records: items received in those pages (a re-read listing counts again).
        rate_limited: 429 answers.
        retries: attempts repeated after a 429 or a transient failure.
        wait_s: seconds its requests were held by pacing, 429 pauses and retry backoff.
    """

    requests: int = 0
    pages: int = 0
    records: int = 0
    rate_limited: int = 0
    retries: int = 0
    wait_s: float = 0.0

    def as_json(self) -> dict[str, int | float]:
        """The counters for the ledger (`etl_runs.streams[name].api`)."""
        counts: dict[str, int | float] = asdict(self)
        counts["wait_s"] = round(self.wait_s, 3)
        return counts


@dataclass(slots=True)
class RequestLedger:
    """Every stream's `StreamRequests` for one run, and the run's totals."""

    by_stream: dict[str, StreamRequests] = field(default_factory=dict)
    bytes_received: int = 0

    def stream(self, name: str) -> StreamRequests:
        """The counters of stream `name`, created on first use."""
        name = str(name)  # a `Stream` member keys the ledger by its value
        counters = self.by_stream.get(name)
        if counters is None:
            counters = self.by_stream[name] = StreamRequests()
        return counters

    def snapshot(self) -> dict[str, dict[str, int | float]]:
        """A copy of every stream's counters, safe to keep while the run goes on."""
        return {name: counters.as_json() for name, counters in list(self.by_stream.items())}

    @property
    def requests(self) -> int:
        """Requests sent by the whole run."""
        return sum(c.requests for c in self.by_stream.values())

    @property
    def retries(self) -> int:
        """Attempts repeated by the whole run."""
        return sum(c.retries for c in self.by_stream.values())

    @property
    def rate_limited(self) -> int:
        """429 answers in the whole run."""
        return sum(c.rate_limited for c in self.by_stream.values())
