"""The Python API (``from audits import audit``) is the CLI's engine: same predictions, same
metrics, ordinary run folders the CLI reads."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from statsmodels.stats.proportion import proportion_confint
from torch.utils.data import Dataset

from audits.errors import AuditError
from tests.builders import TINY_NET, make_manifest, make_model_dir

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["cat", "dog", "fox"]
FAST = {"explain": False, "integrity": False}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audits", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _module(model_dir: Path) -> torch.nn.Module:
    """The card's network rebuilt in memory from its source and weights."""
    namespace: dict = {}
    exec(TINY_NET, namespace)
    net = namespace["TinyNet"](num_classes=len(CLASSES))
    net.load_state_dict(load_file(str(model_dir / "weights.safetensors")))
    return net.eval()


class Pictures(Dataset):
    """(PIL image or CHW float tensor, label index) from a manifest's rows."""

    def __init__(self, manifest: Path, as_tensor: bool = False) -> None:
        self.root = manifest.parent
        self.rows = pd.read_csv(manifest)
        self.as_tensor = as_tensor

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = self.rows.iloc[i]
        image = Image.open(self.root / row["path"]).convert("RGB")
        if self.as_tensor:
            image = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
        return image, CLASSES.index(row["label"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    model_dir = make_model_dir(root / "model", classes=CLASSES)
    manifest = make_manifest(root / "data", CLASSES, per_class=6)
    store = root / "cli-store"
    done = _cli(
        "run", "--model", str(model_dir), "--data", str(manifest), "--store", str(store),
        "--no-explain", "--no-integrity", "--quiet", "--device", "cpu",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli_run = Path(done.stdout.strip().splitlines()[-1])
    return model_dir, manifest, cli_run


def _run_json(path: Path) -> dict:
    return json.loads((path / "audit.json").read_text())


@pytest.mark.parametrize("as_tensor", [False, True])
def test_in_memory_module_on_a_dataset_equals_the_cli(demo, tmp_path, as_tensor):
    from audits import audit

    model_dir, manifest, cli_run = demo
    net = _module(model_dir)
    net.train()  # the API evaluates in eval mode and gives the module back as it was
    result = audit(
        net,
        Pictures(manifest, as_tensor),
        classes=CLASSES,
        input_size=32,
        mean=[0.5] * 3,
        std=[0.25] * 3,
        name="tiny-mem",
        store=tmp_path / "store",
        device="cpu",
        **FAST,
    )
    assert net.training
    cli = _run_json(cli_run)
    api = _run_json(result.path)
    assert api["metrics"] == cli["metrics"]
    cli_table = pd.read_parquet(cli_run / "predictions.parquet")
    assert result.predictions["pred"].tolist() == cli_table["pred"].tolist()
    assert result.predictions["label"].tolist() == cli_table["label"].tolist()
    np.testing.assert_array_equal(
        np.load(result.path / "probabilities.npy"), np.load(cli_run / "probabilities.npy")
    )
    # The in-memory identity: name/version given or defaulted, weights hashed from the tensors.
    model = api["model"]
    assert (model["name"], model["version"], model["dir"]) == ("tiny-mem", "0", None)
    digest = hashlib.sha256()
    for key, tensor in net.state_dict().items():
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    assert model["weights_sha256"] == digest.hexdigest()
    assert model["architecture"].endswith("TinyNet")
    # A Dataset is materialised once as PNGs + manifest under the store's .inputs folder.
    data_path = Path(api["dataset"]["path"])
    assert data_path.parent.parent == tmp_path / "store" / ".inputs"
    assert len(pd.read_csv(data_path)) == len(cli_table)
    # The typed views agree with the stored record.
    assert result.metrics.accuracy == cli["metrics"]["accuracy"]
    assert result.per_class.loc["dog", "support"] == 6
    assert result.confusion.loc["cat"].sum() == 6
    assert result.confusion.values.tolist() == cli["metrics"]["confusion"]["matrix"]


def test_dataframe_input_absolute_and_with_root(demo, tmp_path):
    from audits import audit

    model_dir, manifest, cli_run = demo
    frame = pd.read_csv(manifest)[["path", "label"]]
    relative = audit(model_dir, frame, root=manifest.parent, store=tmp_path / "a", **FAST)
    absolute = audit(
        model_dir,
        frame.assign(path=[str(manifest.parent / p) for p in frame["path"]]),
        store=tmp_path / "b",
        **FAST,
    )
    cli = _run_json(cli_run)["metrics"]
    assert _run_json(relative.path)["metrics"] == cli
    assert _run_json(absolute.path)["metrics"] == cli
    assert Path(_run_json(absolute.path)["dataset"]["path"]).parent == manifest.parent / "img"


def test_load_run_round_trip_and_save_is_listed_by_the_cli(demo, tmp_path):
    from audits import audit, load_run

    model_dir, _, _ = demo
    net = _module(model_dir)
    result = audit(
        net,
        Pictures(demo[1]),
        classes=CLASSES,
        input_size=(32, 32),
        mean=[0.5] * 3,
        std=[0.25] * 3,
        **FAST,
    )  # a temporary store
    again = load_run(result.path)
    assert again.metrics == result.metrics
    pd.testing.assert_frame_equal(again.predictions, result.predictions)
    store = tmp_path / "kept"
    saved = result.save(store)
    assert saved == store / result.path.name
    listed = _cli("list", "--store", str(store), "--json")
    assert listed.returncode == 0, listed.stderr
    assert result.path.name in listed.stdout
    # The copy's data set path points at the data copied along into the new store.
    data_path = Path(_run_json(saved)["dataset"]["path"])
    assert data_path.is_file() and store / ".inputs" in data_path.parents
    assert load_run(saved).metrics == result.metrics
    with pytest.raises(AuditError, match="exists already"):
        result.save(store)


def test_compare_gives_the_cli_verdict(demo, tmp_path):
    from audits import audit, compare

    model_dir, manifest, cli_run = demo
    other_dir = make_model_dir(tmp_path / "other", classes=CLASSES, seed=3, version="2.0.0")
    b = audit(other_dir, manifest, store=tmp_path / "s", **FAST)
    comparison = compare(cli_run, b)
    cli = _cli("compare", str(cli_run), str(b.path), "--no-speed", "--no-save", "--quiet")
    assert cli.returncode in (0, 1), cli.stderr
    assert comparison.summary == cli.stdout.strip().splitlines()[-1]
    assert comparison.verdict == ("promote" if cli.returncode == 0 else "hold")
    assert comparison.record.verdict == comparison.verdict
    assert b.compare(b).verdict == "hold"  # no gain over itself
    assert comparison.verdict in comparison._repr_html_()


def test_repr_html_escapes_a_hostile_name(demo, tmp_path):
    from audits import audit

    model_dir, manifest, _ = demo
    hostile = "<script>alert(1)</script>"
    result = audit(
        _module(model_dir),
        Pictures(manifest),
        classes=CLASSES,
        input_size=32,
        name=hostile,
        **FAST,
    )
    page = result._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "accuracy" in page


class Bad(Dataset):
    def __init__(self, item):
        self.item = item

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return self.item


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ((torch.zeros(3, 4, 8, 8), 0), r"item 0 is an image of shape \(3, 4, 8, 8\)"),
        ((torch.full((3, 8, 8), 2.5), 0), "outside 0..1"),
        ((torch.zeros(3, 8, 8), 7), "label 7, outside 0..2"),
        ((torch.zeros(3, 8, 8), "wolf"), "label 'wolf', not one of classes"),
        (torch.zeros(3, 8, 8), "must yield \\(image, label\\)"),
    ],
)
def test_bad_dataset_is_one_clear_error(demo, item, message):
    from audits import audit

    with pytest.raises(AuditError, match=message) as err:
        audit(_module(demo[0]), Bad(item), classes=CLASSES, input_size=32, **FAST)
    assert "\n" not in str(err.value)


def test_missing_classes_and_input_size_are_refused(demo):
    from audits import audit

    with pytest.raises(AuditError, match="classes: missing"):
        audit(_module(demo[0]), Pictures(demo[1]), input_size=32, **FAST)
    with pytest.raises(AuditError, match="input_size: missing"):
        audit(_module(demo[0]), Pictures(demo[1]), classes=CLASSES, **FAST)
    with pytest.raises(AuditError, match="outputs \\(1, 3\\) per batch but classes lists 2"):
        audit(_module(demo[0]), Pictures(demo[1]), classes=["a", "b"], input_size=32, **FAST)


def test_the_facade_is_lazy_and_keeps_the_sub_packages():
    code = (
        "import sys, audits.metrics, audits.compare, audits.drift\n"
        "assert 'auditapp.api' not in sys.modules and 'auditapp' not in sys.modules\n"
        "from audits.compare import compare_runs\n"
        "assert audits.compare.compare_runs is compare_runs\n"
        "from audits import audit, compare\n"
        "assert callable(audit) and callable(compare) and 'auditapp.api' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_claims_and_drift_go_through_the_cli_engines(demo, tmp_path):
    from audits import audit, check_claims, drift

    model_dir, manifest, cli_run = demo
    result = audit(model_dir, manifest, store=tmp_path / "s", **FAST)
    claims = [{"kind": "at_least", "value": v, "min_support": 1} for v in (0.2, 0.5, 0.9)]
    results = check_claims(result, claims)
    table = result.predictions
    low, high = proportion_confint(table["correct"].sum(), len(table), 0.05, method="wilson")
    expected = [
        "supported" if low > v else "contradicted" if high < v else "not enough data"
        for v in (0.2, 0.5, 0.9)
    ]
    assert [r.verdict for r in results] == expected
    assert [r.measured for r in results] == [pytest.approx(table["correct"].mean())] * 3
    assert len(list(result.path.glob("claims-*/claims.json"))) == 1
    # An in-memory module and the same network's folder give the same drift statistics.
    shifted = make_manifest(tmp_path / "cur", CLASSES, per_class=6, seed=9)
    kw = {"permutations": 200, "store": tmp_path / "d"}
    from_folder = drift(model_dir, manifest, shifted, **kw)
    in_memory = drift(
        _module(model_dir),
        manifest,
        shifted,
        classes=CLASSES,
        input_size=32,
        mean=[0.5] * 3,
        std=[0.25] * 3,
        **kw,
    )
    a, b = from_folder.record, in_memory.record
    assert (a.embedding.mmd2, a.embedding.p_value) == (b.embedding.mmd2, b.embedding.p_value)
    assert a.drift == b.drift == from_folder.drifted


def test_a_registry_reference_with_weights_equals_the_module(demo, tmp_path):
    from audits import audit
    from audits.tv import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES)).eval()
    weights = tmp_path / "resnet18.safetensors"
    save_file(net.state_dict(), str(weights))
    common = {"classes": CLASSES, "input_size": 32, "store": tmp_path / "s", **FAST}
    by_name = audit("torchvision:resnet18", demo[1], weights=weights, **common)
    in_memory = audit(net, demo[1], **common)
    assert by_name.record.model.architecture == "torchvision:resnet18"
    assert by_name.record.model.code_library.startswith("torchvision ")
    assert Path(by_name.record.model.dir).parent == tmp_path / "s" / ".inputs"
    np.testing.assert_array_equal(by_name.run.probabilities, in_memory.run.probabilities)
    assert by_name.metrics == in_memory.metrics
    with pytest.raises(AuditError, match="needs weights="):
        audit("torchvision:resnet18", demo[1], **common)
