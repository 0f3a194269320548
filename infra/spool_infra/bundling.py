"""Lambda code assets: functions/spool plus its pinned dependencies, bundled on this machine without Docker.

The hook installs the asset's requirement files (functions/requirements.txt; the sink's asset adds
functions/requirements-parquet.txt, pyarrow, unless context `parquet` is false) as manylinux_2_28 wheels
for CPython 3.13 and the function's architecture (aarch64 unless context `lambdaArchitecture` says x86_64)
into the asset directory and copies the `spool` package next to them. Only wheels are accepted, so no C
code is compiled here. Parts of pyarrow the sink never loads are left out (`_UNUSED`). The output depends
only on the source files and the pins:

- console scripts (`bin/`), the installer's byte code and records that embed local paths are left out; byte
  code is then compiled afresh with hash-based invalidation and Lambda's paths (`precompile`);
- the asset hash is computed from the sources and the bundling command (a custom hash), so an unchanged
  tree gives the same asset everywhere and `cdk synth` reuses an existing bundle in cdk.out.

The parts of the package that never run in Lambda (`LOCAL_ONLY`: the local runtime and the admin CLI) are left
out of the asset and of its hash.
"""

from __future__ import annotations

import compileall
import hashlib
import importlib.util
import py_compile
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from spool_infra import names

PYTHON_VERSION = "3.13"
# Part of the asset hash: bump it when this hook's output changes for the same sources, or an existing
# bundle in cdk.out would be reused.
BUNDLE_FORMAT = 4
# Lambda architecture -> (pip platform tag, uv --python-platform). The python3.13 runtime is Amazon Linux
# 2023 (glibc 2.34), so manylinux_2_28 wheels run there (and older manylinux ones, which both installers
# still accept). pyarrow 26 publishes no manylinux2014 wheel, so the older tag would refuse it.
PLATFORMS = {
    "arm64": ("manylinux_2_28_aarch64", "aarch64-manylinux_2_28"),
    "x86_64": ("manylinux_2_28_x86_64", "x86_64-manylinux_2_28"),
}
# Left out of the asset: caches and compiled files.
EXCLUDE = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache")
# Left out of the asset too: the package's parts that run on a developer's or an operator's machine, never in
# Lambda (the local runtime of `make dev`, the admin CLI). No handler imports them (docs/architecture.md).
LOCAL_ONLY = tuple(f"{names.PACKAGE_DIR}/{part}" for part in ("local", "cli.py"))
# Files pip/uv write that carry machine-specific paths or timestamps.
_NON_DETERMINISTIC = ("bin", "*.dist-info/RECORD", "*.dist-info/INSTALLER", "*.dist-info/direct_url.json")
# Parts of the pyarrow wheel the sink never loads, left out of its asset (about 60 MB of its 170 MB: the
# asset must stay under Lambda's 250 MB unzipped, docs/delivery.md). The sink only builds a table and
# writes Parquet to memory (domain/encoding.py): no Arrow Flight, no Arrow's own S3 filesystem (optional in
# pyarrow.fs), no C++ headers, Cython sources or tests, and not the unversioned copies of shared libraries
# that only a linker reads (the wheel holds each three times; the modules need the `.so.NNNN` one).
_UNUSED = (
    "pyarrow/tests",
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/includes",
    "pyarrow/*.pxd",
    "pyarrow/*.pyx",
    "pyarrow/*.pxi",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_pyarrow_cpp_tests.*.so",
    "pyarrow/libarrow*.so",
    "pyarrow/libarrow*.so.*.*.*",
)


def install_command(requirements: Sequence[Path], target: Path, architecture: str) -> list[str]:
    """The installer command: `uv pip` when uv is on PATH (what `make bootstrap` uses), else pip.

    Both install exactly the pinned set (`--no-deps`: each requirement file is a full export of the
    lockfile, of the runtime dependencies or of one group) and only wheels for the target platform, whatever
    interpreter runs them.
    """
    pip_platform, uv_platform = PLATFORMS[architecture]
    files = [arg for path in requirements for arg in ("-r", str(path))]
    uv = shutil.which("uv")
    if uv:
        return [
            uv, "pip", "install", "--quiet", "--no-deps", "--no-compile-bytecode",
            "--python-platform", uv_platform, "--python-version", PYTHON_VERSION,
            "--only-binary", ":all:", "--target", str(target), *files,
        ]  # fmt: skip
    return [
        *_pip(), "install", "--quiet", "--no-deps", "--no-compile",
        "--disable-pip-version-check", "--platform", pip_platform, "--implementation", "cp",
        "--python-version", PYTHON_VERSION, "--only-binary=:all:", "--target", str(target),
        *files,
    ]  # fmt: skip


def _pip() -> list[str]:
    # The project venv is made by uv and has no pip; any pip will do, as the target is explicit.
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    python3 = shutil.which("python3")
    if python3:
        return [python3, "-m", "pip"]
    raise RuntimeError("bundling the Lambda code needs uv (`make bootstrap` installs it) or pip")


def _source_files(functions_dir: Path) -> Iterator[Path]:
    """The files of functions/ that go into an asset (the package) or decide it (the requirement files)."""
    for path in sorted(functions_dir.rglob("*")):
        rel = path.relative_to(functions_dir)
        if (
            path.is_file()
            and not any(rel.match(pattern) or pattern in rel.parts for pattern in EXCLUDE)
            and not any(rel.is_relative_to(part) for part in LOCAL_ONLY)
        ):
            yield path


def source_hash(
    functions_dir: Path, architecture: str, requirements: Sequence[str] = (names.REQUIREMENTS_FILE,)
) -> str:
    """Hash of what decides the bundle: the package sources, the pins, which requirement files it installs
    (so the api's and the sink's assets differ), the target platform."""
    digest = hashlib.sha256(
        f"{BUNDLE_FORMAT} {PLATFORMS[architecture][0]} cp{PYTHON_VERSION} {' '.join(requirements)}\n".encode()
    )
    for path in _source_files(functions_dir):
        digest.update(path.relative_to(functions_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _remove_non_deterministic(out: Path) -> None:
    for pattern in (*_NON_DETERMINISTIC, *_UNUSED):
        for path in out.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    for cache in out.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """`ILocalBundling` hook: CDK calls `try_bundle` at synth with an empty output directory.

    jsii hands the options over as one struct, unlike the keyword form its type stubs show (hence the cast
    where it is passed in).
    """

    def __init__(
        self, functions_dir: Path, architecture: str, requirements: Sequence[str] = (names.REQUIREMENTS_FILE,)
    ) -> None:
        self._functions_dir = functions_dir
        self._architecture = architecture
        self._requirements = [functions_dir / name for name in requirements]

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        out = Path(output_dir)
        with tempfile.TemporaryDirectory(prefix="spool-bundle-") as tmp:
            # Install into a scratch directory first so a failed install leaves no half-built asset.
            staging = Path(tmp) / "asset"
            self.install(staging)
            for item in sorted(staging.iterdir()):
                shutil.move(str(item), out / item.name)
        return True

    def install(self, staging: Path) -> None:
        command = install_command(self._requirements, staging, self._architecture)
        # The command is built from fixed arguments and repository paths, never from user input.
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(f"bundling Lambda dependencies failed:\n{result.stdout}\n{result.stderr}")
        _remove_non_deterministic(staging)
        for path in _source_files(self._functions_dir):
            rel = path.relative_to(self._functions_dir)
            if rel.parts[0] == names.PACKAGE_DIR:
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        precompile(staging)


def precompile(staging: Path) -> None:
    """Ship byte code: /var/task is read-only, so without it every cold start compiles boto3, pydantic,
    Powertools and Spool again (docs/benchmarks.md, B3's "no bytecode cache"). Hash-based .pyc files with file names
    as Lambda sees them keep the asset deterministic. Only when this Python matches the Lambda runtime."""
    if f"{sys.version_info.major}{sys.version_info.minor}" != PYTHON_VERSION.replace(".", ""):
        return
    compileall.compile_dir(
        staging,
        ddir="/var/task",
        quiet=1,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def lambda_code(
    functions_dir: Path,
    *,
    bundle: bool,
    architecture: str,
    requirements: Sequence[str] = (names.REQUIREMENTS_FILE,),
) -> lambda_.Code:
    """A code asset: the `spool` package and the dependencies of `requirements` (files in functions/).

    `bundle=False` is for the assertion tests: the raw directory (no dependencies) synthesizes in
    milliseconds, and the tests look at the template, not at the zip.
    """
    if not bundle:
        return lambda_.Code.from_asset(str(functions_dir), exclude=[*EXCLUDE, *LOCAL_ONLY])
    return lambda_.Code.from_asset(
        str(functions_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(functions_dir, architecture, requirements),
        bundling=BundlingOptions(
            # Never pulled: the local hook always bundles (or fails loudly), so Docker is not needed.
            image=DockerImage.from_registry("local-bundling-only"),
            local=cast(ILocalBundling, LocalPythonBundler(functions_dir, architecture, requirements)),
        ),
    )
