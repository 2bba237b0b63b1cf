"""Paging over real HTTP: small pages, and pages made short by row-level ACLs, read it all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support import PASSWORD, USER, InProcess, demo_data, start

pytestmark = pytest.mark.e2e

# Row-level ACLs hide these rows after the limit: pages come back short while more rows
# exist, with the same X-Total-Count (the client must not stop at a short page).
HIDDEN = {
    "ecc_agent": "name=mid-dr-1^ORname=mid-east-2",
    "sys_user_has_role": "user=f711d7de42c2adf180465b4243814ff3",
}


def _dry_run(cli: InProcess, *args: str) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    data = demo_data()
    data["users"] = {USER: {"password": PASSWORD, "acl_hide": HIDDEN}}
    emu = start(data)
    try:
        result = cli(emu, "--format", "json", *args)
        assert result.code == 0, result.err
        pages = [
            (entry.path.rsplit("/", 1)[-1], int(entry.query.get("sysparm_offset", "0")))
            for entry in emu.log
        ]
        return result.json, pages
    finally:
        emu.stop()


def test_small_and_short_pages_give_the_same_check(cli: InProcess, tmp_path: Path) -> None:
    config = tmp_path / "snowcheck.toml"
    config.write_text("page_size = 2\n", encoding="utf-8")
    whole, whole_pages = _dry_run(cli)
    paged, paged_pages = _dry_run(cli, "--config", str(config))

    assert all(offset == 0 for _, offset in whole_pages)
    # Fourteen MIDs (every one, for the advisories), two per page: offsets 0..12, the
    # hidden rows make some pages short.
    assert sorted(o for t, o in paged_pages if t == "ecc_agent") == [0, 2, 4, 6, 8, 10, 12]
    assert len(paged_pages) > 3 * len(whole_pages)

    for document in (whole, paged):
        document.pop("instance")
        document.pop("now")
        document.pop("since")
        # Two emulators load the scenario's relative times a second apart, and an
        # advisory's detail quotes a time: compare what each advisory is about.
        document["advisories"] = [(a["id"], a["subject"]) for a in document["advisories"]]
    assert paged == whole
    # The hidden MIDs are not seen, the others are (so no page was skipped).
    east = next(f for f in paged["findings"] if f["user"] == "mid.east")
    assert east["down_mid_servers"] == ["mid-east-1", "mid-east-3"]
    dr = next(f for f in paged["findings"] if f["user"] == "mid.dr")
    assert dr["down_mid_servers"] == ["mid-dr-2"]
