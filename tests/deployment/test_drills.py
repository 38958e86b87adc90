"""The fault drills on the real deployment (tests/deployment/drills.py): each ends with no
duplicate and no loss. Runs after the deployment test, in the same xdist worker (one
deployment at a time on this machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.deployment.conftest import skip_unless_deployable
from tests.deployment.drills import Drill, drill_deployment, run_drills, table

pytestmark = pytest.mark.xdist_group("deployment")


@pytest.fixture(scope="module")
def drills() -> Iterator[dict[str, Drill]]:
    skip_unless_deployable()
    with drill_deployment(ROOT / ".artifacts" / "drills-test") as (deployment, sandbox):
        rows = run_drills(deployment, sandbox, report=lambda row: None)
        print(table(rows))
        yield {row.name.split(" (")[0]: row for row in rows}


@pytest.mark.parametrize(
    "name",
    [
        "Celery worker SIGKILLed while a send is in flight",
        "triggerer killed and restarted during an approval wait",
        "scheduler killed within a second of a run's failure",
        "two schedulers at once",
        "Redis restarted mid-run",
        "IMKIT stores after the 1 s read timeout",
    ],
)
def test_no_duplicate_and_no_loss(drills: dict[str, Drill], name: str) -> None:
    row = drills[name]
    assert (row.duplicates, row.lost) == (0, 0), row
    assert row.stored == row.expected, row
