"""User text is stored verbatim and shown as itself (issue 14, found 5 and 8).

Rich markup in a model name or a claim prints literally in the terminal and keeps ``list``
working; a run id, store path or reason shown through Streamlit Markdown renders no link.
The Markdown checks render with markdown-it-py (CommonMark, Rich's own dependency), an
implementation independent of the escaping code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from auditapp.cli import main as cli
from dashboard.catalog import Broken, Catalog
from dashboard.markdown import md_code, md_escape
from dashboard.state import resolve
from fixtures.synthetic_store import write_synthetic_run

REPO = Path(__file__).resolve().parents[2]
NAME = "rich[/bold]model [link=https://evil.example]x[/link] [red]"
VERSION = "1.0[/]"
CLAIM = "rich[/bold] claim [link=https://evil.example]click[/link]"
PHISH = "x` [phish](https://evil.example) `"
HOSTILE = [
    PHISH,
    "[phish](https://evil.example)",
    "<https://evil.example>",
    "https://evil.example",
    "www.evil.example",
    "me@evil.example",
    "![img](https://evil.example/a.png)",
    "[ref]: https://evil.example\n[ref]",
    "# heading\n* item",
    "``a`` ` [b](https://evil.example) ```",
    "<a href='https://evil.example'>x</a>",
    "trailing \\",
]


@pytest.fixture(scope="module")
def marked_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store with one audit whose model name and version are Rich markup."""
    store = tmp_path_factory.mktemp("markup") / "store"

    def rename(tmp: Path, meta: dict) -> None:
        meta["model"]["name"], meta["model"]["version"] = NAME, VERSION

    run = write_synthetic_run(store, 4, 120, 0, version="1.0", fill=rename)
    return store, run


def test_list_prints_markup_names_literally(marked_store: tuple[Path, Path]) -> None:
    store, run = marked_store
    env = {**os.environ, "COLUMNS": "400", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "audits", "list", "--store", str(store)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"{NAME} {VERSION}" in done.stdout and run.name in done.stdout


def test_claim_text_with_markup_prints_literally(
    marked_store: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, run = marked_store
    claims = tmp_path / "claims.toml"
    claims.write_text(
        f'[[claim]]\ntext = "{CLAIM}"\nkind = "share_at_least"\nslice = {{ dog = true }}\n'
        'value = "50%"\n'
    )
    monkeypatch.setenv("COLUMNS", "400")
    code = cli(["claims", str(run), str(claims)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert CLAIM in out  # the table cell and the sentence, as typed
    stored = Path(out.strip().splitlines()[-1])
    assert CLAIM in stored.read_text(encoding="utf-8")  # stored verbatim
    # checking the same file again prints the stored results the same way
    assert cli(["claims", str(run), str(claims)]) == 0
    assert CLAIM in capsys.readouterr().out


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_renders_no_markup(text: str) -> None:
    html = MarkdownIt("commonmark").render(md_escape(text))
    assert "<a" not in html and "<img" not in html and "<h1" not in html and "<li" not in html
    visible = " ".join(text.replace("\r", " ").replace("\n", " ").split())
    assert " ".join(_unescape_html(_strip_p(html)).split()) == visible


@pytest.mark.parametrize("text", HOSTILE)
def test_md_code_is_one_code_span_holding_the_text(text: str) -> None:
    html = MarkdownIt("commonmark").render(f"run {md_code(text)} here").strip()
    assert html.count("<code>") == 1 and "<a" not in html
    inner = html.split("<code>", 1)[1].rsplit("</code>", 1)[0]
    assert _unescape_html(inner) == text.replace("\n", " ")


def test_the_run_link_note_renders_no_link(tmp_path: Path) -> None:
    cat = Catalog(store=tmp_path, broken=[Broken("zz[x](https://evil.example)", PHISH)])
    for candidate in (PHISH, "zz[x](https://evil.example)"):
        note = resolve(cat, candidate, None).note
        assert note is not None
        html = MarkdownIt("commonmark").render(note)
        assert "<a" not in html and "evil.example" in html


def _strip_p(html: str) -> str:
    return html.strip().removeprefix("<p>").removesuffix("</p>")


def _unescape_html(text: str) -> str:
    import html

    return html.unescape(text)
