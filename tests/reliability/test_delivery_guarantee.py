"""The delivery guarantee (docs/protocol.md, rules R1 to R7) under randomized load and faults.

Seeded rounds of :mod:`.delivery_soak` on two daphne processes and a redis-server of the
test's own: resumable and plain clients join, leave, reconnect and resume while publishers on
both processes push to ``all``, groups and users, with a process killed or Redis restarted
or flushed in some rounds. CI runs a fixed seed for a bounded time; ``make soak-delivery
SEED=... ROUNDS=...`` runs as long as asked.
"""

from __future__ import annotations

import pytest

from tests.reliability.delivery_soak import soak
from tests.require import require

pytestmark = [pytest.mark.e2e]

#: The CI run: this seed, at most this many rounds or this many seconds.
SEED, ROUNDS, BUDGET = 18, 60, 150.0


@pytest.mark.timeout(BUDGET + 240)
async def test_every_client_gets_what_the_rules_promise():
    require("redis-server")
    outcome = await soak(SEED, ROUNDS, BUDGET)
    assert outcome.rounds, "no round ran"
    assert not outcome.violations, outcome.report
