"""Snapshot files through the CLI: every table present, content errors exit 2, BOM, JSON types."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import runner

from snowcheck.records import TABLES

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "snapshot.json"


run = runner(width=300)


def write(tmp_path: Path, document: Any, *, bom: bool = False) -> str:
    path = tmp_path / "snapshot.json"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + json.dumps(document).encode())
    return str(path)


def example() -> Any:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("missing", TABLES)
def test_a_snapshot_without_one_of_the_seven_tables_is_refused_naming_it(
    tmp_path: Path, missing: str
) -> None:
    document = example()
    del document["tables"][missing]
    code, out, err = run("check", "--snapshot", write(tmp_path, document))
    assert code == 2
    assert out == ""
    assert f"field 'tables' lacks {missing}: a snapshot holds all seven tables" in err
    assert err.count("\n") == 1


def test_a_snapshot_with_no_tables_names_all_seven(tmp_path: Path) -> None:
    code, _, err = run(
        "check", "--snapshot", write(tmp_path, {"now": "2026-11-25 12:00:00", "tables": {}})
    )
    assert code == 2
    assert f"lacks {', '.join(TABLES)}:" in err


def test_empty_lists_are_tables_without_rows(tmp_path: Path) -> None:
    document = {"now": "2026-11-25 12:00:00", "tables": {table: [] for table in TABLES}}
    code, out, err = run("check", "--snapshot", write(tmp_path, document), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["findings"] == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        pytest.param(lambda d: d.pop("now"), "field 'now' is missing", id="no-now"),
        pytest.param(lambda d: d.update(tables=[]), "should be an object", id="tables-list"),
        pytest.param(
            lambda d: d["tables"].update(incident=[]), "names unknown tables incident", id="unknown"
        ),
        pytest.param(
            lambda d: d["tables"]["sys_user"][0].update(active="yes"),
            "field 'active' should be 'true' or 'false', got 'yes'",
            id="bad-boolean",
        ),
        pytest.param(
            lambda d: d["tables"]["ecc_agent_issue"][0].update(count=-2),
            "field 'count' should be a whole number, got -2",
            id="negative-count",
        ),
        pytest.param(
            lambda d: d["tables"]["ecc_agent_issue"][0].update(count=True),
            "field 'count' should be a whole number, got True",
            id="boolean-count",
        ),
        pytest.param(
            lambda d: d["tables"]["sys_user"][0].update(active=1),
            "field 'active' should be 'true' or 'false', got 1",
            id="number-active",
        ),
    ],
)
def test_every_content_error_exits_2_in_one_line(
    tmp_path: Path, change: Callable[[Any], None], says: str
) -> None:
    document = example()
    change(document)
    code, out, err = run("check", "--snapshot", write(tmp_path, document))
    assert code == 2
    assert out == ""
    assert says in err
    assert err.count("\n") == 1


def test_invalid_json_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text('{"now": ', encoding="utf-8")
    code, _, err = run("check", "--snapshot", str(path))
    assert code == 2
    assert "is not valid JSON" in err


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    plain = run("check", "--snapshot", str(EXAMPLE), "--format", "json")
    code, out, err = run(
        "check", "--snapshot", write(tmp_path, example(), bom=True), "--format", "json"
    )
    assert code == 0, err
    assert json.loads(out)["findings"] == json.loads(plain[1])["findings"]


def _as_json_types(document: Any) -> None:
    """Every boolean and number field as JSON's own type instead of the Table API's strings."""
    for row in document["tables"]["sys_user"]:
        for field in ("active", "locked_out"):
            if field in row and row[field] in ("true", "false"):
                row[field] = row[field] == "true"
    for row in document["tables"]["ecc_agent_issue"]:
        if row.get("count", "") != "":
            row["count"] = int(row["count"])


def test_booleans_and_numbers_read_as_json_types_or_api_strings_alike(tmp_path: Path) -> None:
    document = example()
    _as_json_types(document)
    assert any(
        row["count"] == 2 or isinstance(row["count"], int)
        for row in document["tables"]["ecc_agent_issue"]
    )
    assert any(row["active"] is True for row in document["tables"]["sys_user"])
    code, out, err = run("check", "--snapshot", write(tmp_path, document), "--format", "json")
    assert code == 0, err
    plain = json.loads(run("check", "--snapshot", str(EXAMPLE), "--format", "json")[1])
    typed = json.loads(out)
    assert typed["findings"] == plain["findings"]
    assert typed["changes"] == plain["changes"]
    assert any(change["count_before"] for change in typed["changes"])
