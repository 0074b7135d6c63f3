"""
The sandbox's fault plan: latency drawn from a seed (sandbox/faults.py).

How imports fare under the sandbox's faults is tests/integration/test_faults.py.
"""

from __future__ import annotations


def test_jittered_latency_keeps_its_mean_with_a_heavy_tail_and_repeats_per_seed():
    from trackly_provider.sandbox.faults import FaultConfig, FaultPlan

    def draws(seed: int) -> list[float]:
        plan = FaultPlan(FaultConfig(latency_ms=300, latency_jitter=1.0, seed=seed))
        return sorted(plan.latency() for _ in range(20_000))

    waits = draws(7)
    assert 0.285 < sum(waits) / len(waits) < 0.315  # the mean stays 300 ms
    assert waits[len(waits) // 2] < 0.2  # most answers come faster than the mean...
    assert waits[int(len(waits) * 0.99)] > 1.5  # ...and 1% take over five times the mean
    assert draws(7) == waits and draws(8) != waits
    assert FaultPlan(FaultConfig(latency_ms=300)).latency() == 0.3
