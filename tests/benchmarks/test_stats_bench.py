"""``teleconsult bench stats``: a database it seeded is timed again under the same key file."""

from __future__ import annotations

from pathlib import Path

from benchmarks.stats import run
from records.demo_seed import DemoShape


async def test_a_seeded_database_is_timed_again_with_its_key_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    keys = tmp_path / "records.keys"
    # A clinician for each of the four services.
    shape = DemoShape(outlets=3, clinicians=4, consultations=60, days=30)
    first = await run(url, shape, 1, keys)
    again = await run(url, shape, 1, keys)
    assert first["seeded_s"] is not None and again["seeded_s"] is None
    assert first["consultations"] == again["consultations"] == 60
    year = [result["queries"]["year"]["consultations"] for result in (first, again)]
    assert year[0] == year[1] > 0
