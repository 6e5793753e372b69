"""The PEP 517 / PEP 660 build backend of the pixi test project (tests/pixi_standin/pixi_project.py puts it at the
project's root, `backend-path = ["."]`): standard library only, since this machine has no `wheel` package for
setuptools and the pixi stand-in installs offline. A regular wheel holds the files under src/; an editable one a
`.pth` file naming src/, as setuptools' and hatchling's editable wheels do."""
import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _project():
    p = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return p["name"], p["version"]


def _wheel(wheel_directory, files):
    name, version = _project()
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: mock_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}"
              for n, b in files.items()]
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in files.items():
            z.writestr(n, b)
    return filename


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    src = ROOT / "src"
    return _wheel(wheel_directory, {p.relative_to(src).as_posix(): p.read_bytes() for p in sorted(src.rglob("*"))
                                    if p.is_file() and "__pycache__" not in p.parts})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name, _ = _project()
    return _wheel(wheel_directory, {f"__editable__.{name.replace('-', '_')}.pth": f"{ROOT / 'src'}\n".encode()})
