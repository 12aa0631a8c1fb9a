"""What one measured phase recorded: per-client streams, and the figures drawn from them."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

TOKEN_RE = re.compile(r"t\d+ ")


@dataclass
class Stream:
    """One client's reply: when it was asked for, when each chunk came, what it said."""

    t_send: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)  # (arrival, chunk text)
    t_end: float | None = None
    text: str = ""
    final: str | None = None
    error: str | None = None
    marks: dict[str, float] = field(default_factory=dict)  # first arrival of other milestones
    # Wall clock (time.time()) of the send, and for the reply's start and first chunk: (arrival on
    # the socket, when Redis appended it to the chat's stream, from its event id's milliseconds).
    wall_send: float = 0.0
    stamps: dict[str, tuple[float, float]] = field(default_factory=dict)

    def token_times(self) -> list[float]:
        """Arrival time of every token; an event of k tokens is spread evenly over its gap."""
        times: list[float] = []
        prev: float | None = None
        for t, chunk in self.events:
            k = len(TOKEN_RE.findall(chunk))
            if k == 0:
                continue
            if prev is None or k == 1:
                times.extend([t] * k if prev is None else [t])
            else:
                times.extend(prev + (t - prev) * j / k for j in range(1, k + 1))
            prev = t
        return times


@dataclass
class Phase:
    """One measured phase: one or more rounds of N concurrent streams."""

    rounds: list[list[Stream]]
    cpu: dict[str, float]
    expected: str

    def __post_init__(self) -> None:
        self.streams = [s for r in self.rounds for s in r]
        for s in self.streams:
            if s.error is None and s.text != self.expected:
                got = len(TOKEN_RE.findall(s.text))
                s.error = f"mismatch ({got} tokens received)"
            if s.error is None and s.final is not None and s.final != self.expected:
                s.error = "mismatch (final content differs)"

    @property
    def ok(self) -> list[Stream]:
        return [s for s in self.streams if s.error is None]

    def ttft(self) -> list[float]:
        return [s.events[0][0] - s.t_send for s in self.streams if s.events]

    def itl(self) -> list[float]:
        gaps: list[float] = []
        for s in self.streams:
            times = s.token_times()
            gaps.extend(b - a for a, b in zip(times, times[1:]))
        return gaps

    def tokens(self) -> int:
        return sum(len(TOKEN_RE.findall(s.text)) for s in self.streams)

    def wall(self) -> float:
        """Summed over rounds: first request sent to last reply finished."""
        total = 0.0
        for streams in self.rounds:
            sent = [s.t_send for s in streams if s.t_send]
            ends = [s.t_end or (s.events[-1][0] if s.events else s.t_send) for s in streams if s.t_send]
            if sent:
                total += max(ends) - min(sent)
        return total

    def rate(self) -> float:
        wall = self.wall()
        return self.tokens() / wall if wall > 0 else 0.0

    def mark(self, name: str, p: float = 50) -> float:
        """Percentile of the time from send to a milestone (e.g. the POST response, new_message)."""
        return pct([s.marks[name] - s.t_send for s in self.streams if name in s.marks], p)

    def legs(self, p: float = 50) -> dict[str, float]:
        """Where a relayed first token's time goes, in s at percentile `p`: from the send to the
        worker appending `ai_response_start` (the POST, the queue, the job's reads), from there to
        it appending the first chunk (the upstream's first token), and from that append to the
        chunk's arrival on the socket (the relay itself). Stream ids count whole milliseconds, so
        each leg is off by up to 1 ms (the last one reads about 0.5 ms long on average)."""
        done = [s for s in self.streams if "ai_response_start" in s.stamps and "ai_response_chunk" in s.stamps]
        start = [s.stamps["ai_response_start"][1] for s in done]
        chunk = [s.stamps["ai_response_chunk"] for s in done]
        return {"send_to_start": pct([a - s.wall_send for a, s in zip(start, done)], p),
                "start_to_chunk": pct([c[1] - a for a, c in zip(start, chunk)], p),
                "relay_hop": pct([c[0] - c[1] for c in chunk], p)}

    def duration(self, p: float = 50) -> float:
        return pct([s.events[-1][0] - s.events[0][0] for s in self.streams if s.events], p)

    def stream_rates(self) -> list[float]:
        """Each reply's own pace once it started: tokens after the first / first to last token."""
        rates = []
        for s in self.streams:
            times = s.token_times()
            if len(times) > 1 and times[-1] > times[0]:
                rates.append((len(times) - 1) / (times[-1] - times[0]))
        return rates

    def multi_token_events(self) -> int:
        return sum(1 for s in self.streams for _, c in s.events if len(TOKEN_RE.findall(c)) > 1)

    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.streams:
            if s.error:
                kind = s.error.split(":")[0].split(" (")[0]
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
