#!/usr/bin/env python3
"""Builds the wheels of the mock task package offline (standard library only).

    build_wheels.py OUTDIR [--version 0.0.1]

writes
    OUTDIR/fractal_tasks_mock-<version>-py3-none-any.whl     the real package
    OUTDIR/FrAcTaL_TaSkS_NoN_CaNoNiCaL-0.0.1-py3-none-any.whl a non-canonical name
    OUTDIR/fail/invalid_manifest/fractal_tasks_mock-0.0.1-py3-none-any.whl   manifest_version "9999"
    OUTDIR/fail/missing_manifest/fractal_tasks_mock-0.0.1-py3-none-any.whl   no manifest
    OUTDIR/fail/missing_executable/fractal_tasks_mock-0.0.1-py3-none-any.whl a task whose script is absent

A wheel is a zip of the package folder plus `<dist>-<version>.dist-info/`
with METADATA, WHEEL and RECORD (sha256 of every file), and no dependencies,
so that `pip install --no-index` works without any index.
"""
import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path

SRC = Path(__file__).resolve().parent / "fractal_tasks_mock"


def package_files(pkg="fractal_tasks_mock", version="0.0.1"):
    """The package's files as {archive name: bytes}."""
    files = {}
    for p in sorted(SRC.iterdir()):
        if p.is_file() and p.suffix in (".py", ".json"):
            data = p.read_bytes()
            if p.name == "__init__.py":
                data = data.replace(b'"0.0.1"', f'"{version}"'.encode())
            files[f"{pkg}/{p.name}"] = data
    return files


def build_wheel(outdir, dist, version, files):
    """Writes <outdir>/<dist>-<version>-py3-none-any.whl; returns its path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    info = f"{dist}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
                                 "Summary: Mock tasks for the fractalctl tests\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: build_wheels.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = outdir / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def manifest_of(files, pkg="fractal_tasks_mock"):
    return json.loads(files[f"{pkg}/__FRACTAL_MANIFEST__.json"])


def build_all(outdir, version="0.0.1"):
    outdir = Path(outdir)
    paths = {"mock": build_wheel(outdir, "fractal_tasks_mock", version, package_files(version=version))}

    files = package_files("fractal_tasks_non_canonical")
    paths["non_canonical"] = build_wheel(outdir, "FrAcTaL_TaSkS_NoN_CaNoNiCaL", "0.0.1", files)

    files = package_files()
    m = manifest_of(files)
    m["manifest_version"] = "9999"
    files["fractal_tasks_mock/__FRACTAL_MANIFEST__.json"] = json.dumps(m).encode()
    paths["invalid_manifest"] = build_wheel(outdir / "fail" / "invalid_manifest", "fractal_tasks_mock", "0.0.1", files)

    files = package_files()
    del files["fractal_tasks_mock/__FRACTAL_MANIFEST__.json"]
    paths["missing_manifest"] = build_wheel(outdir / "fail" / "missing_manifest", "fractal_tasks_mock", "0.0.1", files)

    files = package_files()
    del files["fractal_tasks_mock/generic_task.py"]
    paths["missing_executable"] = build_wheel(outdir / "fail" / "missing_executable", "fractal_tasks_mock", "0.0.1",
                                              files)
    return paths


if __name__ == "__main__":
    args = sys.argv[1:]
    version = "0.0.1"
    if "--version" in args:
        i = args.index("--version")
        version = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    for name, path in build_all(args[0], version).items():
        print(f"{name}: {path}")
