"""Hostile-input campaign (issue 14): bad cards, manifests, models, stores and options through the CLI.

Every input is generated in a temporary folder and run through the real command line
(``python -m audits ...`` in a child process, each in its own copy of a small store). Each
outcome is classified:

* ``ok``                   accepted legitimately (exit 0, or exit 1 from a gate)
* ``clear-error``          exit 1 or 2 with exactly one ``error:`` line on stderr, no traceback
* ``unclear-error``        exit 1 or 2 without exactly one ``error:`` line
* ``accepted-bad``         exit 0 where the input must be refused
* ``bug``                  exit 3 ("a bug", traceback in a log file)
* ``traceback-leaked``     "Traceback" anywhere on stdout or stderr
* ``crash``                killed by a signal, negative return code or timeout
* ``run-lost-or-partial``  a ``.tmp-*``/``.stage-*`` folder left in the store, or a file of a
                           pre-existing run changed or gone
* ``code-ran``             a marker file written by hostile code exists

``python bench/fault_campaign.py [--workers 3] [--write]``; ``--write`` replaces the section
"Fault campaign (issue 14)" of bench/RESULTS.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import cpu_name, load_average, make_parser, memory_gib, write_section  # noqa: E402

SECTION = "## Fault campaign (issue 14)"
CLASSES = ["cat", "dog", "fox"]
STEP_TIMEOUT = 180
FAST = ["--no-explain", "--no-integrity", "--workers", "0", "--device", "cpu", "--quiet"]
OUTCOMES = [
    "ok",
    "ok-row-skipped",
    "clear-error",
    "unclear-error",
    "accepted-bad",
    "bug",
    "traceback-leaked",
    "crash",
    "run-lost-or-partial",
    "code-ran",
]


@dataclass
class Workspace:
    """One case's folder: its own store (a copy of the base store), model and data copies."""

    dir: Path
    base: Path

    @property
    def store(self) -> Path:
        return self.dir / "store"

    @property
    def marker(self) -> Path:
        return self.dir / "PWNED"

    def model(self, name: str = "model") -> Path:
        """A fresh copy of the base model folder."""
        dest = self.dir / name
        shutil.copytree(self.base / "model", dest)
        return dest

    def data(self, name: str = "data") -> Path:
        """A fresh copy of the base manifest folder; returns the manifest's path."""
        dest = self.dir / name
        shutil.copytree(self.base / "data", dest)
        return dest / "manifest.csv"

    @property
    def good_data(self) -> Path:
        return self.base / "data" / "manifest.csv"

    @property
    def good_model(self) -> Path:
        return self.base / "model"


@dataclass
class Case:
    """A hostile input: ``setup`` builds it and returns the command lines (argv lists) to run."""

    category: str
    name: str
    setup: Callable[[Workspace], list[list[str]]]
    must_refuse: bool = False  # exit 0 is wrong
    marker_allowed: bool = False  # the user explicitly chose to run this code
    preexec: Callable[[], None] | None = None
    needs_root_mount: str | None = None  # "ro" or "tiny": a tmpfs store
    row_skip: bool = False  # one bad image: the run may go on if it records the row as skipped


@dataclass
class Result:
    case: Case
    outcome: str
    codes: list[int] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0


# --- the base material --------------------------------------------------------------------------


def build_base(base: Path) -> None:
    """A tiny model, a 9-image manifest and a store holding audits of 1.0.0, 1.1.0 (twice)."""
    from tests.builders import make_imagefolder, make_manifest, make_model_dir

    make_model_dir(base / "model", classes=CLASSES)
    make_model_dir(base / "model11", classes=CLASSES, seed=1, version="1.1.0")
    make_manifest(base / "data", CLASSES, per_class=3)
    make_imagefolder(base / "folder", CLASSES, per_class=2)
    store = base / "store"
    for model in ("model", "model11", "model11"):
        proc = cli(["run", "--model", str(base / model), "--data", str(base / "data" / "manifest.csv"),
                    "--store", str(store), *FAST])  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"base store: {proc.stderr}")
        time.sleep(1.1)  # distinct 'created' seconds: the re-audit of 1.1.0 is the newest
    runs = sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith("."))
    (base / "runs.json").write_text(json.dumps([p.name for p in runs]))


def cli(
    args: list[str], store: Path | None = None, preexec=None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if store is not None:
        env["AUDIT_STORE"] = str(store)
    return subprocess.run(
        [sys.executable, "-m", "audits", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        preexec_fn=preexec,
        env=env,
        check=False,
    )


# --- helpers to write hostile inputs ------------------------------------------------------------


def card(model: Path, **fields: object) -> Path:
    """Rewrite top-level scalar fields of ``model.toml`` (a value of None deletes the line)."""
    path = model / "model.toml"
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        if key in fields and "=" in line and not line.startswith("["):
            value = fields.pop(key)
            if value is not None:
                out.append(f"{key} = {value}")
            continue
        out.append(line)
    # keys not present yet go before the first table
    first_table = next(i for i, line in enumerate(out) if line.startswith("["))
    extra = [f"{k} = {v}" for k, v in fields.items() if v is not None]
    out[first_table:first_table] = extra
    path.write_text("\n".join(out) + "\n")
    return model


def replace_in_card(model: Path, old: str, new: str) -> Path:
    path = model / "model.toml"
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))
    return model


def run_args(model: Path, data: Path, ws: Workspace, *extra: str) -> list[str]:
    return [
        "run",
        "--model",
        str(model),
        "--data",
        str(data),
        "--store",
        str(ws.store),
        *FAST,
        *extra,
    ]


def evil_py(path: Path, marker: Path) -> Path:
    """A module that writes the marker when imported and defines a valid TinyNet."""
    from tests.builders import TINY_NET

    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n" + TINY_NET)
    return path


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --- cases: model cards --------------------------------------------------------------------------


def card_cases() -> list[Case]:
    cases: list[Case] = []

    def hostile(name: str, build: Callable[[Workspace, Path], None], **kw) -> None:
        def setup(ws: Workspace, build=build) -> list[list[str]]:
            model = ws.model()
            build(ws, model)
            return [run_args(model, ws.good_data, ws)]

        cases.append(Case("model card", name, setup, **{"must_refuse": True, **kw}))

    def arch(value: str, kwargs: str):
        def build(ws: Workspace, model: Path) -> None:
            text = (model / "model.toml").read_text()
            text = text.replace('architecture = "net.py:TinyNet"', f"architecture = {value}")
            head, _, rest = text.partition("[kwargs]")
            tail = rest[rest.index("[input]") :]
            kw = kwargs.replace("MARKER", str(ws.marker))
            (model / "model.toml").write_text(head + "[kwargs]\n" + kw + "\n\n" + tail)

        return build

    hostile("os:system", arch('"os:system"', 'command = "touch MARKER"'))
    hostile("subprocess:run", arch('"subprocess:run"', 'args = ["touch", "MARKER"]'))
    hostile("subprocess:check_call", arch('"subprocess:check_call"', 'args = ["touch", "MARKER"]'))
    hostile(
        "builtins:eval",
        arch('"builtins:eval"', "source = \"__import__('os').system('touch MARKER')\""),
    )
    hostile(
        "builtins:exec",
        arch('"builtins:exec"', "source = \"__import__('os').system('touch MARKER')\""),
    )
    hostile("pathlib:Path.touch", arch('"pathlib:Path"', 'args = "MARKER"'))
    hostile("torch.hub:load", arch('"torch.hub:load"', 'repo_or_dir = "x/y"\nmodel = "z"'))

    def escape(levels: int):
        def build(ws: Workspace, model: Path) -> None:
            target = model
            for _ in range(levels):
                target = target.parent
            evil_py(target / "evil.py", ws.marker)
            rel = "../" * levels + "evil.py:TinyNet"
            replace_in_card(model, '"net.py:TinyNet"', f'"{rel}"')

        return build

    hostile("architecture ../evil.py", escape(1))
    hostile("architecture ../../evil.py", escape(2))

    def symlink_net(ws: Workspace, model: Path) -> None:
        evil_py(ws.dir / "outside.py", ws.marker)
        (model / "net.py").unlink()
        (model / "net.py").symlink_to(ws.dir / "outside.py")

    hostile("net.py symlinked outside", symlink_net)

    def symlink_dir(ws: Workspace, model: Path) -> None:
        (ws.dir / "outdir").mkdir()
        evil_py(ws.dir / "outdir" / "net.py", ws.marker)
        (model / "pkg").symlink_to(ws.dir / "outdir")
        replace_in_card(model, '"net.py:TinyNet"', '"pkg/net.py:TinyNet"')

    hostile("code folder symlinked outside", symlink_dir)

    def absolute(ws: Workspace, model: Path) -> None:
        evil_py(ws.dir / "abs_net.py", ws.marker)
        replace_in_card(model, '"net.py:TinyNet"', f'"{ws.dir / "abs_net.py"}:TinyNet"')

    # README: model code must live in the model folder (only weights/classes may be absolute)
    hostile("absolute architecture path", absolute)

    def function_builder(ws: Workspace, model: Path) -> None:
        with (model / "net.py").open("a") as f:
            f.write(f"\n\ndef make():\n    import pathlib\n    pathlib.Path({str(ws.marker)!r}).write_text('x')\n"
                    "    return TinyNet()\n")  # fmt: skip
        replace_in_card(model, '"net.py:TinyNet"', '"net.py:make"')

    hostile("plain function builder", function_builder)

    def fields(**values: object):
        return lambda ws, model: card(model, **values)

    hostile("weights ../w.safetensors", lambda ws, m: (shutil.copy(m / "weights.safetensors", ws.dir / "w.safetensors"),
                                                       card(m, weights='"../w.safetensors"')))  # fmt: skip
    hostile("weights symlinked outside", lambda ws, m: (shutil.move(m / "weights.safetensors", ws.dir / "w.safetensors"),
                                                        (m / "weights.safetensors").symlink_to(ws.dir / "w.safetensors")))  # fmt: skip
    cases.append(Case("model card", "weights absolute path (allowed)",
                      lambda ws: [run_args(card(m := ws.model(), weights=f'"{m / "weights.safetensors"}"'),
                                           ws.good_data, ws)]))  # fmt: skip
    hostile("classes = /etc/passwd", fields(classes='"/etc/passwd"'))
    hostile("classes ../classes.txt", lambda ws, m: ((ws.dir / "classes.txt").write_text("cat\ndog\nfox\n"),
                                                     card(m, classes='"../classes.txt"')))  # fmt: skip
    hostile("bad TOML", lambda ws, m: (m / "model.toml").write_text('name = "x\nversion = = 1\n'))
    hostile("empty model.toml", lambda ws, m: (m / "model.toml").write_text(""))
    hostile("missing model.toml", lambda ws, m: (m / "model.toml").unlink())
    hostile(
        "non-UTF-8 model.toml", lambda ws, m: (m / "model.toml").write_bytes(b'name = "\xff\xfe"\n')
    )
    hostile("name = 5", fields(name="5"))
    hostile("version = [1]", fields(version="[1]"))
    hostile("architecture = 3", fields(architecture="3"))
    hostile("weights = true", fields(weights="true"))
    hostile("classes = 7", fields(classes="7"))
    hostile("classes = []", fields(classes="[]"))
    hostile("duplicate classes", fields(classes='["cat", "cat", "fox"]'))
    hostile("classes of numbers", fields(classes="[1, 2, 3]"))
    hostile("target_layer = 5", fields(target_layer="5"))
    hostile("target_layer missing layer", fields(target_layer='"nope.layer"'))
    # accepted: the run folder's name is sanitised (the campaign checks nothing lands outside)
    hostile("name with path traversal", fields(name='"../../escape"'), must_refuse=False)
    hostile("version with slash", fields(version='"1/../../x"'), must_refuse=False)
    hostile("kwargs = string", lambda ws, m: card(replace_in_card(m, "[kwargs]\nnum_classes = 3\nin_channels = 3\n", ""),
                                                  kwargs='"x"'))  # fmt: skip
    hostile(
        "kwargs wrong type",
        lambda ws, m: replace_in_card(m, "num_classes = 3", 'num_classes = "three"'),
    )
    hostile("input = 5", lambda ws, m: (m / "model.toml").write_text(
        (m / "model.toml").read_text().split("[input]")[0] + "input = 5\n"))  # fmt: skip
    hostile(
        "input.size = 'big'", lambda ws, m: replace_in_card(m, "size = [32, 32]", 'size = "big"')
    )
    hostile(
        "input.size huge",
        lambda ws, m: replace_in_card(m, "size = [32, 32]", "size = [100000, 100000]"),
    )
    hostile(
        "input.size negative",
        lambda ws, m: replace_in_card(m, "size = [32, 32]", "size = [-1, 32]"),
    )
    hostile("input.size zero", lambda ws, m: replace_in_card(m, "size = [32, 32]", "size = [0, 0]"))
    hostile(
        "input.channels negative",
        lambda ws, m: replace_in_card(m, "channels = 3\nmean", "channels = -3\nmean"),
    )
    hostile(
        "input.mean string",
        lambda ws, m: replace_in_card(m, "mean = [0.5, 0.5, 0.5]", 'mean = "x"'),
    )
    hostile(
        "input.std zeros",
        lambda ws, m: replace_in_card(m, "std = [0.25, 0.25, 0.25]", "std = [0, 0, 0]"),
    )
    hostile(
        "input.mean wrong length",
        lambda ws, m: replace_in_card(m, "mean = [0.5, 0.5, 0.5]", "mean = [0.5]"),
    )
    hostile("missing weights file", lambda ws, m: (m / "weights.safetensors").unlink())
    hostile("weights of another shape", lambda ws, m: _other_shape_weights(ws, m))
    hostile("truncated safetensors", lambda ws, m: _truncate(m / "weights.safetensors", 200))
    hostile("empty weights file", lambda ws, m: _truncate(m / "weights.safetensors", 0))
    hostile("weights are text", lambda ws, m: (m / "weights.safetensors").write_text("hello"))
    hostile("missing architecture file", fields(architecture='"missing.py:TinyNet"'))
    hostile("missing architecture attr", fields(architecture='"net.py:Nope"'))
    hostile("net.py syntax error", lambda ws, m: (m / "net.py").write_text("def (:\n"))
    hostile(
        "net.py raises at import",
        lambda ws, m: (m / "net.py").write_text("raise RuntimeError('boom')\n"),
    )
    hostile(
        "net.py sys.exit(3) at import",
        lambda ws, m: (m / "net.py").write_text("import sys\nsys.exit(3)\n"),
    )
    hostile(
        "net.py sys.exit(0) at import",
        lambda ws, m: (m / "net.py").write_text("import sys\nsys.exit(0)\n"),
    )

    # pickles
    def pt_weights(payload: Callable[[Workspace, Path], None]):
        def build(ws: Workspace, model: Path) -> None:
            (model / "weights.safetensors").unlink()
            payload(ws, model)
            card(model, weights='"weights.pt"')

        return build

    def evil_pickle(ws: Workspace, model: Path) -> None:
        (model / "weights.pt").write_bytes(pickle.dumps(_Evil(str(ws.marker))))

    def torch_evil(ws: Workspace, model: Path) -> None:
        import torch

        torch.save({"x": _Evil(str(ws.marker))}, model / "weights.pt")

    def whole_module(ws: Workspace, model: Path) -> None:
        # pickled from the model folder, so the pickle refers to the module 'net'
        code = "import torch, net; torch.save(net.TinyNet(), 'weights.pt')"
        subprocess.run([sys.executable, "-c", code], cwd=model, check=True, capture_output=True)

    def state_dict_pt(ws: Workspace, model: Path) -> None:
        import torch
        from safetensors.torch import load_file

        torch.save(load_file(str(ws.good_model / "weights.safetensors")), model / "weights.pt")

    hostile("raw os.system pickle", pt_weights(evil_pickle))
    hostile("torch.save os.system pickle", pt_weights(torch_evil))
    hostile("whole-module pickle", pt_weights(whole_module))
    cases.append(Case("model card", "state-dict .pt (weights_only)",
                      lambda ws: [run_args(_with(ws, pt_weights(state_dict_pt)), ws.good_data, ws)]))  # fmt: skip
    cases.append(Case("model card", "os.system pickle with --allow-pickle (user's choice)",
                      lambda ws: [run_args(_with(ws, pt_weights(torch_evil)), ws.good_data, ws, "--allow-pickle")],
                      must_refuse=True, marker_allowed=True))  # fmt: skip
    cases.append(Case("model card", "whole-module pickle with --allow-pickle",
                      lambda ws: [run_args(_with(ws, pt_weights(whole_module)), ws.good_data, ws, "--allow-pickle")]))  # fmt: skip

    # fake compiled formats
    for ext, blob in (
        (".ts", b"PK\x03\x04not a zip"),
        (".pt2", b"garbage"),
        (".onnx", b"\x08\x07garbage"),
    ):

        def fake(ws: Workspace, model: Path, ext=ext, blob=blob) -> None:
            (model / f"model{ext}").write_bytes(blob)
            text = (model / "model.toml").read_text()
            text = text.replace('architecture = "net.py:TinyNet"\n', "")
            text = text.replace('weights = "weights.safetensors"', f'weights = "model{ext}"')
            text = text.replace("[kwargs]\nnum_classes = 3\nin_channels = 3\n", "")
            text = text.replace('target_layer = "features.2"\n', "")
            (model / "model.toml").write_text(text)

        hostile(f"fake {ext} file", fake)

    hostile("drift with os:system card", arch('"os:system"', 'command = "touch MARKER"'))
    cases[-1].setup = _drift_setup(cases[-1].setup)
    return cases


def _with(ws: Workspace, build: Callable[[Workspace, Path], None]) -> Path:
    model = ws.model()
    build(ws, model)
    return model


def _drift_setup(run_setup: Callable[[Workspace], list[list[str]]]):
    def setup(ws: Workspace) -> list[list[str]]:
        argv = run_setup(ws)[0]
        model = argv[argv.index("--model") + 1]
        return [["drift", "--model", model, "--reference", str(ws.good_data), "--current",
                 str(ws.base / "folder"), "--store", str(ws.store), "--device", "cpu", "--workers", "0",
                 "--permutations", "50", "--quiet"]]  # fmt: skip

    return setup


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _other_shape_weights(ws: Workspace, model: Path) -> None:
    from tests.builders import make_model_dir

    other = make_model_dir(ws.dir / "other", classes=["a", "b", "c", "d", "e"])
    shutil.copy(other / "weights.safetensors", model / "weights.safetensors")


# --- cases: model behaviour -----------------------------------------------------------------------


def behaviour_cases() -> list[Case]:
    from tests.faults.faultkit import model_with_forward

    bodies = {
        "forward raises": "        raise RuntimeError('forward failed')\n",
        "forward returns NaN": "        return self.fc(self.pool(self.features(x)).flatten(1)) * float('nan')\n",
        "forward returns Inf": "        return self.fc(self.pool(self.features(x)).flatten(1)) * float('inf')\n",
        "forward wrong class count": "        return torch.zeros(x.shape[0], 5)\n",
        "forward 1-D output": "        return torch.zeros(x.shape[0])\n",
        "forward returns a tuple": "        return (self.fc(self.pool(self.features(x)).flatten(1)),)\n",
        "forward returns a list": "        return [0.1, 0.2]\n",
        "forward wrong batch size": "        return self.fc(self.pool(self.features(x)).flatten(1))[:1]\n",
        "forward calls sys.exit(3)": "        import sys; sys.exit(3)\n",
        "forward calls sys.exit(0)": "        import sys; sys.exit(0)\n",
        "forward raises MemoryError": "        raise MemoryError()\n",
        "forward fails for batch > 1": "        assert x.shape[0] == 1, 'batch > 1'\n"
        "        return self.fc(self.pool(self.features(x)).flatten(1))\n",
        "forward integer dtype": "        return self.fc(self.pool(self.features(x)).flatten(1)).long()\n",
        "forward returns probabilities > 1": "        return torch.full((x.shape[0], 3), 7.0)\n",
    }
    cases = []
    for name, body in bodies.items():

        def setup(ws: Workspace, body=body) -> list[list[str]]:
            model = model_with_forward(ws.dir / "model", body, header="import torch\n")
            return [run_args(model, ws.good_data, ws, "--batch-size", "4")]

        refuse = name not in {"forward returns probabilities > 1", "forward integer dtype"}
        cases.append(Case("model behaviour", name, setup, must_refuse=refuse))
    return cases


# --- cases: manifests and images -----------------------------------------------------------------


def manifest_cases() -> list[Case]:
    import pandas as pd
    from PIL import Image

    cases: list[Case] = []

    def hostile(
        name: str, build: Callable[[Workspace, Path], Path | None], refuse: bool = True
    ) -> None:
        def setup(ws: Workspace, build=build) -> list[list[str]]:
            manifest = ws.data()
            target = build(ws, manifest) or manifest
            return [run_args(ws.good_model, target, ws)]

        cases.append(Case("manifest / images", name, setup, must_refuse=refuse))

    def edit(fn: Callable[[pd.DataFrame, Workspace, Path], pd.DataFrame]):
        def build(ws: Workspace, manifest: Path) -> None:
            frame = pd.read_csv(manifest)
            fn(frame, ws, manifest).to_csv(manifest, index=False)

        return build

    def set_path(value_fn: Callable[[Workspace, Path], str]):
        def fn(frame, ws, manifest):
            frame.loc[0, "path"] = value_fn(ws, manifest)
            return frame

        return edit(fn)

    (Path(tempfile.gettempdir())).mkdir(exist_ok=True)
    hostile("path ../../etc/passwd", set_path(lambda ws, m: "../../../../../../etc/passwd"))
    hostile("absolute path /etc/hostname", set_path(lambda ws, m: "/etc/hostname"))

    def outside_image(ws: Workspace) -> Path:
        Image.new("RGB", (24, 24), (200, 10, 10)).save(ws.dir / "outside.png")
        return ws.dir / "outside.png"

    def symlinked_file(ws: Workspace, manifest: Path) -> None:
        link = manifest.parent / "img" / "link.png"
        link.symlink_to(outside_image(ws))
        edit(
            lambda f, w, m: f.assign(path=[*f.path[:1].map(lambda _: "img/link.png"), *f.path[1:]])
        )(ws, manifest)

    def symlinked_dir(ws: Workspace, manifest: Path) -> None:
        (ws.dir / "outdir").mkdir()
        Image.new("RGB", (24, 24)).save(ws.dir / "outdir" / "x.png")
        (manifest.parent / "sub").symlink_to(ws.dir / "outdir")
        edit(lambda f, w, m: f.assign(path=["sub/x.png", *f.path[1:]]))(ws, manifest)

    hostile("symlinked image outside root", symlinked_file)
    hostile("symlinked folder outside root", symlinked_dir)

    def imagefolder_symlink(ws: Workspace, manifest: Path) -> Path:
        root = ws.dir / "folder"
        shutil.copytree(ws.base / "folder", root)
        (ws.dir / "outcls").mkdir()
        for i in range(2):
            Image.new("RGB", (24, 24), (i, 0, 0)).save(ws.dir / "outcls" / f"o{i}.png")
        shutil.rmtree(root / "fox")
        (root / "fox").symlink_to(ws.dir / "outcls")
        return root

    hostile("ImageFolder class folder symlinked outside", imagefolder_symlink)
    hostile("missing path column", edit(lambda f, w, m: f.drop(columns=["path"])))
    hostile("missing label column", edit(lambda f, w, m: f.drop(columns=["label"])))

    def duplicate_columns(ws: Workspace, manifest: Path) -> None:
        text = manifest.read_text().splitlines()
        header, rows = text[0], text[1:]
        manifest.write_text(
            "\n".join([header + ",label"] + [r + "," + r.split(",")[1] for r in rows]) + "\n"
        )

    hostile("duplicate label column", duplicate_columns)
    hostile(
        "pred and meta_pred columns",
        edit(lambda f, w, m: f.assign(pred="cat", meta_pred="dog")),
        refuse=False,
    )
    hostile("empty manifest (0 bytes)", lambda ws, m: m.write_bytes(b""))
    hostile("header only", lambda ws, m: m.write_text(m.read_text().splitlines()[0] + "\n"))
    hostile(
        "non-UTF-8 manifest",
        lambda ws, m: m.write_bytes(m.read_bytes().replace(b"fan", b"f\xff\xfen")),
    )
    hostile("formula-injection cells", edit(lambda f, w, m: f.assign(
        group="=HYPERLINK(\"http://evil\",\"x\")", source="=cmd|' /C calc'!A0")), refuse=False)  # fmt: skip
    hostile(
        "Rich markup in metadata",
        edit(lambda f, w, m: f.assign(group="[bold red]x[/]", source="[/]")),
        refuse=False,
    )
    hostile("label not in classes", edit(lambda f, w, m: f.assign(label=["wolf", *f.label[1:]])))
    hostile("path is a folder", set_path(lambda ws, m: "img"))
    cases[-1].row_skip = True
    hostile("path missing file", set_path(lambda ws, m: "img/nope.png"))
    cases[-1].row_skip = True
    hostile("duplicate rows", edit(lambda f, w, m: pd.concat([f, f.iloc[:2]])), refuse=False)
    hostile("very long path", set_path(lambda ws, m: "a" * 5000 + ".png"))
    cases[-1].row_skip = True
    hostile("NUL byte in path", set_path(lambda ws, m: "img/a\x00b.png"))
    cases[-1].row_skip = True

    def image(name: str, write: Callable[[Path], None]) -> None:
        def build(ws: Workspace, manifest: Path, write=write) -> None:
            first = manifest.parent / pd.read_csv(manifest).path[0]
            write(first)

        hostile(name, build)
        cases[-1].row_skip = True

    image("0-byte image", lambda p: p.write_bytes(b""))
    image("truncated PNG", lambda p: p.write_bytes(p.read_bytes()[:60]))
    image("text file as image", lambda p: p.write_text("not an image"))
    image("decompression bomb", lambda p: Image.new("1", (20000, 20000)).save(p))
    image("1x1 image", lambda p: Image.new("RGB", (1, 1)).save(p))
    cases[-1].must_refuse = False
    image("16-bit grayscale image", lambda p: Image.new("I;16", (24, 24)).save(p))
    cases[-1].must_refuse = False

    def truncated_parquet(ws: Workspace, manifest: Path) -> Path:
        out = manifest.with_suffix(".parquet")
        pd.read_csv(manifest).to_parquet(out)
        _truncate(out, 100)
        return out

    hostile("truncated parquet manifest", truncated_parquet)
    hostile("data path missing", lambda ws, m: ws.dir / "nothing.csv")
    hostile(
        "data is a .txt file", lambda ws, m: (ws.dir / "x.txt").write_text("x") or ws.dir / "x.txt"
    )
    return cases


# --- cases: damaged stores -------------------------------------------------------------------------


def store_cases(base: Path) -> list[Case]:
    runs = json.loads((base / "runs.json").read_text())
    old, new, victim = (
        runs  # 1.0.0, 1.1.0, newer re-audit of 1.1.0 (sorted by the timestamp prefix)
    )

    def set_field(key: str, value: object):
        def damage(run: Path) -> None:
            meta = json.loads((run / "audit.json").read_text())
            meta[key] = value
            (run / "audit.json").write_text(json.dumps(meta))

        return damage

    damages: dict[str, Callable[[Path], None]] = {
        "audit.json = []": lambda r: (r / "audit.json").write_text("[]"),
        'metrics = "x"': set_field("metrics", "x"),
        "created = 12345": set_field("created", 12345),
        "truncated audit.json": lambda r: _truncate(r / "audit.json", 300),
        "truncated predictions.parquet": lambda r: _truncate(r / "predictions.parquet", 100),
        "missing audit.json": lambda r: (r / "audit.json").unlink(),
    }
    commands: dict[str, Callable[[Workspace], list[str]]] = {
        "list": lambda ws: ["list", "--store", str(ws.store)],
        "export healthy": lambda ws: [
            "export",
            old,
            "--store",
            str(ws.store),
            "--out",
            str(ws.dir / "out"),
            "--format",
            "json,csv,html",
        ],  # fmt: skip
        "compare name@version": lambda ws: [
            "compare",
            "tiny@1.0.0",
            "tiny@1.1.0",
            "--store",
            str(ws.store),
            "--no-speed",
            "--quiet",
        ],  # fmt: skip
        "export damaged": lambda ws: [
            "export",
            str(ws.store / victim),
            "--out",
            str(ws.dir / "out"),
            "--format",
            "json",
        ],  # fmt: skip
    }
    cases = []
    for dname, damage in damages.items():
        for cname, command in commands.items():

            def setup(ws: Workspace, damage=damage, command=command) -> list[list[str]]:
                damage(ws.store / victim)
                return [command(ws)]

            cases.append(
                Case(
                    "damaged store",
                    f"{dname} / {cname}",
                    setup,
                    must_refuse=cname == "export damaged",
                )
            )
    return cases


# --- cases: options, markup, environment ------------------------------------------------------------


def option_cases(base: Path) -> list[Case]:
    runs = json.loads((base / "runs.json").read_text())
    cases = []
    bad_run = {
        "--explain-method nope": ["--explain-method", "nope"],
        "--explain-max -3": ["--explain-max", "-3"],
        "--explain-baseline -1": ["--explain-baseline", "-1"],
        "--workers -1": ["--workers", "-1"],
        "--batch-size 0": ["--batch-size", "0"],
        "--batch-size -5": ["--batch-size", "-5"],
        "--device tpu": ["--device", "tpu"],
        "--device cuda:x": ["--device", "cuda:x"],
    }
    for name, extra in bad_run.items():

        def setup(ws: Workspace, extra=extra) -> list[list[str]]:
            argv = ["run", "--model", str(ws.good_model), "--data", str(ws.good_data), "--store", str(ws.store),
                    "--quiet", "--no-integrity", *extra]  # fmt: skip
            return [argv]

        cases.append(Case("options", f"run {name}", setup, must_refuse=True))
    others = {
        "explain --method nope": lambda ws: [
            "explain",
            str(ws.store / runs[0]),
            "--method",
            "nope",
        ],
        "explain --max -1": lambda ws: ["explain", str(ws.store / runs[0]), "--max", "-1"],
        "compare --alpha 5": lambda ws: [
            "compare",
            runs[0],
            runs[1],
            "--store",
            str(ws.store),
            "--alpha",
            "5",
            "--no-speed",
        ],
        "compare --tolerance -1": lambda ws: [
            "compare",
            runs[0],
            runs[1],
            "--store",
            str(ws.store),
            "--tolerance",
            "-1",
        ],
        "drift --permutations 0": lambda ws: [
            "drift",
            "--model",
            str(ws.good_model),
            "--reference",
            str(ws.good_data),
            "--current",
            str(ws.base / "folder"),
            "--store",
            str(ws.store),
            "--permutations",
            "0",
        ],  # fmt: skip
        "drift --alpha 2": lambda ws: [
            "drift",
            "--model",
            str(ws.good_model),
            "--reference",
            str(ws.good_data),
            "--current",
            str(ws.base / "folder"),
            "--store",
            str(ws.store),
            "--alpha",
            "2",
        ],  # fmt: skip
        "export --format docx": lambda ws: [
            "export",
            runs[0],
            "--store",
            str(ws.store),
            "--format",
            "docx",
            "--out",
            str(ws.dir / "out"),
        ],  # fmt: skip
        "export unknown run id": lambda ws: [
            "export",
            "nope-run",
            "--store",
            str(ws.store),
            "--out",
            str(ws.dir / "o"),
        ],
        "compare unknown name@version": lambda ws: [
            "compare",
            "tiny@9.9",
            "tiny@1.0.0",
            "--store",
            str(ws.store),
        ],
    }
    for name, command in others.items():
        cases.append(
            Case("options", name, lambda ws, command=command: [command(ws)], must_refuse=True)
        )
    return cases


def markup_cases() -> list[Case]:
    names = {
        "name rich[/bold]model": '"rich[/bold]model"',
        "name [link=http://evil]x[/link]": '"[link=http://evil.example]x[/link]"',
        "name <script>": '"<script>alert(1)</script>"',
    }
    cases = []
    for label, value in names.items():

        def setup(ws: Workspace, value=value) -> list[list[str]]:
            model = card(ws.model(), name=value)
            return [run_args(model, ws.good_data, ws)[:-1] + ["--no-explain"],  # keep the summary (not --quiet)
                    ["list", "--store", str(ws.store)],
                    ["export", _newest_marker(ws), "--store", str(ws.store), "--out", str(ws.dir / "out"),
                     "--format", "html,json"]]  # fmt: skip

        cases.append(Case("markup", label, setup))
    return cases


def _newest_marker(ws: Workspace) -> str:
    return "@NEWEST@"  # replaced by the newest run folder once the run step has written it


def _limit_fsize() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def environment_cases(base: Path) -> list[Case]:
    runs = json.loads((base / "runs.json").read_text())
    cases = [
        Case("environment", "ulimit -f 8 KiB: run",
             lambda ws: [run_args(ws.good_model, ws.good_data, ws)], preexec=_limit_fsize, must_refuse=True),
        Case("environment", "ulimit -f 8 KiB: run with workers 2 + integrity",
             lambda ws: [["run", "--model", str(ws.good_model), "--data", str(ws.good_data), "--store",
                          str(ws.store), "--workers", "2", "--device", "cpu", "--quiet", "--no-explain"]],
             preexec=_limit_fsize, must_refuse=True),
        Case("environment", "ulimit -f 8 KiB: export",
             lambda ws: [["export", runs[0], "--store", str(ws.store), "--out", str(ws.dir / "out")]],
             preexec=_limit_fsize, must_refuse=True),
        Case("environment", "read-only store (tmpfs ro)", lambda ws: [run_args(ws.good_model, ws.good_data, ws)],
             needs_root_mount="ro", must_refuse=True),
        Case("environment", "full disk (16 KiB tmpfs store)", lambda ws: [run_args(ws.good_model, ws.good_data, ws)],
             needs_root_mount="tiny", must_refuse=True),
        Case("environment", "read-only store (chmod)", _chmod_setup, must_refuse=True),
    ]  # fmt: skip
    return cases


def _chmod_setup(ws: Workspace) -> list[list[str]]:
    ws.store.chmod(0o555)
    return [run_args(ws.good_model, ws.good_data, ws)]


# --- running and classifying ----------------------------------------------------------------------


def snapshot(store: Path) -> dict[str, str]:
    """sha256 of every file under the store's run folders (the store's own files too)."""
    out = {}
    if not store.exists():
        return out
    for path in store.rglob("*"):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(store))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _skipped_row(store: Path, before: dict[str, str]) -> tuple[str, str]:
    """ok-row-skipped when the new run records the bad image in ``skipped`` with a reason."""
    old = {k.split("/", 1)[0] for k in before}
    for run in store.iterdir():
        if run.name not in old and (run / "audit.json").is_file():
            skipped = json.loads((run / "audit.json").read_text()).get("skipped") or []
            if skipped:
                return "ok-row-skipped", f"recorded as skipped: {skipped[0]}"
    return "accepted-bad", "exit 0 and no skipped row recorded"


def _leftovers(store: Path) -> list[str]:
    if not store.exists():
        return []
    return sorted(p.name for p in store.iterdir() if p.name.startswith((".tmp-", ".stage-")))


def _mount(folder: Path, kind: str) -> bool:
    if os.geteuid() != 0:
        return False
    opts = "size=16k" if kind == "tiny" else "size=1m"
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True
    ).returncode:
        return False
    if kind == "ro":
        remount = ["mount", "-o", "remount,ro", str(folder)]
        if subprocess.run(remount, capture_output=True).returncode:
            subprocess.run(["umount", str(folder)], capture_output=True)
            return False
    return True


def run_case(case: Case, base: Path, root: Path, index: int) -> Result:
    ws = Workspace(root / f"case{index:03d}", base)
    ws.dir.mkdir()
    mounted = False
    if case.needs_root_mount:
        ws.store.mkdir()
        mounted = _mount(ws.store, case.needs_root_mount)
        if not mounted:
            return Result(case, "skipped", detail="needs root and a tmpfs mount")
    else:
        shutil.copytree(base / "store", ws.store, symlinks=True)
    started = time.perf_counter()
    try:
        try:
            steps = case.setup(ws)
        except Exception as exc:  # a campaign bug, not the program's
            return Result(case, "setup-failed", detail=f"{type(exc).__name__}: {exc}")
        if case.name == "read-only store (chmod)" and os.geteuid() == 0:
            return Result(case, "skipped", detail="running as root: permissions do not bind")
        before = snapshot(ws.store)
        codes, details, worst = [], [], "ok"
        for argv in steps:
            if "@NEWEST@" in argv:
                newest = max((p for p in ws.store.iterdir() if p.is_dir() and not p.name.startswith(".")),
                             key=lambda p: p.name)  # fmt: skip
                argv = [str(newest) if a == "@NEWEST@" else a for a in argv]
            outcome, code, detail = _one(case, argv, ws)
            codes.append(code)
            details.append(detail)
            if OUTCOMES.index(outcome) > OUTCOMES.index(worst):
                worst = outcome
        after = snapshot(ws.store)
        if worst == "accepted-bad" and case.row_skip:
            worst, reason = _skipped_row(ws.store, before)
            details = [reason]
        lost = [k for k, v in before.items() if after.get(k) != v and not k.startswith(".")]
        left = _leftovers(ws.store)
        if lost or left:
            worst = "run-lost-or-partial"
            details.append(f"changed/gone: {lost[:5]} leftovers: {left}")
        if ws.marker.exists() and not case.marker_allowed:
            worst = "code-ran"
            details.append(f"marker {ws.marker} written")
        elif ws.marker.exists():
            details.append("marker written (allowed: the user's explicit choice)")
        return Result(
            case, worst, codes, " | ".join(d for d in details if d), time.perf_counter() - started
        )
    finally:
        if mounted:
            subprocess.run(["umount", str(ws.store)], capture_output=True)
        if ws.store.exists():
            ws.store.chmod(0o755)


def _one(case: Case, argv: list[str], ws: Workspace) -> tuple[str, int, str]:
    try:
        proc = cli(argv, store=ws.store, preexec=case.preexec)
    except subprocess.TimeoutExpired:
        return "crash", -999, f"timeout after {STEP_TIMEOUT}s: {argv[0]}"
    code, err, out = proc.returncode, proc.stderr, proc.stdout
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    short = f"{argv[0]} rc={code}: " + (
        errors[0][:300] if errors else err.strip().splitlines()[-1][:300] if err.strip() else ""
    )
    if code < 0:
        return "crash", code, short + f" (signal {-code})"
    if "Traceback" in err or "Traceback" in out:
        return "traceback-leaked", code, short + " :: " + err[-600:]
    if code == 3:
        return "bug", code, short
    if code == 0:
        bad = case.must_refuse and argv[0] not in ("list",)
        return ("accepted-bad" if bad else "ok"), code, f"{argv[0]} exit 0 (stored)" if bad else ""
    if code == 1 and not errors:
        return "ok", code, ""  # a gate said no (compare hold)
    if code in (1, 2) and len(errors) == 1:
        return "clear-error", code, short
    return "unclear-error", code, short + " :: " + err[-400:]


def all_cases(base: Path) -> list[Case]:
    return (card_cases() + behaviour_cases() + manifest_cases() + store_cases(base) + option_cases(base)
            + markup_cases() + environment_cases(base))  # fmt: skip


def report(results: list[Result], seconds: float, root: Path | None = None) -> str:
    """A table per category, the totals, and every outcome that is neither ok nor a clear error."""
    lines = []
    categories = list(dict.fromkeys(r.case.category for r in results))
    shown = [
        o for o in [*OUTCOMES, "skipped", "setup-failed"] if any(r.outcome == o for r in results)
    ]
    lines.append("| category | inputs | " + " | ".join(shown) + " |")
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in shown) + " |")
    for cat in categories:
        counts = Counter(r.outcome for r in results if r.case.category == cat)
        n = sum(counts.values())
        lines.append(f"| {cat} | {n} | " + " | ".join(str(counts.get(o, 0)) for o in shown) + " |")
    total = Counter(r.outcome for r in results)
    lines.append(
        f"| **total** | **{len(results)}** | "
        + " | ".join(f"**{total.get(o, 0)}**" for o in shown)
        + " |"
    )
    lines.append("")
    tried = len(results) - total.get("skipped", 0) - total.get("setup-failed", 0)
    lines.append(
        f"Inputs tried: **{tried}**; ok: {total.get('ok', 0)}; clear errors: {total.get('clear-error', 0)}; "
        f"tracebacks leaked: **{total.get('traceback-leaked', 0)}**; crashes: **{total.get('crash', 0)}**; "
        f"runs lost or partial: **{total.get('run-lost-or-partial', 0)}**; code ran: **{total.get('code-ran', 0)}**; "
        f"bugs (exit 3): {total.get('bug', 0)}; unclear errors: {total.get('unclear-error', 0)}; "
        f"accepted but should be refused: {total.get('accepted-bad', 0)}; skipped: {total.get('skipped', 0)}. "
        f"Wall time {seconds:.0f} s."
    )
    odd = [r for r in results if r.outcome not in ("ok", "clear-error")]
    if odd:
        lines.append("")
        lines.append("Outcomes other than ok / clear error:")
        lines.append("")
        for r in odd:
            detail = r.detail.replace("\n", " ")
            if root is not None:
                detail = detail.replace(str(root), "<tmp>")
            detail = detail if len(detail) < 300 else detail[:300] + "…"
            lines.append(
                f"- `{r.outcome}` — {r.case.category}: {r.case.name} (exit {r.codes}): {detail}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--workers", type=int, default=3, help="cases run at once (default 3)")
    parser.add_argument(
        "--only", default="", help="run only cases whose category or name contains this"
    )
    parser.add_argument(
        "--write", action="store_true", help="replace the section in bench/RESULTS.md"
    )
    parser.add_argument("--verbose", action="store_true", help="print every case's outcome")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-campaign-") as tmp:
        root = Path(tmp)
        base = root / "base"
        build_base(base)
        cases = [c for c in all_cases(base) if args.only in f"{c.category} {c.name}"]
        print(f"{len(cases)} inputs", file=sys.stderr)
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [pool.submit(run_case, c, base, root, i) for i, c in enumerate(cases)]
            results = []
            for f in futures:
                res = f.result()
                results.append(res)
                if args.verbose:
                    print(f"{res.outcome:20s} {res.case.category}: {res.case.name} {res.codes} {res.detail[:200]}",
                          file=sys.stderr)  # fmt: skip
            # a hostile name or path that escaped its case folder would land here
            strays = sorted(
                p.name
                for p in root.iterdir()
                if p.name not in ("base", "evil.py") and not p.name.startswith("case")
            )
    seconds = time.perf_counter() - started
    text = report(results, seconds, root)
    text += f"\n\nFiles or folders that escaped their case folder: {strays or 'none'}."
    print(text)
    if args.write:
        machine = (f"{cpu_name(platform.processor() or 'unknown CPU')}, {os.cpu_count()} cores, "
                   f"{memory_gib() or 0:.0f} GiB, load average {load_average():.1f}, "
                   f"{'root' if os.geteuid() == 0 else 'non-root'}")  # fmt: skip
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = (f"{SECTION}\n\n`python bench/fault_campaign.py --workers {args.workers} --write` on {machine}, "
                f"{date}. Each input is generated in a temporary folder and run through `python -m audits` "
                "in a child process against its own copy of a small store (audits of tiny@1.0.0, tiny@1.1.0 "
                "and a newer re-audit of 1.1.0, the one the damaged-store cases damage). Outcomes: `ok`, "
                "`clear-error` (exit 1/2, one `error:` line), `unclear-error`, `accepted-bad` (exit 0 where a "
                "refusal is due), `bug` (exit 3), `traceback-leaked`, `crash` (signal/timeout), "
                "`run-lost-or-partial` (a `.tmp-*`/`.stage-*` left, or a pre-existing run's file changed) and "
                "`code-ran` (a hostile marker file written).\n\n")  # fmt: skip
        write_section(SECTION, head + text)


if __name__ == "__main__":
    main()
