"""Build the installable plugin zip: ``dist/terraprobe-<version>.zip`` with a ``terraprobe/`` folder.

Usage: ``python scripts/build_plugin_zip.py [--out-dir dist]``. Only what QGIS and the backend need
goes in (no tests, virtual environments, caches, docs or CI files); the zip must stay under the
official plugin repository's 25 MB limit.
"""

from __future__ import annotations

import argparse
import configparser
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "terraprobe"
MAX_BYTES = 25 * 1024 * 1024
INCLUDE = ["metadata.txt", "__init__.py", "plugin", "backend", "resources", "i18n", "README.md", "LICENSE",
           "requirements.txt", "requirements-dev.txt", "scripts/setup.sh"]
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".git", ".venv",
                  "tests", "test-output", "dist", "docs", ".ci"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".aux.xml"}


def version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def plugin_files(root: Path = ROOT) -> list[Path]:
    """Files that go into the zip, relative to ``root``."""
    files: list[Path] = []
    for entry in INCLUDE:
        path = root / entry
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in candidates:
            if not file.is_file():
                continue
            relative = file.relative_to(root)
            if EXCLUDED_PARTS.intersection(relative.parts):
                continue
            if any(file.name.endswith(suffix) for suffix in EXCLUDED_SUFFIXES) or ".part." in file.name:
                continue
            files.append(relative)
    return files


def build(out_dir: Path) -> Path:
    """Write the zip and return its path; fails when it would exceed 25 MB."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-{version()}.zip"
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in plugin_files():
            archive.write(ROOT / relative, f"{PACKAGE}/{relative.as_posix()}")
    size = partial.stat().st_size
    if size > MAX_BYTES:
        partial.unlink()
        raise SystemExit(f"plugin zip would be {size / 1e6:.1f} MB, over the 25 MB limit")
    partial.replace(target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    target = build(args.out_dir)
    print(f"{target} ({target.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
