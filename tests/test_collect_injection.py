"""Task collection never runs user values as shell (issue 19): package extras,
pinned versions and uploaded file names reach the collection scripts as data
(environment variables and arguments), so a double quote, a newline or a shell
command in them is at worst an invalid pip argument, and the activity fails.
Values with the characters upstream's validate_cmd forbids keep its 422."""
import json
import os
import sys
import tarfile

import pytest

from test_collection import (PIXI_CONFIG, api, collect_wheel, cserver, manifest, post_form,  # noqa: F401
                             wait_activity, wheels)


def pwned(tmp_path):
    """Every file under tmp_path (the server's working directory and the task
    groups' folders) whose name starts with pwned: what the payloads touch."""
    return [p for p in tmp_path.rglob("*") if p.name.lower().startswith("pwned")]


def assert_failed_cleanly(db, act):
    assert act["status"] == "failed", act["log"]
    assert "- WARNING - Task collect failed. Original error: " in act["log"]
    assert act["taskgroupv2_id"] is None and act["timestamp_ended"] is not None
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]


def test_extras_with_quote_and_newline_are_one_pip_argument(api, db, tmp_path, wheels):
    marker = tmp_path / "PWNED_extras"
    extras = f'x"\ntouch {marker}\n"'
    s, act, _ = collect_wheel(api, wheels["mock"], {"package_extras": extras})
    assert s == 202, act
    act = wait_activity(api, act["id"])
    assert not pwned(tmp_path), act["log"]
    assert_failed_cleanly(db, act)
    # the whole install string reached pip: the script ran to its install step
    assert "START install with INSTALL_STRING=" in act["log"]
    assert f"touch {marker}" in act["log"]


@pytest.mark.parametrize("field", ["pinned_package_versions_pre", "pinned_package_versions_post"])
@pytest.mark.parametrize("where", ["key", "value"])
def test_pinned_versions_with_newlines_are_one_pip_argument_each(api, db, tmp_path, wheels, field, where):
    marker = tmp_path / f"PWNED_{field}_{where}"
    payload = f"1\ntouch {marker}\n"
    pins = {"setuptools": payload} if where == "value" else {f"setuptools\ntouch {marker}\n": "1"}
    s, act, _ = collect_wheel(api, wheels["mock"], {field: json.dumps(pins)})
    assert s == 202, act
    act = wait_activity(api, act["id"])
    assert not pwned(tmp_path), act["log"]
    assert_failed_cleanly(db, act)
    label = "PRE" if field.endswith("pre") else "POST"
    assert f"START install with PINNED_PACKAGE_LIST_{label}=" in act["log"]


@pytest.mark.parametrize("field,value", [
    ("package_extras", "$(touch {m})"),
    ("package_extras", "x`touch {m}`"),
    ("pinned_package_versions_pre", {"setuptools": "$(touch {m})"}),
    ("pinned_package_versions_post", {"a;touch {m}": "1"}),
])
def test_shell_characters_keep_upstreams_422(api, db, tmp_path, wheels, field, value):
    marker = tmp_path / "PWNED_422"
    if isinstance(value, dict):
        value = json.dumps({k.format(m=marker): v.format(m=marker) for k, v in value.items()})
    else:
        value = value.format(m=marker)
    s, body, _ = collect_wheel(api, wheels["mock"], {field: value})
    assert s == 422, body
    assert body["detail"].startswith("Invalid request-body\n1 validation error for TaskCollectPip\n" + field)
    assert "must not contain any of this characters" in body["detail"]
    assert not pwned(tmp_path)
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]


def test_wheel_file_name_with_newline_is_one_path(api, db, tmp_path, wheels):
    name = "fractal_tasks_mock\ntouch pwned_wheel\n-0.0.1-py3-none-any.whl"
    s, act, _ = post_form(api, "/api/v2/task/collect/pip/", {},
                          {"file": (name, wheels["mock"].read_bytes())})
    assert s == 202, act
    assert act["pkg_name"] == "fractal-tasks-mock\ntouch pwned-wheel\n"
    act = wait_activity(api, act["id"])
    assert not pwned(tmp_path), act["log"]
    assert_failed_cleanly(db, act)
    # the venv was created in the odd folder and pip got the odd path whole
    assert "END   create venv in " in act["log"]
    assert "START install with INSTALL_STRING=" in act["log"]


def test_wheel_file_name_with_semicolon_keeps_upstreams_422(api, db, wheels):
    s, body, _ = post_form(api, "/api/v2/task/collect/pip/", {},
                           {"file": ("fractal_tasks_mock-0.0.1;touch x-py3-none-any.whl", b"x")})
    assert s == 422, body
    assert "Wheel filename has forbidden characters, [';', '/']" in json.dumps(body)


def test_custom_package_name_is_not_python_code(api, db):
    # a double quote passes validate_cmd: as Python text, this name would
    # find the `os` module
    body = {"manifest": manifest(), "python_interpreter": sys.executable, "label": "L", "version": "1",
            "package_name": 'os" if 1 else "x'}
    s, err, _ = api.post("/api/v2/task/collect/custom/", body=body)
    assert s == 422, err
    assert err["detail"].startswith("Cannot determine 'package_root'.\nOriginal output: ")
    assert "SyntaxError" not in err["detail"]
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]


FAKE_PIXI = """#!/bin/bash
# a stand-in for pixi: install does nothing, run finds this Python
case "$1" in
    install) echo "fake pixi install $*" ;;
    shell-hook) echo "export FAKE_PIXI_ACTIVE=1" ;;
    run) echo "{python}" ;;
    *) exit 3 ;;
esac
"""


def test_pixi_archive_name_with_quotes_and_newlines_is_data(api, db, tmp_path):
    home = tmp_path / "pixi" / "0.41.0"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "pixi").write_text(FAKE_PIXI.format(python=sys.executable))
    os.chmod(home / "bin" / "pixi", 0o755)
    db.execute("UPDATE resource SET tasks_pixi_config = '%s'"
               % json.dumps(dict(PIXI_CONFIG, versions={"0.41.0": str(home)})))
    # one `-` and .tar.gz, as the API asks; quotes, a space and newlines else
    stem = "mock'pixi \"tasks\ntouch pwned_pixi\n-1.2.3\ntouch pwned_pixi_v\n0"
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text('[project]\nname = "mock-pixi-tasks"\n\n[tool.pixi.workspace]\n'
                                        'channels = ["conda-forge"]\nplatforms = ["linux-64"]\n')
    tgz = tmp_path / "archive.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src, arcname=stem)
    quoted = stem.replace('"', '\\"') + ".tar.gz"  # a quoted-string in the part's header
    s, act, _ = post_form(api, "/api/v2/task/collect/pixi/", {}, {"file": (quoted, tgz.read_bytes())})
    assert s == 202, act
    act = wait_activity(api, act["id"])
    assert not pwned(tmp_path), act["log"]
    assert act["status"] == "failed", act["log"]
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
    log = act["log"]
    # every script ran with the odd names as data: extract, install, post-install
    assert "END   'tar xz -f " in log and "fake pixi install" in log
    assert "install --frozen --manifest-path " in log
    assert f"Found PROJECT_PYTHON_BIN={sys.executable}" in log
    # the wrapper written for the tasks sources a path with quotes and newlines
    assert "Project-Python version: Python 3." in log
    # the import name is an argument, never Python or shell text
    assert "ModuleNotFoundError" in log or "No module named" in log
