"""The sweep page in a real browser: the trials' table fills and their curves are drawn while
the sweep runs, with nothing loaded from another origin and no script error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import upload
from tests.e2e.test_browser import Visit, browser  # noqa: F401  (the fixture)
from tests.e2e.test_sweeps import counter_npz, counter_sweep, submit_sweep  # noqa: F401
from tests.services import Service


@pytest.fixture
def visit(browser: Any, embedded_service: Service) -> Iterator[Visit]:  # noqa: F811
    opened = Visit(browser, embedded_service)
    yield opened
    opened.close()


def test_the_sweep_page_shows_its_trials_and_their_curves(
    visit: Visit,
    embedded_service: Service,
    counter_npz: Path,  # noqa: F811
) -> None:
    with embedded_service.client() as client:
        sweep_id = submit_sweep(client, counter_sweep(upload(client, counter_npz)["id"]))
    page = visit.open(f"/sweeps/{sweep_id}")
    # Rows come in without a reload; the page follows the sweep to its end.
    page.wait_for_function(
        "document.querySelectorAll('#trials tbody tr[data-trial]').length === 3"
        " && document.getElementById('state').textContent === 'succeeded'",
        timeout=120_000,
    )
    states = page.locator("#trials tbody tr td:nth-child(2)").all_inner_texts()
    assert states == ["succeeded", "pruned", "pruned"]
    page.wait_for_selector("#curves .uplot canvas")
    legend = page.locator("#curves .u-legend").inner_text()
    assert "#0 succeeded" in legend and "#1 pruned" in legend
    listing = visit.open("/sweeps")
    assert listing.locator(f'#sweeps a[href="/sweeps/{sweep_id}"]').count() == 1
