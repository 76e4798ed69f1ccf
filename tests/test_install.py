"""The installable package: the wheel's layout and import rewrite, its dependency ranges, the
demo's home when installed, the ``dashboard`` command, and (slow) the built wheel itself,
installed into a fresh venv and run from an empty folder next to a user's own ``reports``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import textwrap
import time
import tomllib
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from audits.version import __version__

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import wheel_layout as layout  # noqa: E402

MODULES = layout.known_modules(REPO)


def rewrite(text: str) -> str:
    return layout.rewrite_source(textwrap.dedent(text), MODULES).text


# --- the import rewrite -------------------------------------------------------------------------


def test_rewrite_moves_every_import_form_of_a_relocated_package():
    src = '''\
        """Docstring naming reports.export stays as written."""
        from __future__ import annotations
        import audits.tv
        from audits.errors import AuditError
        from reports.content import build_content, open_audit
        from reports import (
            FORMATS,
        )
        import dashboard
        import explain.stage as stage
        from . import sibling
        if TYPE_CHECKING:
            from fixtures.plan import Row
        def f():
            from auditapp.pipeline.audit import run_audit
            name = "reports.export"
            prefix = f"auditapp.commands.{name}_cmd"
            words = ("reports.json", "explain", "reports.export failed", "audits.store")
    '''
    out = rewrite(src)
    expected = '''\
        """Docstring naming reports.export stays as written."""
        from __future__ import annotations
        import audits.tv
        from audits.errors import AuditError
        from model_audit.reports.content import build_content, open_audit
        from model_audit.reports import (
            FORMATS,
        )
        import model_audit.dashboard as dashboard
        import model_audit.explain.stage as stage
        from . import sibling
        if TYPE_CHECKING:
            from model_audit.fixtures.plan import Row
        def f():
            from model_audit.auditapp.pipeline.audit import run_audit
            name = "model_audit.reports.export"
            prefix = f"model_audit.auditapp.commands.{name}_cmd"
            words = ("reports.json", "explain", "reports.export failed", "audits.store")
    '''
    assert out == textwrap.dedent(expected)
    # Same lines: tracebacks from the installed package point at the repository's lines.
    assert out.count("\n") == textwrap.dedent(src).count("\n")


def test_rewrite_refuses_a_dotted_import_it_cannot_bind():
    with pytest.raises(layout.LayoutError, match=r"line 1: `import reports.export` cannot"):
        rewrite("import reports.export\n")


def test_every_repository_module_relocates_cleanly():
    """After the rewrite no shipped module imports a relocated package by its bare name."""
    checked = 0
    for rel in layout.source_files(REPO):
        if rel.suffix != ".py" or rel.as_posix().startswith("fixtures/models/"):
            continue
        out = layout.rewrite_source((REPO / rel).read_text(encoding="utf-8"), MODULES, str(rel))
        for node in ast.walk(ast.parse(out.text)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in layout.RELOCATED]
            assert not bad, f"{rel}: {bad}"
        checked += 1
    assert checked > 150


def test_the_wheel_ships_the_data_the_package_reads_and_not_the_demo_data():
    files = {p.as_posix() for p in layout.source_files(REPO)}
    for needed in (
        "audits/runs/schemas/audit.schema.json",
        "reports/templates/report.html.j2",
        "reports/templates/report.css",
        "reports/schema/audit-export.schema.json",
        "dashboard/assets/logo.svg",
        "fixtures/models/car-variants/1.1.0/weights.safetensors",
        "fixtures/models/car-variants/1.1.0/net.py",
        "fixtures/fingerprints.json",
        "streamlit_app.py",
        ".streamlit/config.toml",
    ):
        assert needed in files
    assert not any(f.startswith("fixtures/data/") for f in files)
    assert not any(f.startswith(("tests/", "bench/")) for f in files)
    assert layout.installed_path(Path("reports/pdf.py")) == Path("model_audit/reports/pdf.py")
    assert layout.installed_path(Path("audits/store.py")) == Path("audits/store.py")


# --- dependency ranges --------------------------------------------------------------------------


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_the_pinned_set_satisfies_every_range_in_pyproject():
    """``pip install .[all]`` on the reproducible set (requirements.txt) pulls nothing new."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra, items in project["optional-dependencies"].items():
        reqs += [Requirement(r) for r in items if not r.startswith("model-audit[")]
        assert extra in project["optional-dependencies"]["all"][0] or extra == "all"
    pins = _pins()
    problems = []
    for req in reqs:
        name = req.name.lower().replace("_", "-")
        if name not in pins:
            problems.append(f"{req.name}: not pinned in requirements.txt")
        elif pins[name] not in req.specifier:
            problems.append(f"{req.name}=={pins[name]} is outside {req.specifier}")
    assert not problems, problems
    torch = next(r for r in reqs if r.name == "torch")
    assert "2.13.0" in torch.specifier and "2.14.0" not in torch.specifier
    assert project["scripts"]["model-audit"] == "model_audit.auditapp.cli:main"
    assert not any(
        r.name in ("streamlit", "weasyprint") for r in map(Requirement, project["dependencies"])
    )


# --- the demo's home ----------------------------------------------------------------------------


def test_installed_demo_works_in_a_writable_home_beside_copied_models(tmp_path, monkeypatch):
    from auditapp import demo_home
    from audits.model_card import load_card

    monkeypatch.setenv(demo_home.HOME_ENV, str(tmp_path / "home"))
    home = demo_home.demo_home()
    assert home.data == tmp_path / "home" / "data"
    card = load_card(home.models / "car-variants" / "1.0.0")
    # The card's relative training manifest lands on the generated set in the same home.
    assert card.training_manifest == (home.data / "train_v1" / "manifest.csv").resolve()
    weights = home.models / "car-variants" / "1.0.0" / "weights.safetensors"
    weights.write_bytes(b"stale")  # an older release's copy is replaced, not trusted
    demo_home.demo_home()
    src = demo_home.FIXTURES / "models" / "car-variants" / "1.0.0" / "weights.safetensors"
    assert weights.read_bytes() == src.read_bytes()
    monkeypatch.delenv(demo_home.HOME_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert demo_home.cache_root() == tmp_path / "cache" / "model-audit"
    assert demo_home.is_source_checkout()  # these tests run from the repository


# --- the dashboard command ----------------------------------------------------------------------


def test_dashboard_command_line_carries_the_theme_store_and_address(tmp_path):
    from auditapp.commands import dashboard_cmd

    config = tmp_path / "config.toml"
    config.write_text('[theme]\nbase = "light"\n[theme.sidebar]\nbackgroundColor = "#F6F7F9"\n'
                      "[client]\nshowSidebarNavigation = true\n")  # fmt: skip
    assert dashboard_cmd.config_flags(config) == [
        "--theme.base=light",
        "--theme.sidebar.backgroundColor=#F6F7F9",
        "--client.showSidebarNavigation=true",
    ]
    cmd = dashboard_cmd.streamlit_command(tmp_path, 8600, "localhost", browser=False)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(REPO / "streamlit_app.py")]
    assert "--theme.primaryColor=#2F5D8A" in cmd  # the repository's .streamlit/config.toml
    assert {"--server.port=8600", "--server.address=localhost", "--server.headless=true"} <= set(
        cmd
    )
    assert cmd[-3:] == ["--", "--store", str(tmp_path)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dashboard", "--store", "nowhere"], "no audit store there; build the demo store with"),
        (["dashboard", "--port", "70000"], "argument --port: a port is 1 to 65535, got 70000"),
    ],
)
def test_dashboard_bad_input_is_one_line_and_exit_2(tmp_path, argv, message):
    out = subprocess.run([sys.executable, "-m", "audits", *argv], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "AUDIT_STORE": ""})  # fmt: skip
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


# --- the built wheel, installed -----------------------------------------------------------------


def _copy_source(dst: Path) -> Path:
    """The repository without its venv, stores, tests and generated data (a clean clone)."""
    skip = {
        ".git",
        ".venv",
        "audit-store",
        "tests",
        "bench",
        "docs",
        "build",
        "dist",
        "exports",
        "mlruns",
    }

    def ignore(folder: str, names: list[str]) -> list[str]:
        out = [n for n in names if n in skip or n.endswith((".egg-info", ".pyc")) or n.startswith(".")
               and n not in (".streamlit",) or n == "__pycache__"]  # fmt: skip
        return [*out, "data"] if Path(folder) == REPO / "fixtures" else out

    shutil.copytree(REPO, dst, ignore=ignore)
    return dst


def _run(cmd: list[str], env: dict, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"{cmd}: exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build an sdist from a clean copy, a wheel from the sdist (as ``python -m build`` does),
    and install the wheel with ``--no-deps`` into a new venv that sees this venv's packages
    through a ``.pth`` file (no download, no second torch)."""
    root = tmp_path_factory.mktemp("install")
    src = _copy_source(root / "src")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUDIT_STORE")}
    env.update(HOME=str(root / "home"), XDG_CACHE_HOME=str(root / "cache"), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")  # fmt: skip
    sdist = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                  f"print(b.build_sdist({str(root / 'dist')!r}))"], env, src).stdout.split()[-1]  # fmt: skip
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "-w", str(root / "dist"), str(root / "dist" / sdist)], env, root)  # fmt: skip
    wheel = next((root / "dist").glob("model_audit-*.whl"))
    target = root / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    purelib = Path(
        sysconfig.get_paths(vars={"base": str(target), "platbase": str(target)})["purelib"]
    )
    (purelib / "repo_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = target / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", str(wheel)], env, root)
    env["PATH"] = f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    empty = root / "cwd"
    empty.mkdir()
    return {"root": root, "wheel": wheel, "python": str(python), "env": env, "cwd": empty,
            "purelib": purelib}  # fmt: skip


@pytest.mark.slow
def test_wheel_claims_only_audits_and_model_audit(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"audits", "model_audit"}
    assert "model_audit/reports/templates/report.html.j2" in names
    assert not any("/fixtures/data/" in n for n in names)
    assert (installed["purelib"] / "audits" / "build_commit.txt").is_file()


@pytest.mark.slow
def test_installed_console_script_help_version_and_api(installed):
    env, cwd, python = installed["env"], installed["cwd"], installed["python"]
    out = _run(["model-audit", "--help"], env, cwd).stdout
    for command in ("run", "export", "demo", "dashboard"):
        assert command in out
    assert _run(["model-audit", "--version"], env, cwd).stdout.split()[-1] == __version__
    assert "--store DIR" in _run(["model-audit", "dashboard", "--help"], env, cwd).stdout
    assert "dashboard" in _run([python, "-m", "audits", "--help"], env, cwd).stdout
    where = _run([python, "-c", "import audits, model_audit.auditapp.cli as c; from audits import "
                  "audit, load_run; print(audits.__file__); print(c.__file__)"], env, cwd)  # fmt: skip
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed["purelib"]), line


DECOY = "WHO = 'the user'\n"


@pytest.mark.slow
def test_installed_package_runs_exports_and_leaves_a_users_reports_alone(installed, tmp_path):
    from tests.builders import make_manifest, make_model_dir

    env, cwd, python = dict(installed["env"]), installed["cwd"], installed["python"]
    classes = ["a", "b", "c"]
    model = make_model_dir(tmp_path / "model", classes=classes)
    data = make_manifest(tmp_path / "data", classes, per_class=6)
    decoys = tmp_path / "user_code"
    for name in layout.RELOCATED:
        (decoys / name).mkdir(parents=True)
        (decoys / name / "__init__.py").write_text(DECOY)
    env["PYTHONPATH"] = str(decoys)  # the user's own top-level reports, dashboard, … first
    store = tmp_path / "store"
    run = _run(["model-audit", "--json", "run", "--model", str(model), "--data", str(data),
                "--store", str(store), "--device", "cpu", "--workers", "0"], env, cwd)  # fmt: skip
    record = json.loads(run.stdout)
    assert record["model"]["name"] == "tiny" and record["dataset"]["n_images"] == 18
    assert record["auditor"]["commit"] == "unknown"  # built from a copy without .git
    script = f"""
        import json, sys
        import reports, dashboard, explain, fixtures, auditapp
        from model_audit.auditapp.cli import main
        code = main(["export", {record["run"]!r}, "--format", "json,csv", "--out", "exports"])
        mine = {{n for n in sys.modules if n.split(".")[0] in {list(layout.RELOCATED)!r}}}
        print(json.dumps({{"code": code, "who": reports.WHO, "file": reports.__file__,
                          "ours_under_bare_names": sorted(mine - {set(layout.RELOCATED)!r})}}))
    """
    out = json.loads(
        _run([python, "-c", textwrap.dedent(script)], env, cwd).stdout.splitlines()[-1]
    )
    assert out["code"] == 0 and out["who"] == "the user"
    assert Path(out["file"]).is_relative_to(decoys)
    assert out["ours_under_bare_names"] == []  # nothing of ours loaded as reports.*, dashboard.*…
    exported = list((cwd / "exports").rglob("*.json"))
    assert any(json.loads(p.read_text()).get("metrics") for p in exported), exported
    assert list((cwd / "exports").rglob("*.csv"))
    shutil.rmtree(cwd / "exports")


@pytest.mark.slow
def test_installed_dashboard_serves_the_store(installed, tmp_path):
    from auditapp.pipeline.audit import run_audit
    from tests.builders import make_manifest, make_model_dir

    env, cwd, python = dict(installed["env"]), installed["cwd"], installed["python"]
    classes = ["a", "b", "c"]
    store = tmp_path / "store"
    run_audit(make_model_dir(tmp_path / "m", classes=classes),
              make_manifest(tmp_path / "d", classes, per_class=6), store=store,
              skip=("explain", "integrity"))  # fmt: skip
    app = installed["purelib"] / "model_audit" / "streamlit_app.py"
    script = f"""
        import json, sys
        from streamlit.testing.v1 import AppTest
        from streamlit.web import bootstrap
        # What `streamlit run` does first: put the script's folder (model_audit/) on sys.path.
        bootstrap._fix_sys_path({str(app)!r})
        at = AppTest.from_file({str(app)!r}, default_timeout=180).run()
        text = " ".join(str(m.value) for m in at.markdown) + " ".join(str(t.value) for t in at.title)
        ours = [n for n in sys.modules if n.split(".")[0] in {list(layout.RELOCATED)!r}]
        print(json.dumps({{"errors": [str(e.value) for e in at.exception], "text": text, "bare": ours,
                          "on_path": {str(app.parent)!r} in sys.path}}))
    """
    env["AUDIT_STORE"] = str(store)
    out = json.loads(
        _run([python, "-c", textwrap.dedent(script)], env, cwd).stdout.splitlines()[-1]
    )
    assert out["errors"] == [] and "tiny" in out["text"]
    assert out["bare"] == [] and not out["on_path"]
    # The command itself: a real server on a free port, until Ctrl+C.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["model-audit", "dashboard", "--store", str(store), "--port", str(port),
                             "--host", "127.0.0.1", "--no-browser"], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        body = _wait_for(f"http://127.0.0.1:{port}/_stcore/health", timeout=120)
        assert body == "ok"
        assert "<html" in _wait_for(f"http://127.0.0.1:{port}/", timeout=30).lower()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, proc.stdout.read().decode()[-2000:]


def _wait_for(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
