"""The pixi task package of the tests: the mock tasks (tests/mock_tasks) as a pixi workspace, packed as upstream's
pixi archives are (`<pkg>-<version>.tar.gz` holding the folder `<pkg>-<version>/` with a pyproject.toml whose
[tool.pixi] tables pixi reads), and the pixi stand-in (bin/pixi) installed where a resource's
`tasks_pixi_config.versions[V]` points."""
import shutil
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MOCK = HERE.parent / "mock_tasks" / "fractal_tasks_mock"
PIXI_VERSION = "0.47.0"

PYPROJECT = """[project]
name = "fractal-tasks-mock"
version = "{version}"
requires-python = ">=3.9"

[build-system]
requires = []
build-backend = "mock_backend"
backend-path = ["."]

[tool.pixi.workspace]
channels = ["conda-forge"]
platforms = ["osx-arm64", "osx-64",
             "linux-64"]

[tool.pixi.dependencies]
python = ">=3.9"
{extra_dependencies}
[tool.pixi.pypi-dependencies]
fractal-tasks-mock = {{path = ".", editable = true}}

[tool.pixi.tasks]
manifest = "python -m fractal_tasks_mock.dev.create_manifest"
"""


def pixi_targz(outdir, version="0.0.1", extra_dependencies=""):
    """Writes <outdir>/fractal_tasks_mock-<version>.tar.gz; returns its path. extra_dependencies: more lines of
    [tool.pixi.dependencies] (a conda package the stand-in cannot have makes `pixi install` fail)."""
    outdir = Path(outdir)
    name = f"fractal_tasks_mock-{version}"
    src = outdir / "pixi-src" / name
    if src.exists():
        shutil.rmtree(src)
    (src / "src").mkdir(parents=True)
    shutil.copytree(MOCK, src / "src" / "fractal_tasks_mock", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(HERE / "mock_backend.py", src / "mock_backend.py")
    (src / "pyproject.toml").write_text(PYPROJECT.format(version=version, extra_dependencies=extra_dependencies))
    out = outdir / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=name)
    return out


def install_pixi(base):
    """The stand-in at <base>/pixi/<PIXI_VERSION>/bin/pixi (readable and runnable by all); returns the folder
    for tasks_pixi_config.versions."""
    home = Path(base) / "pixi" / PIXI_VERSION
    (home / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "bin" / "pixi", home / "bin" / "pixi")
    for p in (Path(base) / "pixi", home, home / "bin"):
        p.chmod(0o755)
    (home / "bin" / "pixi").chmod(0o755)
    return home


def pixi_config(home, **extra):
    return {"versions": {PIXI_VERSION: str(home)}, "default_version": PIXI_VERSION, "PIXI_CONCURRENT_SOLVES": 4,
            "PIXI_CONCURRENT_DOWNLOADS": 4, "TOKIO_WORKER_THREADS": 2, "DEFAULT_ENVIRONMENT": "default",
            "DEFAULT_PLATFORM": "linux-64", **extra}
