"""The corrections file: hand-written files load, decisions are checked against the frozen set,
and two reviewers appending at once lose nothing."""

from __future__ import annotations

import csv
import multiprocessing
from pathlib import Path

import pytest

from audits.corrections import (
    HEADER,
    HEADER_LINE,
    Decision,
    append_decisions,
    check_corrections,
    corrections_file,
    latest_decisions,
    read_corrections,
)
from audits.datasets import hash_files, load_dataset
from audits.errors import AuditError
from tests.builders import make_manifest

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture
def image_set(tmp_path: Path):
    return load_dataset(make_manifest(tmp_path / "data", CLASSES, per_class=3))


def _decision(image_set, rel: str, **kw) -> Decision:
    row = image_set.items.set_index("path").loc[rel]
    sha = hash_files(image_set)[list(image_set.items["path"]).index(rel)]
    fields = {"decision": "keep", "reviewer": "ann", "time": "2026-12-01T09:30:00Z", **kw}
    return Decision(rel, sha, row["label"], **fields)


def test_corrections_file_beside_the_set(tmp_path: Path) -> None:
    assert corrections_file(tmp_path / "held.csv", "manifest") == tmp_path / "held.corrections.csv"
    assert corrections_file(tmp_path, "imagefolder") == tmp_path / "corrections.csv"


def test_hand_written_file_loads_crlf_bom_quotes_and_formulas(tmp_path: Path) -> None:
    f = tmp_path / "m.corrections.csv"
    rows = [
        HEADER_LINE,
        'img/a.png,abc,cat,relabel,dog,"Doe, Jane","two\r\nlines, a comma",2026-12-01T09:30:00Z',
        "",
        'img\\b.png,def,dog,exclude,,=HYPERLINK("x"),+1,2026-12-01T10:00:00+00:00',
        "img/c.png,123,fox,keep,,@bob,-2,2026-12-01T11:00:00Z",
    ]
    f.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    frame = read_corrections(f)
    assert list(frame.columns) == [*HEADER, "line"]
    assert frame["path"].tolist() == ["img/a.png", "img/b.png", "img/c.png"]
    assert frame["reviewer"].tolist() == ["Doe, Jane", '=HYPERLINK("x")', "@bob"]
    assert frame["reason"].tolist() == ["two\r\nlines, a comma", "+1", "-2"]  # kept as text
    # A quoted field spanning two lines: the next row's line number is still the file's line.
    assert frame["line"].tolist() == [2, 5, 6]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("path,sha256,label\n", "header must be exactly"),
        (
            HEADER_LINE + "\na.png,x,cat,maybe,,ann,,2026-12-01T09:30:00Z\n",
            "line 2: decision 'maybe'",
        ),
        (HEADER_LINE + "\na.png,x,cat,relabel,,ann,,2026-12-01T09:30:00Z\n", "needs new_label"),
        (HEADER_LINE + "\na.png,x,cat,keep,,ann,,2026-12-01 09:30\n", "not UTC ISO 8601"),
        (HEADER_LINE + "\na.png,x,cat,keep,,ann,,2026-12-01T09:30:00+02:00\n", "not UTC"),
        (HEADER_LINE + "\na.png,x,cat,keep,ann\n", "line 2: 5 fields"),
        (HEADER_LINE + '\na.png,x,cat,keep,,"ann,,2026-12-01T09:30:00Z\n', "line 2: not valid CSV"),
    ],
)
def test_bad_rows_are_refused_naming_the_line(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "c.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(AuditError, match=needle) as err:
        read_corrections(f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_latest_decision_wins(tmp_path: Path, image_set) -> None:
    f = tmp_path / "c.csv"
    append_decisions(f, [_decision(image_set, "img/cat_0.png", decision="exclude")])
    append_decisions(
        f, [_decision(image_set, "img/cat_0.png", decision="relabel", new_label="dog")]
    )
    latest = latest_decisions(read_corrections(f))
    assert latest[["path", "decision", "new_label"]].values.tolist() == [
        ["img/cat_0.png", "relabel", "dog"]
    ]


def test_check_corrections_names_every_kind_of_stale_row(tmp_path: Path, image_set) -> None:
    hashes = hash_files(image_set)
    good = _decision(image_set, "img/dog_1.png", decision="relabel", new_label="fox")
    bad = [
        Decision("img/wolf.png", "0" * 64, "cat", "keep", time="2026-12-01T09:30:00Z"),
        _decision(image_set, "img/cat_1.png", decision="exclude"),
        _decision(image_set, "img/fox_0.png", decision="relabel", new_label="wolf"),
    ]
    bad[1] = Decision(**{**bad[1].__dict__, "sha256": "f" * 64})
    f = tmp_path / "c.csv"
    append_decisions(f, [good])
    check_corrections(image_set, read_corrections(f), hashes, CLASSES, f)  # a good file passes
    append_decisions(f, [*bad, Decision(**{**good.__dict__, "old_label": "fox"})])
    with pytest.raises(AuditError) as err:
        check_corrections(image_set, read_corrections(f), hashes, CLASSES, f)
    message = str(err.value)
    assert message.startswith(f"{f}: 4 decision(s) do not match the frozen set")
    assert "line 3 'img/wolf.png': not in the set" in message
    assert "line 4 'img/cat_1.png': sha256 no longer matches the file" in message
    assert "line 5 'img/fox_0.png': new_label 'wolf' is not a known class" in message
    assert "line 6 'img/dog_1.png': old_label 'fox' but the set says 'dog'" in message
    # Without known classes a new class name is accepted (only the other three are refused).
    with pytest.raises(AuditError, match="3 decision"):
        check_corrections(image_set, read_corrections(f), hashes, None, f)


def test_check_corrections_shows_five_rows_and_the_count(tmp_path: Path, image_set) -> None:
    f = tmp_path / "c.csv"
    append_decisions(
        f,
        [
            Decision(f"img/x{i}.png", "0" * 64, "cat", "keep", time="2026-12-01T09:30:00Z")
            for i in range(8)
        ],
    )
    with pytest.raises(AuditError) as err:
        check_corrections(image_set, read_corrections(f), hash_files(image_set), CLASSES, f)
    message = str(err.value)
    assert "8 decision(s)" in message and message.count("not in the set") == 5 and "…" in message


def test_append_refuses_a_file_with_another_header(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("path,label\n")
    with pytest.raises(AuditError, match="header must be exactly"):
        append_decisions(f, [Decision("a.png", "x", "cat", "keep")])
    assert f.read_text() == "path,label\n"


def test_append_after_a_hand_edit_without_final_newline(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text(HEADER_LINE + "\r\na.png,x,cat,keep,,ann,,2026-12-01T09:30:00Z")
    append_decisions(f, [Decision("b.png", "y", "dog", "exclude", time="2026-12-01T09:31:00Z")])
    assert read_corrections(f)["path"].tolist() == ["a.png", "b.png"]


def _writer(file: str, who: str, n: int, start) -> None:
    start.wait()
    for i in range(0, n, 3):  # appends of 1-3 rows, with long reasons so writes are large
        batch = [
            Decision(
                f"img/{who}-{j}.png",
                f"{j:064x}",
                "cat",
                "relabel",
                "dog",
                who,
                f"{who} reason {j} " + "x" * 500,
            )
            for j in range(i, min(i + 3, n))
        ]
        append_decisions(file, batch)


def test_two_reviewers_at_once_lose_nothing(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    n = 400
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(f), who, n, start)) for who in ("ann", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    frame = read_corrections(f)  # every row parses: none torn
    assert len(frame) == 2 * n
    for who in ("ann", "bob"):
        mine = frame[frame["reviewer"] == who]
        assert mine["path"].tolist() == [f"img/{who}-{j}.png" for j in range(n)]  # in order
        assert all(r == f"{who} reason {j} " + "x" * 500 for j, r in enumerate(mine["reason"]))
    with f.open(newline="") as fh:
        assert sum(1 for row in csv.reader(fh) if row == list(HEADER)) == 1  # one header
