"""Fault injection for the sandbox: which fault, if any, a request meets (seeded, so tests repeat)."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, fields
from typing import Any

from trackly_provider.trackly_api.limits import MAX_BODY_BYTES

FAULT_KINDS = (
    "reset",
    "html_503",
    "rate_limited",
    "lost_after_commit",
    "html_502_after_commit",
    "contradicting_after_commit",
)


@dataclass
class FaultConfig:
    """Rates (0..1) of each fault per request, plus latency, Retry-After and account state."""

    reset: float = 0.0  # connection reset before the request is processed
    html_503: float = 0.0  # a proxy's HTML 503 page, nothing processed
    rate_limited: float = 0.0  # 429 with Retry-After, nothing processed
    lost_after_commit: float = 0.0  # records stored, then the connection drops with no response
    html_502_after_commit: float = 0.0  # records stored, then an HTML 502 page instead of the counts
    contradicting_after_commit: float = 0.0  # records stored, then a 200 whose error list names one twice
    retry_after: str = "1"
    latency_ms: float = 0.0  # mean added latency per import request
    latency_jitter: float = 0.0  # 0: exactly latency_ms; else the sigma of a log-normal with that mean
    suspended: bool = False  # every call answers 403 with no code
    save_error: float = 0.0  # share of new valid records the server fails to save (code save_error)
    save_error_times: int = 1  # how many times each of those fails before it is saved
    max_body_bytes: int = MAX_BODY_BYTES  # larger bodies get 413 Payload Too Large, as the API's do
    down_after_requests: int | None = None  # after this many import requests, each gets an HTML 503
    seed: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


class FaultPlan:
    """Draws, per request, the fault it meets under the current config."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)
            self._latency_random = random.Random(config.seed + 1)  # latency draws leave faults as they were
            self.injected = dict.fromkeys((*FAULT_KINDS, "save_error"), 0)
            self._save_failures: dict[str, int] = {}

    def latency(self) -> float:
        """Seconds to wait before answering: fixed, or log-normal around the mean (a heavy tail)."""
        mean = self.config.latency_ms / 1000
        sigma = self.config.latency_jitter
        if not sigma or not mean:
            return mean
        with self._lock:
            return mean * math.exp(self._latency_random.gauss(-sigma * sigma / 2, sigma))

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        with self._lock:
            roll = self._random.random()
            for kind in FAULT_KINDS:
                rate = getattr(self.config, kind)
                if roll < rate:
                    self.injected[kind] += 1
                    return kind
                roll -= rate
            return None

    def fails_to_save(self, message_id: str) -> bool:
        """Whether saving this record fails now: the same records whatever the order they come in."""
        config = self.config
        if not config.save_error:
            return False
        with self._lock:
            if random.Random(f"{config.seed}:{message_id}").random() >= config.save_error:
                return False
            failures = self._save_failures.get(message_id, 0)
            if failures >= config.save_error_times:
                return False
            self._save_failures[message_id] = failures + 1
            self.injected["save_error"] += 1
            return True
