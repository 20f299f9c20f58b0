"""Build the mcp-remote-py executables for this OS with PyInstaller.

    python packaging/build.py [--onefile | --onedir | --both] [--archive] [--skip-build]

PyInstaller must be installed in the environment that runs this (``pip install pyinstaller``);
this script installs nothing. It builds from the checkout it lives in, into ``dist/``:

    dist/mcp-remote-py[.exe]                          one file: unpacks itself at every start
    dist/mcp-remote-py-onedir/mcp-remote-py[.exe]     one folder: the executable and _internal/

Each build is checked before it counts: the bundle must carry keyring's backends and their
entry-point metadata, certifi's CA bundle and truststore, and ``BINARY --version`` must print
the version in mcp_remote_py/_version.py. ``--archive`` also writes the release files to
``dist/release/`` (versioned names, the one-folder build zipped or tarred) with SHA256SUMS;
``--skip-build --archive`` packs builds made (and signed) earlier.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "packaging" / "mcp-remote-py.spec"
NAME = "mcp-remote-py"
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""

# What a working bundle must contain; PyInstaller's import scan alone would miss the first two.
REQUIRED_DATA = [
    re.compile(r"keyring-[^/]+\.dist-info/entry_points\.txt"),
    re.compile(r"certifi/cacert\.pem"),
]
REQUIRED_MODULES = [
    "mcp_remote_py.cli",
    "mcp_remote_py.app",
    "mcp_remote_py.shell.http1",  # imported inside net.build_client
    "keyring.backends.SecretService",
    "keyring.backends.Windows",
    "keyring.backends.macOS",
    "keyring.backends.chainer",
    "keyring.backends.fail",
    "truststore",
    "certifi",
    "trio",
    "httpx",
    "httpcore._async.http2",
    "h2",
    "msgspec",
    "platformdirs",
]


class BuildError(Exception):
    pass


def project_version() -> str:
    text = (REPO / "mcp_remote_py" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if not match:
        raise BuildError("mcp_remote_py/_version.py has no __version__ = '...'")
    return match.group(1)


def platform_tag() -> str:
    """``linux-x86_64``, ``macos-arm64``, ``windows-x86_64``... for the release file names."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    if system.startswith("linux"):
        system = "linux"
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


def executable(dist: Path, mode: str) -> Path:
    if mode == "onefile":
        return dist / f"{NAME}{EXE_SUFFIX}"
    return dist / f"{NAME}-onedir" / f"{NAME}{EXE_SUFFIX}"


def run_pyinstaller(mode: str, dist: Path, work: Path, spec_args: list[str], clean: bool) -> None:
    stale = dist / NAME  # a folder of that name (a hand-made onedir build) blocks the one file
    if mode == "onefile" and stale.is_dir():
        shutil.rmtree(stale)
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(SPEC),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work / mode),
        *(["--clean"] if clean else []),
        "--",
        "--mode",
        mode,
        *spec_args,
    ]
    print("+", " ".join(command), flush=True)
    if subprocess.run(command, cwd=REPO, check=False).returncode != 0:
        raise BuildError(f"PyInstaller failed building the {mode} executable")


def bundle_contents(binary: Path, mode: str) -> set[str]:
    """Everything the executable carries: archive entries, modules in its PYZ, and files."""
    from PyInstaller.archive.readers import pkg_archive_contents  # type: ignore[import-untyped]

    names = set(pkg_archive_contents(str(binary)))
    if mode == "onedir":
        internal = binary.parent / "_internal"
        names |= {p.relative_to(internal).as_posix() for p in internal.rglob("*") if p.is_file()}
    return names


def check_bundle(binary: Path, mode: str, version: str) -> None:
    names = bundle_contents(binary, mode)
    missing = [m for m in REQUIRED_MODULES if m not in names]
    missing += [p.pattern for p in REQUIRED_DATA if not any(p.fullmatch(n) for n in names)]
    alt_metadata = re.compile(r"keyrings\.alt-[^/]+\.dist-info/entry_points\.txt")
    alt_installed = importlib.util.find_spec("keyrings") and importlib.util.find_spec(
        "keyrings.alt"
    )
    if alt_installed and not any(alt_metadata.fullmatch(n) for n in names):
        missing.append("keyrings.alt metadata")
    if missing:
        raise BuildError(f"the {mode} build lacks: {', '.join(missing)}")
    result = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    expected = f"{NAME} {version}"
    if result.returncode != 0 or result.stdout.strip() != expected:
        raise BuildError(
            f"{binary} --version printed {result.stdout.strip()!r} (exit {result.returncode}), "
            f"expected {expected!r}; stderr: {result.stderr.strip()[-2000:]}"
        )
    print(f"ok: {binary} ({mode}) says {expected!r} and carries keyring, certifi, truststore")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def archive(dist: Path, modes: list[str], version: str) -> Path:
    """Release files in dist/release/, named for the version and platform, with SHA256SUMS."""
    release = dist / "release"
    if release.exists():
        shutil.rmtree(release)
    release.mkdir(parents=True)
    stem = f"{NAME}-{version}-{platform_tag()}"
    files = []
    if "onefile" in modes:
        target = release / f"{stem}{EXE_SUFFIX}"
        shutil.copy2(executable(dist, "onefile"), target)
        files.append(target)
    if "onedir" in modes:
        folder = dist / f"{NAME}-onedir"
        top = f"{stem}-onedir"
        if sys.platform == "win32":
            target = release / f"{top}.zip"
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(folder.rglob("*")):
                    zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
        else:  # tar keeps the executable bit and the symbolic links of macOS frameworks
            target = release / f"{top}.tar.gz"
            with tarfile.open(target, "w:gz") as tf:
                tf.add(folder, arcname=top)
        files.append(target)
    lines = []
    for path in files:
        line = f"{sha256(path)}  {path.name}\n"
        (release / f"{path.name}.sha256").write_text(line, encoding="utf-8")
        lines.append(line)
    (release / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")
    for line in lines:
        print(f"release: {line}", end="")
    return release


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the mcp-remote-py executables for this OS with PyInstaller "
        "(pip install pyinstaller first).",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--onefile",
        action="store_const",
        const=["onefile"],
        dest="modes",
        help="only the one-file executable, dist/mcp-remote-py",
    )
    which.add_argument(
        "--onedir",
        action="store_const",
        const=["onedir"],
        dest="modes",
        help="only the one-folder build, dist/mcp-remote-py-onedir/",
    )
    which.add_argument(
        "--both",
        action="store_const",
        const=["onefile", "onedir"],
        dest="modes",
        help="both builds (the default)",
    )
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="default: dist/")
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "build" / "pyinstaller",
        help="default: build/pyinstaller/",
    )
    parser.add_argument("--clean", action="store_true", help="ignore PyInstaller's caches")
    parser.add_argument(
        "--skip-build",
        action="store_true",
        help="check (and with --archive, pack) the builds already in --dist, e.g. once signed",
    )
    parser.add_argument(
        "--archive", action="store_true", help="also write release files and SHA256SUMS"
    )
    parser.add_argument(
        "--target-arch", help="macOS: x86_64, arm64 or universal2 (default: this machine's)"
    )
    parser.add_argument(
        "--codesign-identity",
        help="macOS: sign with this Developer ID identity (default: ad-hoc signature)",
    )
    parser.add_argument(
        "--entitlements",
        type=Path,
        help="macOS: entitlements for the hardened runtime, with --codesign-identity",
    )
    args = parser.parse_args(argv)
    args.modes = args.modes or ["onefile", "onedir"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("PyInstaller") is None:
        print(
            "PyInstaller is not installed in this environment. Install it, then run this again:\n"
            f"    {Path(sys.executable).name} -m pip install pyinstaller",
            file=sys.stderr,
        )
        return 1
    spec_args: list[str] = []
    if args.target_arch:
        spec_args += ["--target-arch", args.target_arch]
    if args.codesign_identity:
        spec_args += ["--codesign-identity", args.codesign_identity]
    if args.entitlements:
        spec_args += ["--entitlements", str(args.entitlements.resolve())]
    dist, work = args.dist.resolve(), args.work.resolve()
    try:
        version = project_version()
        for mode in args.modes:
            if not args.skip_build:
                run_pyinstaller(mode, dist, work, spec_args, args.clean)
            elif not executable(dist, mode).is_file():
                raise BuildError(
                    f"--skip-build: there is no {mode} build at {executable(dist, mode)}"
                )
            check_bundle(executable(dist, mode), mode, version)
        if args.archive:
            archive(dist, args.modes, version)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for mode in args.modes:
        print(f"{mode}: {executable(dist, mode)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
