"""Task collection: pip (wheel upload and package name), custom and pixi, with
the offline mock package (tests/mock_tasks). pip runs with PIP_NO_INDEX and
PIP_FIND_LINKS pointing at Debian's pip/setuptools wheels (and, for the
package-name case, at a folder with the mock wheel)."""
import http.server
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import ADMIN_EMAIL, Server, init_db

sys.path.insert(0, str(Path(__file__).parent / "mock_tasks"))
sys.path.insert(0, str(Path(__file__).parent / "pixi_standin"))
import build_wheels  # noqa: E402
import pixi_project  # noqa: E402

MOCK_DIR = Path(__file__).parent / "mock_tasks"
WHEELS = "/usr/share/python-wheels"


@pytest.fixture(scope="session")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    return {k: Path(v) for k, v in build_wheels.build_all(out).items()}


def manifest():
    return json.loads((MOCK_DIR / "fractal_tasks_mock" / "__FRACTAL_MANIFEST__.json").read_text())


def multipart(fields, files):
    """(body, content type) of a multipart/form-data request."""
    boundary = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for k, (name, data) in files.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def post_form(api, path, fields=None, files=None, token=None):
    body, ctype = multipart(fields or {}, files or {})
    return api.request("POST", path, raw=body, headers={"Content-Type": ctype}, token=token)


def collect_wheel(api, wheel, fields=None, query="", token=None):
    return post_form(api, "/api/v2/task/collect/pip/" + query, fields,
                     {"file": (wheel.name, wheel.read_bytes())}, token=token)


def wait_activity(api, aid, timeout=240, logs=None, token=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s, a, _ = api.get(f"/api/v2/task-group/activity/{aid}/", token=token)
        assert s == 200, a
        if logs is not None and a["log"]:
            logs.append(a["log"])
        if a["status"] in ("OK", "failed"):
            return a
        time.sleep(0.3)
    raise AssertionError(f"activity {aid} still {a['status']}: {a['log']}")


def make_server(env, tmp_path, extra=None):
    e = init_db(env, tmp_path)
    e.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS, "FRACTAL_ENABLE_TASK_GROUP_RESET": "true"})
    e.update(extra or {})
    return Server(e, tmp_path)


@pytest.fixture
def cserver(env, tmp_path):
    s = make_server(env, tmp_path)
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture
def api(cserver):
    cserver.http.token = cserver.http.login()
    return cserver.http


def tasks_dir(tmp_path):
    return tmp_path / "data-tasks"


def run_task(command, tmp_path, args, name):
    """Runs a task command by hand, as the runner does; returns its output."""
    argsf, outf = tmp_path / f"{name}-args.json", tmp_path / f"{name}-out.json"
    argsf.write_text(json.dumps(args))
    if outf.exists():
        outf.unlink()
    r = subprocess.run(command.split() + ["--args-json", str(argsf), "--out-json", str(outf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(outf.read_text())


def test_collect_wheel_then_deactivate_reactivate_reset_delete(api, cserver, db, tmp_path, wheels):
    s, act, _ = collect_wheel(api, wheels["mock"])
    assert s == 202, act
    assert list(act) == ["id", "user_id", "taskgroupv2_id", "timestamp_started", "timestamp_ended", "pkg_name",
                         "version", "status", "action", "log"]
    assert (act["status"], act["action"], act["pkg_name"], act["version"]) == \
        ("pending", "collect", "fractal-tasks-mock", "0.0.1")
    logs = []
    act = wait_activity(api, act["id"], logs=logs)
    assert act["status"] == "OK", act["log"]
    assert act["timestamp_ended"] is not None
    # the log grew while the collection ran, and names its steps
    assert len(set(logs)) >= 2 and all(logs[-1].startswith(x) for x in logs[:-1])
    log = act["log"]
    assert " - fractal_server.tasks.v2.local.collect.ID%d - INFO - START\n" % act["id"] in log
    assert "[collect-task, " in log and "START create venv in" in log and "END" in log

    tgid = act["taskgroupv2_id"]
    s, tg, _ = api.get(f"/api/v2/task-group/{tgid}/")
    assert s == 200
    path = tasks_dir(tmp_path) / "1" / "fractal-tasks-mock" / "0.0.1"
    assert (tg["origin"], tg["pkg_name"], tg["version"], tg["python_version"], tg["active"]) == \
        ("wheel-file", "fractal-tasks-mock", "0.0.1", "3.11", True)
    assert tg["path"] == str(path) and tg["venv_path"] == str(path / "venv")
    assert tg["archive_path"] == str(path / wheels["mock"].name)
    assert Path(tg["archive_path"]).read_bytes() == wheels["mock"].read_bytes()
    assert (path / "fractal_task_group_id.txt").read_text() == str(tgid)
    scripts = sorted(p.name.split("_", 2)[2] for p in (path / "scripts").iterdir())
    assert scripts == ["1_create_venv.sh", "2_pip_install.sh", "3_pip_freeze.sh", "4_pip_show.sh"]
    # pip freeze --all (multi-line text: checked in SQL, psql prints lines as rows)
    assert db.query(f"SELECT count(*) FROM taskgroupv2 WHERE id = {tgid} AND env_info LIKE "
                    f"'%fractal_tasks_mock @ file://{path}/{wheels['mock'].name}%' AND env_info LIKE '%pip==%' "
                    "AND env_info LIKE '%setuptools==%'") == [["1"]]

    m = manifest()
    names = [t["name"] for t in m["task_list"]]
    assert [t["name"] for t in tg["task_list"]] == names
    site = Path(tg["venv_path"]) / "lib" / "python3.11" / "site-packages" / "fractal_tasks_mock"
    python = f"{tg['venv_path']}/bin/python"
    for mt, t in zip(m["task_list"], tg["task_list"]):
        s, full, _ = api.get(f"/api/v2/task/{t['id']}/")
        assert s == 200
        for kind in ("non_parallel", "parallel"):
            exe = mt.get(f"executable_{kind}")
            assert full[f"command_{kind}"] == (f"{python} {site}/{exe}" if exe else None)
            # args schemas as in the manifest, key order included
            assert json.dumps(full[f"args_schema_{kind}"]) == json.dumps(mt.get(f"args_schema_{kind}"))
            assert full[f"meta_{kind}"] == mt.get(f"meta_{kind}", {})
        assert full["type"] == mt.get("type") or (mt.get("type") is None)
        assert full["version"] == "0.0.1" and full["authors"] == m["authors"]
        assert full["args_schema_version"] == m["args_schema_version"]
        assert full["docs_info"] == mt.get("docs_info") and full["tags"] == mt.get("tags", [])
        assert full["category"] == mt.get("category") and full["modality"] == mt.get("modality")
        assert full["input_types"] == mt.get("input_types", {})
    conv = next(t for t in tg["task_list"] if t["name"] == "generic_task_converter")
    cmd = api.get(f"/api/v2/task/{conv['id']}/")[1]["command_non_parallel"]
    assert run_task(cmd, tmp_path, {"zarr_dir": str(tmp_path / "zarr")}, "conv1") is None

    # deactivate: the venv goes, the group is inactive at once
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/deactivate/")
    assert s == 202 and act["action"] == "deactivate" and act["status"] == "pending", act
    assert api.get(f"/api/v2/task-group/{tgid}/")[1]["active"] is False
    act = wait_activity(api, act["id"])
    assert act["status"] == "OK", act["log"]
    assert not (path / "venv").exists() and (path / wheels["mock"].name).exists()
    s, body, _ = api.post(f"/api/v2/task-group/{tgid}/deactivate/")
    assert (s, body) == (422, {"detail": "Cannot deactivate a task group with task_group.active=False."})

    # reactivate: the venv comes back from env_info, tasks run again
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/reactivate/")
    assert s == 202 and act["action"] == "reactivate", act
    act = wait_activity(api, act["id"])
    assert act["status"] == "OK", act["log"]
    assert api.get(f"/api/v2/task-group/{tgid}/")[1]["active"] is True
    assert run_task(cmd, tmp_path, {"zarr_dir": str(tmp_path / "zarr2")}, "conv2") is None
    s, body, _ = api.post(f"/api/v2/task-group/{tgid}/reactivate/")
    assert (s, body) == (422, {"detail": "Cannot reactivate a task group with task_group.active=True."})

    # admin reset: only for inactive groups; re-creates the venv with new pins
    s, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/", body={})
    assert (s, body) == (422, {"detail": "Cannot re-collect an active task group. Please deactivate it first."})
    act = wait_activity(api, api.post(f"/api/v2/task-group/{tgid}/deactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    s, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/",
                          body={"pinned_package_versions_post": json.dumps({"setuptools": "66.1.1"})})
    assert s == 202 and body["action"] == "reset", body
    act = wait_activity(api, body["id"])
    assert act["status"] == "OK", act["log"]
    tg = api.get(f"/api/v2/task-group/{tgid}/")[1]
    assert tg["active"] is True and tg["pinned_package_versions_post"] == {"setuptools": "66.1.1"}
    # the pins reach the script as its arguments (the script text holds no value)
    assert "START install with PINNED_PACKAGE_LIST_POST=setuptools==66.1.1" in act["log"]
    assert "setuptools==66.1.1" not in (path / "scripts" / next(
        p.name for p in (path / "scripts").iterdir() if p.name.endswith("_reset_2_pip_install.sh"))).read_text()
    assert run_task(cmd, tmp_path, {"zarr_dir": str(tmp_path / "zarr3")}, "conv3") is None

    # delete: row, tasks and folder go; the activities stay with a null group
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/delete/")
    assert s == 202 and act["action"] == "delete", act
    act = wait_activity(api, act["id"])
    assert act["status"] == "OK", act["log"]
    assert act["taskgroupv2_id"] is None
    assert api.get(f"/api/v2/task-group/{tgid}/")[0] == 404
    assert not path.exists()
    assert db.query(f"SELECT count(*) FROM taskv2 WHERE taskgroupv2_id = {tgid}") == [["0"]]
    acts = api.get("/api/v2/task-group/activity/")[1]
    assert [a["action"] for a in acts] == ["collect", "deactivate", "reactivate", "deactivate", "reset", "delete"]
    assert all(a["taskgroupv2_id"] is None for a in acts)


@pytest.mark.parametrize("case,reason", [
    ("invalid_manifest", "manifest_version"),
    ("missing_manifest", "manifest path not found"),
    ("missing_executable", "pointing to missing file"),
    ("pip_failure", "No matching distribution found for not-a-package-xyz==1.0"),
])
def test_collect_failure_leaves_nothing(api, db, tmp_path, wheels, case, reason):
    fields = {}
    wheel = wheels.get(case, wheels["mock"])
    if case == "pip_failure":
        fields = {"pinned_package_versions_post": json.dumps({"not-a-package-xyz": "1.0"})}
    s, act, _ = collect_wheel(api, wheel, fields)
    assert s == 202, act
    act = wait_activity(api, act["id"])
    assert act["status"] == "failed"
    assert reason in act["log"], act["log"]
    assert "- WARNING - Task collect failed. Original error: " in act["log"]
    assert act["taskgroupv2_id"] is None and act["timestamp_ended"] is not None
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
    assert db.query("SELECT count(*) FROM taskv2") == [["0"]]
    assert not (tasks_dir(tmp_path) / "1" / "fractal-tasks-mock" / "0.0.1").exists()


def test_collect_pip_request_errors(api, db, tmp_path, wheels):
    mock = wheels["mock"]
    s, body, _ = post_form(api, "/api/v2/task/collect/pip/", {}, {"file": ("nodash.whl", b"x")})
    assert (s, body) == (422, {"detail": ["Invalid wheel-file name nodash.whl. Original error: Invalid "
                                          "wheel_filename='nodash.whl'. Original error: list index out of range."]})
    s, body, _ = post_form(api, "/api/v2/task/collect/pip/", {})
    assert s == 422 and body["detail"].startswith("Invalid request-body\n1 validation error for CollectionRequestData")
    assert "When no `file` is provided, `package` is required." in body["detail"]
    s, body, _ = collect_wheel(api, mock, {"package": "x"})
    assert s == 422 and "Cannot set `package` when `file` is provided (given package='x')." in body["detail"]
    s, body, _ = collect_wheel(api, mock, {"package_version": "1"})
    assert s == 422 and "Cannot set `package_version` when `file` is provided" in body["detail"]
    s, body, _ = post_form(api, "/api/v2/task/collect/pip/", {"package": "a;b", "package_version": "1"})
    assert s == 422 and body["detail"].startswith("Invalid request-body\n1 validation error for TaskCollectPip\npackage")
    s, body, _ = collect_wheel(api, mock, {"pinned_package_versions_pre": "{not json"})
    assert s == 422 and body["detail"].startswith("Invalid request-body\n")
    s, body, _ = collect_wheel(api, mock, {"python_version": "2.7"})
    assert s == 422 and body["detail"][0]["loc"] == ["body", "python_version"]
    s, body, _ = collect_wheel(api, mock, {"python_version": "3.12"})
    assert (s, body) == (422, {"detail": "Python version 3.12 is not available for this Fractal resource."})
    # an existing folder is refused before anything is created
    folder = tasks_dir(tmp_path) / "1" / "fractal-tasks-mock" / "0.0.1"
    folder.mkdir(parents=True)
    s, body, _ = collect_wheel(api, mock)
    assert (s, body) == (422, {"detail": f"{folder} already exists."})
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
    folder.rmdir()
    # unauthenticated
    s, body, _ = collect_wheel(api, mock, token="")
    assert s == 401


class FakeIndex(http.server.BaseHTTPRequestHandler):
    versions = {"fractal-tasks-mock": ["0.0.1", "0.0.10", "0.0.2", "0.1.0"]}

    def do_GET(self):
        name = self.path.strip("/").split("/")[-1]
        if name not in self.versions or "json" not in self.headers.get("Accept", ""):
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps({"name": name, "versions": self.versions[name]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def index():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeIndex)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/simple"
    srv.shutdown()


def test_collect_by_package_name_and_version(env, tmp_path, wheels, index, db):
    links = tmp_path / "links"
    links.mkdir()
    (links / wheels["mock"].name).write_bytes(wheels["mock"].read_bytes())
    s = make_server(env, tmp_path, {"PIP_FIND_LINKS": f"{WHEELS} {links}", "FRACTAL_PYPI_SIMPLE_URL": index})
    try:
        api = s.http
        api.token = api.login()
        form = {"package": "Fractal_Tasks.Mock", "package_version": "0.0.1"}
        status, act, _ = post_form(api, "/api/v2/task/collect/pip/", form)
        assert status == 202, act
        assert (act["pkg_name"], act["version"]) == ("fractal-tasks-mock", "0.0.1")
        act = wait_activity(api, act["id"])
        assert act["status"] == "OK", act["log"]
        tg = api.get(f"/api/v2/task-group/{act['taskgroupv2_id']}/")[1]
        assert (tg["origin"], tg["archive_path"]) == ("pypi", None)
        assert "INSTALL_STRING=fractal-tasks-mock==0.0.1" in act["log"]
        assert len(tg["task_list"]) == len(manifest()["task_list"])
        # the same again: non-duplication
        status, body, _ = post_form(api, "/api/v2/task/collect/pip/", form)
        assert status == 422 and body["detail"].startswith(
            f"User '{ADMIN_EMAIL}' already owns a task group with name='fractal-tasks-mock' and version='0.0.1'.")
        # version resolution: prefix (string order, as upstream), none, unknown
        status, body, _ = post_form(api, "/api/v2/task/collect/pip/", {"package": "nope"})
        assert status == 422 and body["detail"] == (
            f"Could not get {index}/nope/ (status_code 404).\nHint: specify the required version for 'nope'.")
        status, body, _ = post_form(api, "/api/v2/task/collect/pip/",
                                    {"package": "fractal-tasks-mock", "package_version": "9"})
        assert (status, body["detail"]) == (422, "No version starting with 9 found.\nHint: specify the required "
                                                 "version for 'fractal-tasks-mock'.")
        status, act, _ = post_form(api, "/api/v2/task/collect/pip/",
                                   {"package": "fractal-tasks-mock", "package_version": "0.0"})
        assert status == 202 and act["version"] == "0.0.2"
        assert wait_activity(api, act["id"])["status"] == "failed"
        status, act, _ = post_form(api, "/api/v2/task/collect/pip/", {"package": "fractal-tasks-mock"})
        assert status == 202 and act["version"] == "0.1.0"
        assert wait_activity(api, act["id"])["status"] == "failed"
    finally:
        assert s.stop() == 0, s.output()


def test_collect_by_name_without_index_is_a_clear_422(api):
    # no FRACTAL_PYPI_SIMPLE_URL and no network: pypi.org cannot be reached
    s, body, _ = post_form(api, "/api/v2/task/collect/pip/", {"package": "fractal-tasks-mock"})
    assert s == 422
    assert body["detail"].startswith("An unknown error occurred while getting https://pypi.org/simple/"
                                     "fractal-tasks-mock/. Original error: ") or \
        body["detail"].startswith("A TimeoutException occurred while getting https://pypi.org/simple/")


def test_collect_custom(env, tmp_path, db):
    s = make_server(env, tmp_path, {"PYTHONPATH": str(MOCK_DIR)})
    try:
        api = s.http
        api.token = api.login()
        m = manifest()
        body = {"manifest": m, "python_interpreter": sys.executable, "label": "My_Label", "version": "1.0",
                "package_root": str(MOCK_DIR / "fractal_tasks_mock")}
        status, tasks, _ = api.post("/api/v2/task/collect/custom/", body=body)
        assert status == 201, tasks
        assert [t["name"] for t in tasks] == [t["name"] for t in m["task_list"]]
        t0, mt0 = tasks[0], m["task_list"][0]
        exe = mt0.get("executable_non_parallel") or mt0.get("executable_parallel")
        assert f"{sys.executable} {MOCK_DIR}/fractal_tasks_mock/{exe}" in (t0["command_non_parallel"],
                                                                           t0["command_parallel"])
        tg = api.get(f"/api/v2/task-group/{t0['taskgroupv2_id']}/")[1]
        assert (tg["origin"], tg["pkg_name"], tg["version"], tg["path"], tg["venv_path"]) == \
            ("other", "My_Label", "1.0", None, None)
        assert db.query("SELECT count(*) FROM taskgroupactivityv2") == [["0"]]
        conv = next(t for t in tasks if t["name"] == "generic_task_converter")
        assert run_task(conv["command_non_parallel"], tmp_path, {"zarr_dir": str(tmp_path / "z")}, "c") is None
        # again: non-duplication
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=body)
        assert status == 422 and err["detail"].startswith(
            f"User '{ADMIN_EMAIL}' already owns a task group with name='My_Label' and version='1.0'.")
        # package_name: the interpreter finds the package (PYTHONPATH)
        body2 = dict(body, version="2.0", package_root=None, package_name="fractal-tasks-mock")
        del body2["package_root"]
        status, tasks2, _ = api.post("/api/v2/task/collect/custom/", body=body2)
        assert status == 201, tasks2
        assert tasks2[0]["command_non_parallel"] == t0["command_non_parallel"]
        # errors
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=dict(body2, package_name="nothere"))
        assert status == 422 and err["detail"].startswith("Cannot determine 'package_root'.\nOriginal output: ")
        both = dict(body, package_name="x")
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=both)
        assert status == 422 and err["detail"][0]["msg"] == (
            "Value error, One and only one must be set between 'package_root' and 'package_name'")
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=dict(body, python_interpreter="/no/python"))
        assert (status, err["detail"]) == (422, "task_collect.python_interpreter='/no/python' is not accessible to "
                                                "the Fractal user or it is not executable.")
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=dict(body, package_root=str(tmp_path / "no")))
        assert status == 422 and err["detail"].endswith("is not accessible to the Fractal user.")
        bad = dict(body, manifest=dict(m, manifest_version="9999"), version="3")
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=bad)
        assert status == 422 and err["detail"][0]["loc"] == ["body", "manifest", "manifest_version"]
        assert err["detail"][0]["msg"] == "Input should be '2'"
        status, err, _ = api.post("/api/v2/task/collect/custom/", body=dict(body, python_interpreter="rel/python"))
        assert status == 422 and err["detail"][0]["loc"] == ["body", "python_interpreter"]
    finally:
        assert s.stop() == 0, s.output()


PIXI_CONFIG = {"versions": {"0.41.0": "/nonexistent/pixi/0.41.0"}, "default_version": "0.41.0",
               "PIXI_CONCURRENT_SOLVES": 4, "PIXI_CONCURRENT_DOWNLOADS": 4, "TOKIO_WORKER_THREADS": 2,
               "DEFAULT_ENVIRONMENT": "default", "DEFAULT_PLATFORM": "linux-64"}


def pixi_targz(tmp_path):
    src = tmp_path / "mock_pixi_tasks-1.2.3"
    src.mkdir()
    (src / "pyproject.toml").write_text('[project]\nname = "mock-pixi-tasks"\n\n[tool.pixi.workspace]\n'
                                        'channels = ["conda-forge"]\nplatforms = ["osx-arm64",\n "linux-64"]\n\n'
                                        '[tool.pixi.tasks]\nhello = "echo hi"\n')
    out = tmp_path / "mock_pixi_tasks-1.2.3.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return out


def test_collect_pixi(api, db, tmp_path):
    tgz = pixi_targz(tmp_path)
    s, body, _ = post_form(api, "/api/v2/task/collect/pixi/", {}, {"file": (tgz.name, tgz.read_bytes())})
    assert (s, body) == (422, {"detail": "Pixi task collection is not available."})
    db.execute(f"UPDATE resource SET tasks_pixi_config = '{json.dumps(PIXI_CONFIG)}'")
    s, body, _ = post_form(api, "/api/v2/task/collect/pixi/", {"pixi_version": "1.0"},
                           {"file": (tgz.name, tgz.read_bytes())})
    assert (s, body) == (422, {"detail": "Pixi version '1.0' is not available. Available versions: ['0.41.0']"})
    s, body, _ = post_form(api, "/api/v2/task/collect/pixi/", {}, {"file": ("a-b-c.tar.gz", b"x")})
    assert s == 422 and body["detail"].startswith("Invalid filename: 'a-b-c.tar.gz' must contain a single `-`")
    s, body, _ = post_form(api, "/api/v2/task/collect/pixi/", {}, {"file": ("a-1.zip", b"x")})
    assert (s, body) == (422, {"detail": "filename='a-1.zip' does not end with '.tar.gz'."})
    s, act, _ = post_form(api, "/api/v2/task/collect/pixi/", {}, {"file": (tgz.name, tgz.read_bytes())})
    assert s == 202, act
    assert (act["pkg_name"], act["version"]) == ("mock-pixi-tasks", "1.2.3")
    act = wait_activity(api, act["id"])
    assert act["status"] == "failed"
    assert "Pixi executable /nonexistent/pixi/0.41.0/bin/pixi not found" in act["log"], act["log"]
    assert "[extract-tar-gz-pixi, " in act["log"]
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
    assert not (tasks_dir(tmp_path) / "1" / "mock-pixi-tasks").joinpath("1.2.3").exists()


def check_pixi_group(api, db, tg, src):
    """What a pixi collection leaves (local or over SSH): the simplified pyproject.toml, pixi's lock file as
    env_info, the manifest's tasks run by the project's Python wrapper. Returns (lock, converter task, its
    command)."""
    pyproject = (src / "pyproject.toml").read_text()
    assert 'platforms = ["linux-64"]' in pyproject and "[tool.pixi.tasks]" not in pyproject, pyproject
    lock = (src / "pixi.lock").read_text()
    assert lock.startswith("version: 6\n") and "- pypi: ./\n  name: fractal-tasks-mock\n  version: 0.0.1\n" in lock
    sha = lock.split("sha256: ")[1].split("\n")[0]
    assert db.query(f"SELECT length(env_info) FROM taskgroupv2 WHERE id = {tg['id']} AND env_info LIKE "
                    f"'version: 6%sha256: {sha}%'") == [[str(len(lock))]]
    assert [t["name"] for t in tg["task_list"]] == [t["name"] for t in manifest()["task_list"]]
    conv = next(t for t in tg["task_list"] if t["name"] == "generic_task_converter")
    command = api.get(f"/api/v2/task/{conv['id']}/")[1]["command_non_parallel"]
    assert command == f"{src}/project_python.sh {src}/src/fractal_tasks_mock/generic_task_converter.py"
    return lock, conv, command


def test_collect_pixi_with_the_stand_in_then_deactivate_reactivate(api, db, tmp_path):
    """The whole local pixi collection, with the pixi stand-in of tests/pixi_standin (no pixi binary here)."""
    home = pixi_project.install_pixi(tmp_path)
    db.execute(f"UPDATE resource SET tasks_pixi_config = '{json.dumps(pixi_project.pixi_config(home))}'")
    tgz = pixi_project.pixi_targz(tmp_path)
    files = {"file": (tgz.name, tgz.read_bytes())}
    # the archive has no pixi.lock: the frozen install of the default use_pixi_lockfile fails as pixi does
    act = wait_activity(api, post_form(api, "/api/v2/task/collect/pixi/", {}, files)[1]["id"])
    assert act["status"] == "failed"
    assert "no lockfile available, can't do a frozen installation." in act["log"], act["log"]
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]

    s, act, _ = post_form(api, "/api/v2/task/collect/pixi/", {"use_pixi_lockfile": "false"}, files)
    assert s == 202, act
    act = wait_activity(api, act["id"])
    assert act["status"] == "OK", act["log"]
    assert " - fractal_server.tasks.v2.local.collect_pixi.ID%d - " % act["id"] in act["log"]
    assert "[install-tasks-pixi, " in act["log"] and "The default environment has been installed." in act["log"]
    tg = api.get(f"/api/v2/task-group/{act['taskgroupv2_id']}/")[1]
    path = tasks_dir(tmp_path) / str(act["user_id"]) / "fractal-tasks-mock" / "0.0.1"
    src = path / "source_dir"
    assert (tg["origin"], tg["path"], tg["pixi_version"]) == ("pixi", str(path), pixi_project.PIXI_VERSION)
    assert tg["archive_path"] == str(path / tgz.name) and tg["venv_path"] is None
    lock, conv, command = check_pixi_group(api, db, tg, src)
    # the task runs with the environment's Python, through the wrapper
    assert run_task(command, tmp_path, {"zarr_dir": str(tmp_path / "zarr")}, "conv") is None
    python = subprocess.run([str(src / "project_python.sh"), "-c", "import sys; print(sys.prefix)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert python == str(src / ".pixi" / "envs" / "default")

    act = wait_activity(api, api.post(f"/api/v2/task-group/{tg['id']}/deactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert not src.exists() and (path / tgz.name).exists()
    # reactivation installs again from the stored lock file, frozen
    act = wait_activity(api, api.post(f"/api/v2/task-group/{tg['id']}/reactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert "--frozen --manifest-path" in act["log"], act["log"]
    assert (src / "pixi.lock").read_text() == lock
    assert run_task(command, tmp_path, {"zarr_dir": str(tmp_path / "zarr")}, "conv2") is None
    assert api.get(f"/api/v2/task-group/{tg['id']}/")[1]["active"] is True
