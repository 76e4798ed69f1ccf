"""relabel: corrections → a new frozen set with lineage; audits carry it; compare across versions.

The planted-flips test: a real labelled set (sklearn's digits as PNGs) audited with a fixed
model (a logistic regression fitted by sklearn, as a linear layer), a copy with labels flipped,
corrections that undo the flips, ``relabel``, and the child's metrics equal the clean set's.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from auditapp.pipeline.audit import run_audit
from audits.compare import compare_runs
from audits.corrections import Decision, append_decisions, corrections_file
from audits.datasets import freeze, load_dataset, read_freeze
from audits.errors import AuditError
from audits.hashing import file_sha256
from audits.relabel import relabel
from audits.store import load_run
from reports.present.lineage import lineage_sentence
from tests.faults.faultkit import run_cli

N_IMAGES = 300
FLIPPED = [3, 17, 40, 41, 77, 100, 123, 150, 201, 222, 250, 299]  # rows whose label is flipped
SKIP = ("explain", "integrity", "embedding_map")
WHEN = "2026-12-01T09:30:00Z"
HOSTILE = "<b>rev2</b> *x* [y](http://e.com)"  # a reviewer name is data: never markup

NET = '''
from torch import nn


class Linear(nn.Module):
    """A logistic regression on the 8x8 pixels."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''


def _pixels(images: np.ndarray) -> np.ndarray:
    """Digits (0..16) as the 8-bit grey values written to the PNGs."""
    return np.round(images * 255 / 16).astype(np.uint8)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("digits")
    data = load_digits()
    images, target = _pixels(data.images[:N_IMAGES]), data.target[:N_IMAGES]
    classes = [str(k) for k in range(10)]
    clean = root / "clean"
    (clean / "img").mkdir(parents=True)
    rows = []
    for i, (img, y) in enumerate(zip(images, target, strict=True)):
        Image.fromarray(img, mode="L").save(clean / "img" / f"{i:04d}.png")
        rows.append({"path": f"img/{i:04d}.png", "label": str(y), "writer": f"w{i % 7}"})
    pd.DataFrame(rows).to_csv(clean / "manifest.csv", index=False)
    # The model sees pixel/255 (mean 0, std 1): fit the regression on exactly that.
    features = images.reshape(len(images), -1) / 255.0
    lr = LogisticRegression(max_iter=2000).fit(features, target)
    model = root / "model"
    model.mkdir()
    (model / "net.py").write_text(NET)
    save_file(
        {
            "fc.weight": torch.tensor(
                np.ascontiguousarray(lr.coef_), dtype=torch.float32
            ).contiguous(),
            "fc.bias": torch.tensor(lr.intercept_, dtype=torch.float32).contiguous(),
        },
        str(model / "weights.safetensors"),
    )
    (model / "model.toml").write_text(
        textwrap.dedent(
            f"""\
            name = "digits"
            version = "1.0.0"
            architecture = "net.py:Linear"
            weights = "weights.safetensors"
            classes = {json.dumps(classes)}
            code_commit = "abc1234"

            [input]
            size = [8, 8]
            channels = 1
            mean = [0.0]
            std = [1.0]
            """
        )
    )
    # The test copy with planted flips: the same images, some labels moved to the next digit.
    flipped = root / "flipped"
    shutil.copytree(clean / "img", flipped / "img")
    frame = pd.read_csv(clean / "manifest.csv", dtype=str)
    frame.loc[FLIPPED, "label"] = [str((int(v) + 1) % 10) for v in frame.loc[FLIPPED, "label"]]
    frame.to_csv(flipped / "manifest.csv", index=False)
    for m in (clean / "manifest.csv", flipped / "manifest.csv"):
        freeze(load_dataset(m))
    store = root / "store"
    predicted = lr.predict(features)
    return {
        "root": root,
        "model": model,
        "clean": clean / "manifest.csv",
        "flipped": flipped / "manifest.csv",
        "store": store,
        "target": target,
        "predicted": predicted,
        "clean_run": run_audit(model, clean / "manifest.csv", store=store, skip=SKIP),
        "flipped_run": run_audit(model, flipped / "manifest.csv", store=store, skip=SKIP),
    }


def _undo_flips(digits: dict) -> Path:
    """Corrections beside the flipped copy that relabel each flipped row to its true digit."""
    flipped = digits["flipped"]
    items = load_dataset(flipped).items
    decisions = [
        Decision(
            items["path"][i],
            file_sha256(flipped.parent / items["path"][i]),
            items["label"][i],
            "relabel",
            str(digits["target"][i]),
            "expert",
            "planted flip undone",
            WHEN,
        )
        for i in FLIPPED
    ]
    keep = Decision(
        items["path"][5], file_sha256(flipped.parent / items["path"][5]), items["label"][5], "keep"
    )
    file = corrections_file(flipped, "manifest")
    append_decisions(file, [*decisions, Decision(**{**keep.__dict__, "time": WHEN})])
    return file


@pytest.fixture(scope="module")
def child(digits: dict) -> dict:
    _undo_flips(digits)
    out = digits["flipped"].with_name("manifest.v2.csv")
    result = relabel(digits["flipped"], out)
    run = run_audit(digits["model"], out, store=digits["store"], skip=SKIP)
    return {"manifest": out, "result": result, "run": run}


def test_undoing_planted_flips_gives_the_clean_metrics_exactly(digits: dict, child: dict) -> None:
    clean = load_run(digits["clean_run"]).audit.metrics
    flipped = load_run(digits["flipped_run"]).audit.metrics
    fixed = load_run(child["run"]).audit.metrics
    # The clean run against an independent computation (sklearn on the same regression).
    y, p = digits["target"], digits["predicted"]
    assert clean.accuracy == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert clean.confusion.matrix == confusion_matrix(y, p, labels=range(10)).tolist()
    recalls = recall_score(y, p, labels=range(10), average=None)
    assert [c.recall for c in clean.per_class] == pytest.approx(recalls.tolist(), abs=1e-12)
    assert flipped.accuracy < clean.accuracy  # the flips did hurt
    assert flipped.confusion.matrix != clean.confusion.matrix
    # After relabel: accuracy, per-class and confusion exactly the clean set's.
    assert fixed.accuracy == clean.accuracy
    assert fixed.balanced_accuracy == clean.balanced_accuracy
    assert fixed.confusion.matrix == clean.confusion.matrix
    assert [c.model_dump() for c in fixed.per_class] == [c.model_dump() for c in clean.per_class]
    assert fixed.model_dump() == clean.model_dump()


def test_relabel_writes_a_frozen_child_with_lineage(digits: dict, child: dict) -> None:
    out: Path = child["manifest"]
    parent = read_freeze(load_dataset(digits["flipped"]))
    record = read_freeze(load_dataset(out))
    lineage = record["lineage"]
    corrections = corrections_file(digits["flipped"], "manifest")
    assert lineage["parent_fingerprint"] == parent["fingerprint"]
    assert lineage["parent_source"] == "manifest.csv"  # relative to the new manifest's folder
    assert lineage["corrections_file"] == "manifest.corrections.csv"
    assert lineage["corrections_sha256"] == file_sha256(corrections)
    assert (lineage["n_relabelled"], lineage["n_excluded"], lineage["n_kept"]) == (12, 0, 1)
    assert lineage["reviewers"] == ["expert"]
    assert lineage["generation"] == 2 and lineage["parent_n_images"] == N_IMAGES
    assert lineage["first_decision"] == WHEN
    assert lineage["last_decision"] >= WHEN
    # Same files, metadata kept, labels as the clean set's; the parent's manifest untouched.
    child_items = load_dataset(out).items
    clean_items = load_dataset(digits["clean"]).items
    assert child_items.equals(clean_items)
    assert child_items.columns.tolist() == ["path", "label", "writer"]
    assert record["fingerprint"] == read_freeze(load_dataset(digits["clean"]))["fingerprint"]
    assert load_dataset(digits["flipped"]).items["label"][3] != clean_items["label"][3]
    # The audit of the child carries the lineage.
    stored = load_run(child["run"]).audit.dataset.lineage
    assert stored is not None and stored.parent_fingerprint == parent["fingerprint"]
    assert stored.corrections_sha256 == lineage["corrections_sha256"]


def test_lineage_sentence(child: dict) -> None:
    lineage = load_run(child["run"]).audit.dataset.lineage
    fp = lineage.parent_fingerprint[:12]
    assert lineage_sentence(lineage) == (
        f"Held-out set v2 = v1 (fingerprint {fp}, manifest.csv) + 12 relabelled, 0 excluded, "
        f"1 confirmed by 1 reviewer (expert), {lineage.last_decision[:10]}"
    )
    assert lineage_sentence(None) is None
    many = {
        **lineage.model_dump(),
        "reviewers": ["a", "b", "c", "d"],
        "first_decision": "2026-11-30T10:00:00Z",
        "last_decision": "2026-12-01T10:00:00Z",
        "n_kept": 0,
        "n_excluded": 1234,
    }
    assert lineage_sentence(many).endswith(
        "+ 12 relabelled, 1,234 excluded by 4 reviewers (a, b, c and 1 more), "
        "2026-11-30 to 2026-12-01"
    )


def test_cover_names_the_lineage(child: dict) -> None:
    from audits.related import bundle
    from reports.sections.cover import cover

    run = load_run(child["run"])
    rows = {kv.label: kv.value for kv in cover(run, bundle(run)).identity}
    assert rows["Data lineage"] == lineage_sentence(run.audit.dataset.lineage)


def test_relabel_into_another_folder_links_the_same_files(digits: dict, child: dict) -> None:
    out = digits["root"] / "elsewhere" / "v3" / "manifest.csv"
    result = relabel(child["manifest"], out, corrections=_v3_corrections(digits, child))
    assert result.n_linked == N_IMAGES - 1 and result.n_copied == 0
    items = load_dataset(out).items
    assert (out.parent / items["path"][0]).samefile(child["manifest"].parent / items["path"][0])
    assert result.lineage["parent_source"] == "../../flipped/manifest.v2.csv"
    assert result.lineage["generation"] == 3
    assert (result.lineage["n_relabelled"], result.lineage["n_excluded"]) == (1, 1)


def _v3_corrections(digits: dict, child: dict) -> Path:
    """One relabel and one exclusion on the child (the grandchild's corrections)."""
    manifest = child["manifest"]
    items = load_dataset(manifest).items
    file = digits["root"] / "v3.corrections.csv"
    if not file.exists():
        sha = [file_sha256(manifest.parent / items["path"][i]) for i in (0, 1)]
        append_decisions(
            file,
            [
                Decision(items["path"][0], sha[0], items["label"][0], "exclude", "", HOSTILE),
                Decision(items["path"][1], sha[1], items["label"][1], "relabel", "7", HOSTILE),
            ],
        )
    return file


def test_compare_refuses_parent_and_child_unless_across_corrections(
    digits: dict, child: dict
) -> None:
    parent, kid = load_run(digits["flipped_run"]), load_run(child["run"])
    with pytest.raises(AuditError, match="two versions of one held-out set.*--across-corrections"):
        compare_runs(parent, kid)
    doc, aligned = compare_runs(parent, kid, across_corrections=True)
    block = doc["across_corrections"]
    assert block["ancestor"] == "RUN_A" and block["generations"] == 1
    assert (block["n_label_changed"], block["n_only_a"], block["n_only_b"]) == (12, 0, 0)
    assert block["n_aligned"] == len(aligned.frame) == N_IMAGES - 12
    assert set(aligned.frame["path"]).isdisjoint({f"img/{i:04d}.png" for i in FLIPPED})
    assert any(n.startswith("compared across corrections") for n in doc["notes"])
    assert doc["overall"]["diff"] == 0  # the same model on the shared rows
    # Reversed order: RUN_A is the child.
    doc, _ = compare_runs(kid, parent, across_corrections=True)
    assert doc["across_corrections"]["ancestor"] == "RUN_B"
    # Unrelated sets (neither made from the other) are refused as before.
    with pytest.raises(AuditError, match="different held-out sets"):
        compare_runs(load_run(digits["clean_run"]), parent, across_corrections=True)
    # The child equals the clean set file for file and label for label: the same fingerprint.
    doc, _ = compare_runs(load_run(digits["clean_run"]), kid)
    assert "across_corrections" not in doc


@pytest.fixture(scope="module")
def grandchild(digits: dict, child: dict) -> Path:
    """The child relabelled again (one exclusion, one relabel), audited."""
    out = digits["root"] / "v3" / "manifest.csv"
    relabel(child["manifest"], out, corrections=_v3_corrections(digits, child))
    return run_audit(digits["model"], out, store=digits["store"], skip=SKIP)


def test_overview_and_html_show_the_lineage_escaped(
    digits: dict, grandchild: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import html

    from dashboard.markdown import md_escape
    from reports.export import export_run
    from tests.test_dashboard_apptest import app, texts

    sentence = lineage_sentence(load_run(grandchild).audit.dataset.lineage)
    assert sentence.startswith("Held-out set v3 = v2") and HOSTILE in sentence
    at = app(digits["store"], monkeypatch, run=grandchild.name)
    assert not at.exception
    assert f":material/account_tree: {md_escape(sentence)}" in texts(at)
    (report,) = export_run(grandchild, ["html"], tmp_path / "out").glob("*-report.html")
    page = report.read_text(encoding="utf-8")
    assert html.escape(sentence, quote=False) in page.replace("&#34;", '"').replace("&#39;", "'")
    assert "<b>rev2</b>" not in page


def test_compare_follows_a_chain_of_versions_through_the_store(
    digits: dict, grandchild: Path
) -> None:
    parent = load_run(digits["flipped_run"])
    doc, aligned = compare_runs(parent, load_run(grandchild), across_corrections=True)
    block = doc["across_corrections"]
    assert block["generations"] == 2 and len(block["chain"]) == 3
    assert (block["n_label_changed"], block["n_only_a"]) == (13, 1)
    assert len(aligned.frame) == N_IMAGES - 14
    # The CLI: refused without the flag (exit 2, the flag named), compared with it.
    refused = run_cli(["compare", str(digits["flipped_run"]), str(grandchild), "--no-speed"])
    assert refused.returncode == 2 and "--across-corrections" in refused.stderr
    done = run_cli(
        [
            "--json",
            "compare",
            str(digits["flipped_run"]),
            str(grandchild),
            "--no-speed",
            "--across-corrections",
        ]
    )
    assert done.returncode in (0, 1), done.stderr
    payload = json.loads(done.stdout)
    assert payload["across_corrections"]["n_aligned"] == N_IMAGES - 14
    stored = json.loads((Path(payload["comparison"]) / "comparison.json").read_text())
    assert stored["across_corrections"]["chain"] == block["chain"]
