"""The local bundling hook, without running an installer."""

from __future__ import annotations

from pathlib import Path

import pytest

from spool_infra import bundling


def _functions_tree(root: Path) -> Path:
    (root / "spool" / "handlers").mkdir(parents=True)
    (root / "spool" / "local").mkdir(parents=True)
    (root / "spool" / "__init__.py").write_text("")
    (root / "spool" / "handlers" / "api.py").write_text("x = 1\n")
    (root / "spool" / "local" / "runtime.py").write_text("y = 1\n")
    (root / "spool" / "cli.py").write_text("z = 1\n")
    (root / "spool" / "client.py").write_text("w = 1\n")  # deployed: only cli.py itself is local
    (root / "requirements.txt").write_text("pydantic==2.0\n")
    return root


def test_source_hash_ignores_caches(tmp_path: Path) -> None:
    root = _functions_tree(tmp_path)
    before = bundling.source_hash(root, "arm64")
    (root / "spool" / "__pycache__").mkdir()
    (root / "spool" / "__pycache__" / "api.cpython-313.pyc").write_bytes(b"\x00")
    assert bundling.source_hash(root, "arm64") == before


@pytest.mark.parametrize("changed", ["requirements.txt", "spool/handlers/api.py"])
def test_source_hash_follows_sources_and_pins(tmp_path: Path, changed: str) -> None:
    root = _functions_tree(tmp_path)
    before = bundling.source_hash(root, "arm64")
    (root / changed).write_text((root / changed).read_text() + "# changed\n")
    assert bundling.source_hash(root, "arm64") != before


@pytest.mark.parametrize("changed", ["spool/local/runtime.py", "spool/cli.py"])
def test_source_hash_ignores_what_never_runs_in_lambda(tmp_path: Path, changed: str) -> None:
    root = _functions_tree(tmp_path)
    before = bundling.source_hash(root, "arm64")
    (root / changed).write_text((root / changed).read_text() + "# changed\n")
    assert bundling.source_hash(root, "arm64") == before


def test_source_hash_depends_on_the_requirement_files_installed(tmp_path: Path) -> None:
    root = _functions_tree(tmp_path)
    parquet = ("requirements.txt", "requirements-parquet.txt")
    assert bundling.source_hash(root, "arm64") != bundling.source_hash(root, "arm64", parquet)


def test_the_installer_installs_every_requirement_file(tmp_path: Path) -> None:
    files = [tmp_path / "requirements.txt", tmp_path / "requirements-parquet.txt"]
    command = bundling.install_command(files, tmp_path / "out", "arm64")
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "-r"] == [str(f) for f in files]


def test_the_parquet_pin_is_the_lockfiles() -> None:
    """functions/requirements-parquet.txt is exported from the lockfile (make lock): the sink's pyarrow is
    the one the tests ran with."""
    functions = Path(__file__).resolve().parents[2] / "functions"
    pins = [line for line in (functions / "requirements-parquet.txt").read_text().splitlines() if "==" in line]
    lock = (functions.parent / "requirements.lock").read_text()
    assert len(pins) == 1
    assert pins[0].startswith("pyarrow==")
    assert f"\n{pins[0]} " in lock


def test_source_hash_depends_on_the_architecture(tmp_path: Path) -> None:
    root = _functions_tree(tmp_path)
    assert bundling.source_hash(root, "arm64") != bundling.source_hash(root, "x86_64")


def test_installer_targets_lambda_arm64_wheels_only(tmp_path: Path) -> None:
    command = " ".join(bundling.install_command([tmp_path / "requirements.txt"], tmp_path / "out", "arm64"))
    assert "--only-binary" in command
    assert ":all:" in command
    assert "3.13" in command
    assert "aarch64-manylinux_2_28" in command or "manylinux_2_28_aarch64" in command
    assert "--no-deps" in command


def test_bundle_copies_the_package_without_the_local_runtime_and_cli_and_drops_path_dependent_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _functions_tree(tmp_path / "functions")
    (root / "spool" / "__pycache__").mkdir()
    (root / "spool" / "__pycache__" / "x.pyc").write_bytes(b"\x00")

    def fake_install(command: list[str], **_: object) -> object:
        target = Path(command[command.index("--target") + 1])
        (target / "bin").mkdir(parents=True)
        (target / "bin" / "jp.py").write_text("#!/some/local/python\n")
        (target / "dep-1.0.dist-info").mkdir()
        (target / "dep-1.0.dist-info" / "RECORD").write_text("bin/jp.py,sha256=...\n")
        (target / "dep-1.0.dist-info" / "METADATA").write_text("Name: dep\n")
        (target / "dep.py").write_text("")
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(bundling.subprocess, "run", fake_install)
    out = tmp_path / "asset"
    out.mkdir()
    assert bundling.LocalPythonBundler(root, "arm64").try_bundle(str(out), None)  # type: ignore[arg-type]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.suffix != ".pyc")
    assert files == [
        "dep-1.0.dist-info/METADATA",
        "dep.py",
        "spool/__init__.py",
        "spool/client.py",
        "spool/handlers/api.py",
    ]
    # Byte code is compiled afresh (the source tree's x.pyc is not copied), named as Lambda will see it.
    byte_code = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pyc"))
    assert "spool/__pycache__/x.pyc" not in byte_code
    assert "spool/handlers/__pycache__/api.cpython-313.pyc" in byte_code


def test_precompiled_byte_code_names_lambda_paths_and_is_reproducible(tmp_path: Path) -> None:
    for run in ("a", "b"):
        (tmp_path / run / "spool").mkdir(parents=True)
        (tmp_path / run / "spool" / "m.py").write_text("def f():\n    return 1\n")
        bundling.precompile(tmp_path / run)
    first, second = (tmp_path / run / "spool" / "__pycache__" / "m.cpython-313.pyc" for run in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    assert b"/var/task/spool/m.py" in first.read_bytes()


def test_failed_install_fails_the_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _functions_tree(tmp_path / "functions")
    failed = type("Failed", (), {"returncode": 1, "stdout": "", "stderr": "no matching distribution"})()
    monkeypatch.setattr(bundling.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(RuntimeError, match="no matching distribution"):
        bundling.LocalPythonBundler(root, "arm64").try_bundle(str(tmp_path), None)  # type: ignore[arg-type]


@pytest.mark.parametrize("parquet", [True, False])
def test_only_the_sinks_asset_installs_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parquet: bool) -> None:
    """The real stack with bundling on (the installer faked): the sink's asset adds the Parquet pins, the
    api's does not, so they are two assets; with `parquet` false both functions share one."""
    from infra_synth import Synth

    installs: list[list[str]] = []

    def fake_install(command: list[str], **_: object) -> object:
        installs.append([command[i + 1] for i, arg in enumerate(command) if arg == "-r"])
        Path(command[command.index("--target") + 1]).mkdir(parents=True, exist_ok=True)
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(bundling.subprocess, "run", fake_install)
    monkeypatch.setattr(bundling, "precompile", lambda staging: None)
    synth = Synth(tmp_path / "cdk.out", {"bundle": True, "parquet": parquet})

    code = {
        fn["Properties"]["Handler"].split(".")[2]: fn["Properties"]["Code"]["S3Key"]
        for fn in synth.resources("AWS::Lambda::Function").values()
    }
    installed = sorted(tuple(Path(f).name for f in files) for files in installs)
    if parquet:
        assert code["sink"] != code["api"]
        assert installed == [("requirements.txt",), ("requirements.txt", "requirements-parquet.txt")]
    else:
        assert code["sink"] == code["api"]
        assert installed == [("requirements.txt",)]


def test_the_parts_of_pyarrow_the_sink_never_loads_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _functions_tree(tmp_path / "functions")
    wheel = [
        "pyarrow/__init__.py",
        "pyarrow/lib.cpython-313-aarch64-linux-gnu.so",
        "pyarrow/_parquet.cpython-313-aarch64-linux-gnu.so",
        "pyarrow/libarrow.so.2600",
        "pyarrow/libarrow_python.so.2600",
        "pyarrow/libparquet.so.2600",
        "pyarrow/parquet/core.py",
        # left out:
        "pyarrow/libarrow_python.so",
        "pyarrow/libarrow_python.so.2600.1.0",
        "pyarrow/libarrow_flight.so.2600",
        "pyarrow/_flight.cpython-313-aarch64-linux-gnu.so",
        "pyarrow/libarrow_s3.so.2600",
        "pyarrow/_s3fs.cpython-313-aarch64-linux-gnu.so",
        "pyarrow/lib.pyx",
        "pyarrow/include/arrow/api.h",
        "pyarrow/tests/test_array.py",
    ]

    def fake_install(command: list[str], **_: object) -> object:
        target = Path(command[command.index("--target") + 1])
        for name in wheel:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(b"")
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(bundling.subprocess, "run", fake_install)
    out = tmp_path / "asset"
    bundling.LocalPythonBundler(root, "arm64").install(out)
    kept = sorted(p.relative_to(out).as_posix() for p in (out / "pyarrow").rglob("*") if p.suffix != ".pyc")
    assert [k for k in kept if (out / k).is_file()] == sorted(wheel[:7])
