"""Admin API for computational resources and profiles (/admin/v2/resource/, /admin/v2/profile/).

The `server` fixture's init-db-data made resource 1 ("Local resource", type local) and profile 1
("Local profile"), which the admin uses. Expected bodies are upstream's (FastAPI + pydantic 2).
"""
import copy
import json
import re

import pytest

from conftest import ADMIN_EMAIL, ADMIN_PWD, Server, init_db, run

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")

RESOURCE_KEYS = ["id", "name", "type", "prevent_new_submissions", "timestamp_created", "host", "jobs_local_dir",
                 "jobs_runner_config", "jobs_slurm_python_worker", "jobs_poll_interval", "tasks_local_dir",
                 "tasks_python_config", "tasks_pixi_config"]
PROFILE_KEYS = ["id", "name", "resource_id", "resource_type", "username", "ssh_key_path", "jobs_remote_dir",
                "tasks_remote_dir", "pixi_cache_dir"]

LOCAL = {
    "type": "local", "name": "Second", "jobs_local_dir": "/srv/jobs", "tasks_local_dir": "/srv/tasks",
    "jobs_runner_config": {}, "tasks_pixi_config": {},
    "tasks_python_config": {"default_version": "3.12", "versions": {"3.12": "/usr/bin/python3.12"}},
}
SLURM_RUNNER = {
    "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "100M"},
    "gpu_slurm_config": {"partition": "gpu", "extra_lines": [" #SBATCH --gres=gpu:1 "]},
    "user_local_exports": {" CELLPOSE_LOCAL_MODELS_PATH": "models", "NAPARI_CONFIG": " napari.json "},
    "batching_config": {"target_cpus_per_job": 1, "max_cpus_per_job": 1, "target_mem_per_job": 200,
                        "max_mem_per_job": "2G", "target_num_jobs": 2, "max_num_jobs": 4},
}
SUDO = dict(LOCAL, type="slurm_sudo", name="Sudo", jobs_slurm_python_worker="/venv/bin/python",
            jobs_runner_config=SLURM_RUNNER)
SSH = dict(SUDO, type="slurm_ssh", name="SSH", host="cluster.example.org")
PIXI = {"versions": {"0.41.0": "/opt/pixi/0.41.0", "0.40.0": "/opt/pixi/0.40.0/"}, "default_version": "0.41.0"}
PIXI_SLURM = {"partition": "main", "cpus": 2, "mem": "8G", "time": "10"}
SSH_PROFILE = {"resource_type": "slurm_ssh", "name": "ssh-profile", "username": "fractal",
               "ssh_key_path": "/keys/id_ed25519", "jobs_remote_dir": "/remote/jobs",
               "tasks_remote_dir": "/remote/tasks"}

NONE_FIELDS = {"constraint": None, "gres": None, "exclude": None, "nodelist": None, "nodes": None, "time": None,
               "account": None, "gpus": None}
SLURM_RUNNER_STORED = {
    "default_slurm_config": dict(NONE_FIELDS, partition="main", cpus_per_task=1, mem=100, extra_lines=[],
                                 shebang_line="#!/bin/sh", use_mem_per_cpu=False),
    "gpu_slurm_config": dict(NONE_FIELDS, partition="gpu", cpus_per_task=None, mem=None,
                             extra_lines=["#SBATCH --gres=gpu:1"], shebang_line="#!/bin/sh", use_mem_per_cpu=False),
    "batching_config": {"target_num_jobs": 2, "max_num_jobs": 4, "target_cpus_per_job": 1, "max_cpus_per_job": 1,
                        "target_mem_per_job": 200, "max_mem_per_job": 2000},
    "user_local_exports": {"NAPARI_CONFIG": "napari.json", "CELLPOSE_LOCAL_MODELS_PATH": "models"},
}
PIXI_STORED = {"versions": {"0.41.0": "/opt/pixi/0.41.0", "0.40.0": "/opt/pixi/0.40.0/"}, "default_version": "0.41.0",
               "PIXI_CONCURRENT_SOLVES": 4, "PIXI_CONCURRENT_DOWNLOADS": 4, "TOKIO_WORKER_THREADS": 2,
               "DEFAULT_ENVIRONMENT": "default", "DEFAULT_PLATFORM": "linux-64", "SLURM_CONFIG": None}
EXPECTED_TAGS = ("<ResourceType.LOCAL: 'local'>, <ResourceType.SLURM_SUDO: 'slurm_sudo'>, "
                 "<ResourceType.SLURM_SSH: 'slurm_ssh'>")

ROUTES = [
    ("GET", "/admin/v2/resource/"), ("POST", "/admin/v2/resource/"), ("GET", "/admin/v2/resource/1/"),
    ("PUT", "/admin/v2/resource/1/"), ("DELETE", "/admin/v2/resource/1/"), ("GET", "/admin/v2/resource/1/profile/"),
    ("POST", "/admin/v2/resource/1/profile/"), ("GET", "/admin/v2/profile/"), ("GET", "/admin/v2/profile/1/"),
    ("PUT", "/admin/v2/profile/1/"), ("DELETE", "/admin/v2/profile/1/"),
]


def admin(server):
    server.http.token = server.http.login()
    return server.http


def detail(http, method, path, body=None, status=422):
    s, b, _ = http.request(method, path, body=body)
    assert s == status, b
    return b["detail"]


def value_error(loc, msg, inp):
    return {"type": "value_error", "loc": loc, "msg": "Value error, " + msg, "input": inp, "ctx": {"error": {}}}


def missing(loc, inp):
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": inp}


def with_backend(env, tmp_path, backend):
    e = init_db(dict(env, FRACTAL_RUNNER_BACKEND=backend), tmp_path)
    return Server(e, tmp_path)


# ---- authentication ----

def test_every_route_needs_a_superuser(server, db):
    http = server.http
    db.execute("INSERT INTO user_oauth (email, hashed_password, is_active, is_superuser, is_verified, project_dirs, "
               "slurm_accounts, is_guest) SELECT 'user@example.org', hashed_password, true, false, true, "
               f"project_dirs, slurm_accounts, false FROM user_oauth WHERE email = '{ADMIN_EMAIL}'")
    user = http.login("user@example.org", ADMIN_PWD)
    for method, path in ROUTES:
        body = {} if method in ("POST", "PUT") else None
        assert http.request(method, path, body=body)[:2] == (401, {"detail": "Unauthorized"}), (method, path)
        assert http.request(method, path, body=body, token="not.a.jwt")[0] == 401
        assert http.request(method, path, body=body, token=user)[:2] == (403, {"detail": "Forbidden"}), (method, path)
    # FastAPI parses a JSON body before authenticating
    s, b, _ = http.request("POST", "/admin/v2/resource/", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert s == 422 and b["detail"][0]["type"] == "json_invalid"
    # nothing was touched
    assert db.query("SELECT count(*) FROM resource")[0][0] == "1"
    assert db.query("SELECT count(*) FROM profile")[0][0] == "1"


# ---- resources ----

def test_resource_list_and_get(server, tmp_path):
    http = admin(server)
    s, body, _ = http.get("/admin/v2/resource/")
    assert s == 200 and len(body) == 1
    res = body[0]
    assert list(res) == RESOURCE_KEYS
    assert TS.match(res["timestamp_created"])
    py = res["tasks_python_config"]
    assert res == {
        "id": 1, "name": "Local resource", "type": "local", "prevent_new_submissions": False,
        "timestamp_created": res["timestamp_created"], "host": None, "jobs_local_dir": str(tmp_path / "data-jobs"),
        "jobs_runner_config": {"parallel_tasks_per_job": None}, "jobs_slurm_python_worker": None,
        "jobs_poll_interval": 0, "tasks_local_dir": str(tmp_path / "data-tasks"),
        "tasks_python_config": {"default_version": py["default_version"], "versions": py["versions"],
                                "pip_cache_dir": None},
        "tasks_pixi_config": {},
    }
    assert http.get("/admin/v2/resource/1/")[:2] == (200, res)
    assert http.get("/admin/v2/resource/999/")[:2] == (404, {"detail": "Resource 999 not found"})
    s, body, _ = http.get("/admin/v2/resource/one/")
    assert s == 422
    assert body["detail"] == [{"type": "int_parsing", "loc": ["path", "resource_id"],
                               "msg": "Input should be a valid integer, unable to parse string as an integer",
                               "input": "one"}]


def test_create_local_resource_normalises_and_fills_defaults(server):
    http = admin(server)
    body = dict(LOCAL, name="  Second  ", jobs_local_dir=" /srv//jobs/./x/ ", unknown_key="ignored",
                jobs_slurm_python_worker=None, host=None, jobs_runner_config={"parallel_tasks_per_job": "2"},
                tasks_python_config={"default_version": " 3.12", "versions": {"3.12": "/usr//bin/python3.12/"},
                                     "pip_cache_dir": "/cache/"},
                tasks_pixi_config={" versions ": PIXI["versions"], "default_version": "0.41.0", "extra": 1})
    s, res, _ = http.post("/admin/v2/resource/", body=body)
    assert s == 201, res
    assert list(res) == RESOURCE_KEYS and TS.match(res["timestamp_created"])
    assert res == {
        "id": 2, "name": "Second", "type": "local", "prevent_new_submissions": False,
        "timestamp_created": res["timestamp_created"], "host": None, "jobs_local_dir": "/srv/jobs/x",
        "jobs_runner_config": {"parallel_tasks_per_job": 2}, "jobs_slurm_python_worker": None,
        "jobs_poll_interval": 5, "tasks_local_dir": "/srv/tasks",
        "tasks_python_config": {"default_version": "3.12", "versions": {"3.12": "/usr/bin/python3.12"},
                                "pip_cache_dir": "/cache"},
        "tasks_pixi_config": PIXI_STORED,
    }
    assert http.get("/admin/v2/resource/2/")[1] == res
    # lists are ordered by id
    s, body, _ = http.post("/admin/v2/resource/", body=dict(LOCAL, name="A first in the alphabet",
                                                              prevent_new_submissions=True, jobs_poll_interval=3))
    assert s == 201 and body["prevent_new_submissions"] is True and body["jobs_poll_interval"] == 3
    assert [r["id"] for r in http.get("/admin/v2/resource/")[1]] == [1, 2, 3]
    # the name is unique (after stripping)
    for name in ("Local resource", " Second "):
        assert detail(http, "POST", "/admin/v2/resource/", dict(LOCAL, name=name)) == \
            f"Resource with name '{name.strip()}' already exists."


def test_resource_type_must_be_the_runner_backend(server):
    http = admin(server)
    assert detail(http, "POST", "/admin/v2/resource/", SUDO) == \
        "settings.FRACTAL_RUNNER_BACKEND='local' != new_resource.type=<ResourceType.SLURM_SUDO: 'slurm_sudo'>"
    # checked before looking the resource up
    assert detail(http, "PUT", "/admin/v2/resource/999/", SSH) == \
        "settings.FRACTAL_RUNNER_BACKEND='local' != new_resource.type=<ResourceType.SLURM_SSH: 'slurm_ssh'>"
    assert detail(http, "PUT", "/admin/v2/resource/999/", LOCAL, status=404) == "Resource 999 not found"


@pytest.mark.parametrize("backend", ["slurm_sudo", "slurm_ssh"])
def test_slurm_resources_on_a_slurm_server(env, tmp_path, backend):
    s = with_backend(env, tmp_path, backend)
    try:
        http = admin(s)
        body = copy.deepcopy(SUDO if backend == "slurm_sudo" else SSH)
        if backend == "slurm_ssh":
            body["tasks_pixi_config"] = dict(PIXI, SLURM_CONFIG=PIXI_SLURM)
        status, res, _ = http.post("/admin/v2/resource/", body=body)
        assert status == 201, res
        assert res["type"] == backend and res["jobs_slurm_python_worker"] == "/venv/bin/python"
        assert res["host"] == (None if backend == "slurm_sudo" else "cluster.example.org")
        assert res["jobs_runner_config"] == SLURM_RUNNER_STORED
        # stored keys keep upstream's order (PostgreSQL's jsonb orders them its own way)
        assert list(res["jobs_runner_config"]["user_local_exports"]) == ["NAPARI_CONFIG", "CELLPOSE_LOCAL_MODELS_PATH"] \
            or env["DB_ENGINE"] == "postgres"
        if backend == "slurm_ssh":
            assert res["tasks_pixi_config"] == dict(PIXI_STORED, SLURM_CONFIG=dict(
                PIXI_SLURM, mem_per_cpu=None, preamble=[]))
        # a profile of the same type, and of another type
        pbody = SSH_PROFILE if backend == "slurm_ssh" else {"resource_type": "slurm_sudo", "name": "p", "username": "u"}
        status, prof, _ = http.post(f"/admin/v2/resource/{res['id']}/profile/", body=pbody)
        assert status == 201 and prof["resource_type"] == backend
        assert detail(http, "POST", "/admin/v2/resource/1/profile/", pbody) == \
            f"resource.type='local' differs from new_profile.resource_type=" \
            f"<ResourceType.{backend.upper()}: '{backend}'>."
        # PUT the existing local resource: its type is not the backend's
        assert "FRACTAL_RUNNER_BACKEND" in detail(http, "PUT", "/admin/v2/resource/1/", LOCAL)
        status, res2, _ = http.request("PUT", f"/admin/v2/resource/{res['id']}/",
                                       body=dict(body, jobs_poll_interval=60, name="renamed"))
        assert status == 200 and res2["jobs_poll_interval"] == 60 and res2["name"] == "renamed"
    finally:
        assert s.stop() == 0, s.output()


def test_resource_body_validation(server):
    http = admin(server)
    url = "/admin/v2/resource/"
    # the discriminator
    assert detail(http, "POST", url, {}) == [{
        "type": "union_tag_not_found", "loc": ["body"],
        "msg": "Unable to extract tag using discriminator get_discriminator_value()", "input": {},
        "ctx": {"discriminator": "get_discriminator_value()"}}]
    assert detail(http, "POST", url, [1, 2])[0]["type"] == "union_tag_not_found"
    for tag, shown in (("slurm", "slurm"), (1, "1"), (["local"], "['local']"), (True, "True")):
        assert detail(http, "POST", url, dict(LOCAL, type=tag)) == [{
            "type": "union_tag_invalid", "loc": ["body"],
            "msg": f"Input tag '{shown}' found using get_discriminator_value() does not match any of the "
                   f"expected tags: {EXPECTED_TAGS}",
            "input": dict(LOCAL, type=tag),
            "ctx": {"discriminator": "get_discriminator_value()", "tag": shown, "expected_tags": EXPECTED_TAGS}}]
    assert detail(http, "POST", url) == [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    # upstream's own case: a SLURM-SSH resource without host
    assert detail(http, "POST", url, dict(SSH, host=None)) == [{
        "type": "string_type", "loc": ["body", "slurm_ssh", "host"], "msg": "Input should be a valid string",
        "input": None}]
    # required fields, in the model's order, each with the whole input
    only_type = {"type": "slurm_sudo"}
    assert detail(http, "POST", url, only_type) == [
        missing(["body", "slurm_sudo", f], only_type) for f in
        ("name", "tasks_python_config", "tasks_pixi_config", "tasks_local_dir", "jobs_local_dir",
         "jobs_runner_config", "jobs_slurm_python_worker")]
    # local resources: no host, no worker, a local runner config that forbids extra keys
    bad = dict(LOCAL, host="h", jobs_slurm_python_worker="/w", jobs_runner_config={"parallel_tasks_per_job": 1.5, "x": 1},
               name="", jobs_poll_interval="often", prevent_new_submissions="maybe")
    assert detail(http, "POST", url, bad) == [
        {"type": "string_too_short", "loc": ["body", "local", "name"], "msg": "String should have at least 1 character",
         "input": "", "ctx": {"min_length": 1}},
        {"type": "int_from_float", "loc": ["body", "local", "jobs_runner_config", "parallel_tasks_per_job"],
         "msg": "Input should be a valid integer, got a number with a fractional part", "input": 1.5},
        {"type": "extra_forbidden", "loc": ["body", "local", "jobs_runner_config", "x"],
         "msg": "Extra inputs are not permitted", "input": 1},
        {"type": "int_parsing", "loc": ["body", "local", "jobs_poll_interval"],
         "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "often"},
        {"type": "bool_parsing", "loc": ["body", "local", "prevent_new_submissions"],
         "msg": "Input should be a valid boolean, unable to interpret input", "input": "maybe"},
        {"type": "none_required", "loc": ["body", "local", "jobs_slurm_python_worker"], "msg": "Input should be None",
         "input": "/w"},
        {"type": "none_required", "loc": ["body", "local", "host"], "msg": "Input should be None", "input": "h"},
    ]
    # paths
    bad = dict(LOCAL, jobs_local_dir="jobs", tasks_local_dir="/srv/../tasks")
    assert detail(http, "POST", url, bad) == [
        value_error(["body", "local", "tasks_local_dir"], "String must not contain '/../'.", "/srv/../tasks"),
        value_error(["body", "local", "jobs_local_dir"], "String must be an absolute path (given 'jobs').", "jobs"),
    ]
    # Python settings
    py = {"default_version": "3.11", "versions": {"3.8": "/usr/bin/python3.8", "3.12": "python3"}}
    assert detail(http, "POST", url, dict(LOCAL, tasks_python_config=py)) == [
        {"type": "literal_error", "loc": ["body", "local", "tasks_python_config", "versions", "3.8", "[key]"],
         "msg": "Input should be '3.9', '3.10', '3.11', '3.12', '3.13' or '3.14'", "input": "3.8",
         "ctx": {"expected": "'3.9', '3.10', '3.11', '3.12', '3.13' or '3.14'"}},
        value_error(["body", "local", "tasks_python_config", "versions", "3.12"],
                    "String must be an absolute path (given 'python3').", "python3"),
    ]
    py = {"default_version": "3.11", "versions": {"3.12": "/p12", "3.13": "/p13"}}
    assert detail(http, "POST", url, dict(LOCAL, tasks_python_config=py)) == [value_error(
        ["body", "local", "tasks_python_config"],
        "The default Python version ('3.11') is not available in ['3.12', '3.13'].", py)]
    assert detail(http, "POST", url, dict(LOCAL, tasks_python_config="3.12")) == [{
        "type": "model_attributes_type", "loc": ["body", "local", "tasks_python_config"],
        "msg": "Input should be a valid dictionary or object to extract fields from", "input": "3.12"}]


def test_pixi_and_slurm_config_validation(server):
    http = admin(server)
    url = "/admin/v2/resource/"
    loc = ["body", "local", "tasks_pixi_config"]
    pixi = {"versions": {"0.41.0": "/opt/pixi/0.41.0"}, "default_version": "0.40.0"}
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=pixi)) == [value_error(
        loc, "Default version '0.40.0' not in available version ['0.41.0'].", pixi)]
    pixi = {"versions": {"0.41.0": "/opt/pixi/0.41.0", "0.40.0": "/elsewhere/0.40.0"}, "default_version": "0.41.0"}
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=pixi)) == [value_error(
        loc, "pixi_path=PosixPath('/elsewhere/0.40.0') is not located within the "
             "pixi_base_dir=PosixPath('/opt/pixi').", pixi)]
    pixi = {"versions": {"0.41.0": "/opt/pixi/0.41.0", "0.40.0": "/opt/pixi/0.39.0"}, "default_version": "0.41.0"}
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=pixi)) == [value_error(
        loc, "pixi_path.name='0.39.0' is not equal to key='0.40.0'", pixi)]
    pixi = {" ": 1, "versions": {}}
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=pixi)) == [{
        "type": "string_too_short", "loc": loc + [" ", "[key]"], "msg": "String should have at least 1 character",
        "input": " ", "ctx": {"min_length": 1}}]
    # inside the pixi settings (validated by a plain constructor upstream: "model_type" errors)
    pixi = dict(PIXI, versions={"a": "/x/a", " a ": "/x/a"}, SLURM_CONFIG="big")
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=pixi)) == [
        value_error(loc + ["versions"], "Dictionary contains multiple identical keys: "
                                        "'{'a': '/x/a', ' a ': '/x/a'}'.", {"a": "/x/a", " a ": "/x/a"}),
        {"type": "model_type", "loc": loc + ["SLURM_CONFIG"],
         "msg": "Input should be a valid dictionary or instance of PixiSLURMConfig", "input": "big",
         "ctx": {"class_name": "PixiSLURMConfig"}},
    ]
    slurm = {"partition": "p", "cpus": 0, "time": "1", "mem": "8"}
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=dict(PIXI, SLURM_CONFIG=slurm))) == [
        {"type": "greater_than", "loc": loc + ["SLURM_CONFIG", "cpus"], "msg": "Input should be greater than 0",
         "input": 0, "ctx": {"gt": 0}},
        value_error(loc + ["SLURM_CONFIG", "mem"],
                    "Invalid memory requirement '8' for `pixi`, please set a K/M/G/T units suffix.", "8"),
    ]
    slurm = {"partition": "p", "cpus": 1, "time": "1", "mem": "8G", "mem_per_cpu": "1G"}
    assert detail(http, "POST", url, dict(LOCAL, tasks_pixi_config=dict(PIXI, SLURM_CONFIG=slurm))) == [
        value_error(loc + ["SLURM_CONFIG"], "You must set either `mem` or `mem_per_cpu`.", slurm)]
    # SLURM-SSH resources with pixi need its SLURM configuration (checked before the backend)
    body = dict(SSH, tasks_pixi_config=PIXI)
    assert detail(http, "POST", url, body) == [value_error(
        ["body", "slurm_ssh"], "`tasks_pixi_config` must include `SLURM_CONFIG`.", body)]
    # SLURM runner configuration
    runner = {"default_slurm_config": {"mem": "1X", "cpus_per_task": -1, "extra_lines": "x", "foo": 1},
              "batching_config": {"target_num_jobs": 1, "max_num_jobs": 1, "target_cpus_per_job": 1,
                                  "max_cpus_per_job": 1, "target_mem_per_job": -5, "max_mem_per_job": None},
              "user_local_exports": {"": "x"}}
    rloc = ["body", "slurm_sudo", "jobs_runner_config"]
    assert detail(http, "POST", url, dict(SUDO, jobs_runner_config=runner)) == [
        {"type": "greater_than", "loc": rloc + ["default_slurm_config", "cpus_per_task"],
         "msg": "Input should be greater than 0", "input": -1, "ctx": {"gt": 0}},
        value_error(rloc + ["default_slurm_config", "mem"],
                    "[_parse_mem_value] raw_mem='1X', invalid specification of memory requirements "
                    "(valid examples: 93, 71M, 93G, 71T).", "1X"),
        {"type": "list_type", "loc": rloc + ["default_slurm_config", "extra_lines"],
         "msg": "Input should be a valid list", "input": "x"},
        {"type": "extra_forbidden", "loc": rloc + ["default_slurm_config", "foo"],
         "msg": "Extra inputs are not permitted", "input": 1},
        {"type": "greater_than", "loc": rloc + ["batching_config", "target_mem_per_job", "constrained-int"],
         "msg": "Input should be greater than 0", "input": -5, "ctx": {"gt": 0}},
        {"type": "string_type", "loc": rloc + ["batching_config", "target_mem_per_job", "constrained-str"],
         "msg": "Input should be a valid string", "input": -5},
        {"type": "int_type", "loc": rloc + ["batching_config", "max_mem_per_job", "constrained-int"],
         "msg": "Input should be a valid integer", "input": None},
        {"type": "string_type", "loc": rloc + ["batching_config", "max_mem_per_job", "constrained-str"],
         "msg": "Input should be a valid string", "input": None},
        value_error(rloc + ["user_local_exports"], "Empty string in [''].", {"": "x"}),
    ]
    assert detail(http, "POST", url, dict(SUDO, jobs_runner_config={})) == [
        missing(rloc + ["default_slurm_config"], {}), missing(rloc + ["batching_config"], {})]


def test_update_resource(server):
    http = admin(server)
    s, second, _ = http.post("/admin/v2/resource/", body=LOCAL)
    assert s == 201
    url = f"/admin/v2/resource/{second['id']}/"
    # keeping its own name is fine; every field is overwritten, the timestamp stays
    new = dict(LOCAL, prevent_new_submissions=True, tasks_local_dir="/new/tasks")
    s, res, _ = http.request("PUT", url, body=new)
    assert s == 200, res
    assert res == dict(second, prevent_new_submissions=True, tasks_local_dir="/new/tasks", jobs_poll_interval=5)
    s, res, _ = http.request("PUT", url, body=dict(new, name="Renamed", jobs_poll_interval=7))
    assert s == 200 and res["name"] == "Renamed" and res["jobs_poll_interval"] == 7
    assert res["timestamp_created"] == second["timestamp_created"]
    assert http.get(url)[1] == res
    assert detail(http, "PUT", url, dict(LOCAL, name="Local resource")) == \
        "Resource with name 'Local resource' already exists."
    # path and body errors come together, the path's first
    assert detail(http, "PUT", "/admin/v2/resource/x/", {"type": "local"})[:2] == [
        {"type": "int_parsing", "loc": ["path", "resource_id"],
         "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x"},
        missing(["body", "local", "name"], {"type": "local"})]
    assert http.get(url)[1] == res


def test_delete_resource(server, db):
    http = admin(server)
    s, res, _ = http.post("/admin/v2/resource/", body=LOCAL)
    rid = res["id"]
    url = f"/admin/v2/resource/{rid}/"
    s, prof, _ = http.post(f"{url}profile/", body={"resource_type": "local", "name": "p"})
    assert s == 201

    def refused(table):
        d = detail(http, "DELETE", url)
        assert d == (
            "IntegrityError for resource deletion. Original error:\n(psycopg.errors.ForeignKeyViolation) update or "
            f"delete on table \"resource\" violates foreign key constraint \"fk_{table}_resource_id_resource\" on "
            f"table \"{table}\"\nDETAIL:  Key (id)=({rid}) is still referenced from table \"{table}\".\n[SQL: DELETE "
            f"FROM resource WHERE resource.id = %(id)s::INTEGER]\n[parameters: {{'id': {rid}}}]\n(Background on "
            "this error at: https://sqlalche.me/e/20/gkpj)")
        assert http.get(url)[0] == 200

    refused("profile")
    assert http.request("DELETE", f"/admin/v2/profile/{prof['id']}/")[0] == 204
    db.execute(f"INSERT INTO projectv2 (name, timestamp_created, resource_id) "
               f"VALUES ('p', '2025-01-01T00:00:00.000000+00:00', {rid})")
    refused("projectv2")
    db.execute("DELETE FROM projectv2")
    db.execute("INSERT INTO taskgroupv2 (user_id, origin, pkg_name, version, active, timestamp_created, resource_id) "
               f"VALUES (1, 'other', 'pkg', '0', true, '2025-01-01T00:00:00.000000+00:00', {rid})")
    refused("taskgroupv2")
    db.execute("DELETE FROM taskgroupv2")
    s, b, h = http.request("DELETE", url)
    assert (s, b) == (204, None)
    assert "Content-Type" not in h
    assert http.get(url)[:2] == (404, {"detail": f"Resource {rid} not found"})
    assert http.request("DELETE", url)[:2] == (404, {"detail": f"Resource {rid} not found"})
    assert http.request("DELETE", "/admin/v2/resource/nope/")[0] == 422
    assert [r["id"] for r in http.get("/admin/v2/resource/")[1]] == [1]


# ---- profiles ----

def test_profiles_of_a_resource(server):
    http = admin(server)
    s, body, _ = http.get("/admin/v2/resource/1/profile/")
    assert s == 200
    assert body == [{"id": 1, "name": "Local profile", "resource_id": 1, "resource_type": "local", "username": None,
                     "ssh_key_path": None, "jobs_remote_dir": None, "tasks_remote_dir": None, "pixi_cache_dir": None}]
    assert list(body[0]) == PROFILE_KEYS
    assert http.get("/admin/v2/resource/999/profile/")[:2] == (404, {"detail": "Resource 999 not found"})
    s, prof, _ = http.post("/admin/v2/resource/1/profile/", body={"resource_type": "local", "name": " second ",
                                                                   "whatever": 1, "username": None})
    assert s == 201, prof
    assert prof == {"id": 2, "name": "second", "resource_id": 1, "resource_type": "local", "username": None,
                    "ssh_key_path": None, "jobs_remote_dir": None, "tasks_remote_dir": None, "pixi_cache_dir": None}
    assert [p["id"] for p in http.get("/admin/v2/resource/1/profile/")[1]] == [1, 2]
    # a profile for another resource does not show here
    s, res, _ = http.post("/admin/v2/resource/", body=LOCAL)
    assert http.post(f"/admin/v2/resource/{res['id']}/profile/", body={"resource_type": "local", "name": "x"})[0] == 201
    assert [p["id"] for p in http.get("/admin/v2/resource/1/profile/")[1]] == [1, 2]
    assert [p["id"] for p in http.get(f"/admin/v2/resource/{res['id']}/profile/")[1]] == [3]
    # errors: name taken, type mismatch, unknown resource (found before the type is compared)
    assert detail(http, "POST", "/admin/v2/resource/1/profile/", {"resource_type": "local", "name": "second"}) == \
        "Profile with name 'second' already exists."
    sudo = {"resource_type": "slurm_sudo", "name": "s", "username": "u"}
    assert detail(http, "POST", "/admin/v2/resource/1/profile/", sudo) == \
        "resource.type='local' differs from new_profile.resource_type=<ResourceType.SLURM_SUDO: 'slurm_sudo'>."
    assert detail(http, "POST", "/admin/v2/resource/999/profile/", sudo, status=404) == "Resource 999 not found"
    assert detail(http, "POST", "/admin/v2/resource/1/profile/", {"resource_type": "invalid"})[0]["type"] == \
        "union_tag_invalid"


def test_profile_body_validation(server):
    http = admin(server)
    url = "/admin/v2/resource/1/profile/"
    assert detail(http, "POST", url, {"name": "x"}) == [{
        "type": "union_tag_not_found", "loc": ["body"],
        "msg": "Unable to extract tag using discriminator get_discriminator_value()", "input": {"name": "x"},
        "ctx": {"discriminator": "get_discriminator_value()"}}]
    body = {"resource_type": "local", "name": "x", "username": "u", "pixi_cache_dir": "/c"}
    assert detail(http, "POST", url, body) == [
        {"type": "none_required", "loc": ["body", "local", "username"], "msg": "Input should be None", "input": "u"},
        {"type": "none_required", "loc": ["body", "local", "pixi_cache_dir"], "msg": "Input should be None",
         "input": "/c"}]
    body = {"resource_type": "slurm_sudo", "name": "x", "ssh_key_path": "/k"}
    assert detail(http, "POST", url, body) == [
        missing(["body", "slurm_sudo", "username"], body),
        {"type": "none_required", "loc": ["body", "slurm_sudo", "ssh_key_path"], "msg": "Input should be None",
         "input": "/k"}]
    body = {"resource_type": "slurm_ssh", "name": "x", "username": "  ", "ssh_key_path": "key",
            "jobs_remote_dir": "/a/../b", "pixi_cache_dir": 3}
    assert detail(http, "POST", url, body) == [
        {"type": "string_too_short", "loc": ["body", "slurm_ssh", "username"],
         "msg": "String should have at least 1 character", "input": "  ", "ctx": {"min_length": 1}},
        value_error(["body", "slurm_ssh", "ssh_key_path"], "String must be an absolute path (given 'key').", "key"),
        value_error(["body", "slurm_ssh", "jobs_remote_dir"], "String must not contain '/../'.", "/a/../b"),
        missing(["body", "slurm_ssh", "tasks_remote_dir"], body),
        {"type": "string_type", "loc": ["body", "slurm_ssh", "pixi_cache_dir"], "msg": "Input should be a valid string",
         "input": 3}]


def test_profile_list_get_update_delete(server, db):
    http = admin(server)
    s, res, _ = http.post("/admin/v2/resource/", body=LOCAL)
    for rid, name in ((res["id"], "b"), (1, "a")):
        assert http.post(f"/admin/v2/resource/{rid}/profile/", body={"resource_type": "local", "name": name})[0] == 201
    s, body, _ = http.get("/admin/v2/profile/")
    assert s == 200 and [(p["id"], p["name"], p["resource_id"]) for p in body] == \
        [(1, "Local profile", 1), (2, "b", res["id"]), (3, "a", 1)]
    assert http.get("/admin/v2/profile/2/")[:2] == (200, body[1])
    assert http.get("/admin/v2/profile/999/")[:2] == (404, {"detail": "Profile 999 not found"})
    assert detail(http, "GET", "/admin/v2/profile/two/")[0]["loc"] == ["path", "profile_id"]
    # PUT overwrites every field; like upstream it does not compare the type with the resource's
    s, prof, _ = http.request("PUT", "/admin/v2/profile/2/", body=dict(SSH_PROFILE, jobs_remote_dir="/remote//jobs/",
                                                                      pixi_cache_dir="/pixi/cache"))
    assert s == 200, prof
    assert prof == {"id": 2, "name": "ssh-profile", "resource_id": res["id"], "resource_type": "slurm_ssh",
                    "username": "fractal", "ssh_key_path": "/keys/id_ed25519", "jobs_remote_dir": "/remote/jobs",
                    "tasks_remote_dir": "/remote/tasks", "pixi_cache_dir": "/pixi/cache"}
    assert http.get("/admin/v2/profile/2/")[1] == prof
    s, prof, _ = http.request("PUT", "/admin/v2/profile/2/", body={"resource_type": "local", "name": "ssh-profile"})
    assert s == 200 and prof["username"] is None and prof["resource_type"] == "local"
    assert detail(http, "PUT", "/admin/v2/profile/2/", {"resource_type": "local", "name": "a"}) == \
        "Profile with name 'a' already exists."
    assert detail(http, "PUT", "/admin/v2/profile/999/", {"resource_type": "local", "name": "z"}, status=404) == \
        "Profile 999 not found"
    assert detail(http, "PUT", "/admin/v2/profile/2/", dict(SSH_PROFILE, username=None)) == [{
        "type": "string_type", "loc": ["body", "slurm_ssh", "username"], "msg": "Input should be a valid string",
        "input": None}]
    # DELETE: not while users have it
    assert detail(http, "DELETE", "/admin/v2/profile/1/") == \
        "Cannot delete Profile 1 because it's associated with 1 UserOAuths."
    s, b, _ = http.request("DELETE", "/admin/v2/profile/2/")
    assert (s, b) == (204, None)
    assert http.get("/admin/v2/profile/2/")[0] == 404
    assert http.request("DELETE", "/admin/v2/profile/2/")[:2] == (404, {"detail": "Profile 2 not found"})
    assert [p["id"] for p in http.get("/admin/v2/profile/")[1]] == [1, 3]


# ---- init-db-data accepts the same documents ----

def test_init_db_data_validates_like_the_api(env, db, tmp_path):
    assert run(["set-db"], env=env, cwd=tmp_path).returncode == 0
    res = dict(SSH, tasks_pixi_config=dict(PIXI, SLURM_CONFIG=dict(PIXI_SLURM, mem=" 8G ")))
    (tmp_path / "ssh.json").write_text(json.dumps(res))
    (tmp_path / "prof.json").write_text(json.dumps(SSH_PROFILE))
    (tmp_path / "bad.json").write_text(json.dumps(dict(SSH, host=None, jobs_local_dir="jobs")))
    r = run(["init-db-data", "--resource", "bad.json", "--profile", "prof.json"], env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert ("2 validation errors for cast_serialize_resource\n"
            "0.slurm_ssh.jobs_local_dir\n"
            "  Value error, String must be an absolute path (given 'jobs'). [type=value_error, input_value='jobs', "
            "input_type=str]\n"
            "    For further information visit https://errors.pydantic.dev/2.13/v/value_error\n"
            "0.slurm_ssh.host\n"
            "  Input should be a valid string [type=string_type, input_value=None, input_type=NoneType]") in r.stderr
    r = run(["init-db-data", "--resource", "ssh.json", "--profile", "prof.json"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = db.query("SELECT type, host, jobs_runner_config, tasks_pixi_config FROM resource")[0]
    assert row[:2] == ["slurm_ssh", "cluster.example.org"]
    assert json.loads(row[2]) == SLURM_RUNNER_STORED
    assert json.loads(row[3]) == dict(PIXI_STORED, SLURM_CONFIG=dict(PIXI_SLURM, mem_per_cpu=None, preamble=[]))
    assert db.query("SELECT resource_type, username, ssh_key_path FROM profile") == \
        [["slurm_ssh", "fractal", "/keys/id_ed25519"]]
    # memory sizes end in MB: "3T", a digit string, an integral float, a repeated unit
    runner = copy.deepcopy(SLURM_RUNNER)
    runner["default_slurm_config"]["mem"] = " 3T "
    runner["gpu_slurm_config"]["mem"] = "5GG"
    runner["batching_config"].update(target_mem_per_job="10", max_mem_per_job=2.0)
    (tmp_path / "ssh2.json").write_text(json.dumps(dict(res, name="other", jobs_runner_config=runner)))
    (tmp_path / "prof2.json").write_text(json.dumps(dict(SSH_PROFILE, name="other")))
    r = run(["init-db-data", "--resource", "ssh2.json", "--profile", "prof2.json"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stored = json.loads(db.query("SELECT jobs_runner_config FROM resource WHERE name = 'other'")[0][0])
    assert (stored["default_slurm_config"]["mem"], stored["gpu_slurm_config"]["mem"]) == (3000000, 5000)
    assert (stored["batching_config"]["target_mem_per_job"], stored["batching_config"]["max_mem_per_job"]) == (10, 2)
