"""Hardening (issue 19, findings 3, 5, 6 and 9): requests that used to create
objects cross-site, answer PostgreSQL's 500s, store values that could not be
read back, or slip through string checks. docs/security.md says what each
defends against and where it differs from upstream."""
import http.client
import json
import random
import socket
import sys

import pytest

from conftest import Server, init_db, run
from test_collection import post_form
from test_workflows import task

NOT_OBJECT = "Input should be a valid dictionary or object to extract fields from"


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def raw_post(server, path, body, headers):
    """A POST exactly as given: no Content-Type unless headers has one."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", path, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body)
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    return r.status, json.loads(text) if text else None


def projects(api):
    return [p["name"] for p in api.get("/api/v2/project/")[1]]


# ---- 3: a JSON body only under a JSON Content-Type ----

@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])
def test_a_json_body_under_another_content_type_creates_nothing(server, api, ctype):
    """FastAPI (strict_content_type, its default) does not parse such a body:
    the raw text fails the model, which is what stops a cross-site 'simple'
    POST carrying the fastapiusersauth cookie."""
    body = b'{"name": "csrf"}'
    headers = {"Cookie": f"fastapiusersauth={api.token}"}
    if ctype:
        headers["Content-Type"] = ctype
    status, got = raw_post(server, "/api/v2/project/", body, headers)
    assert (status, got) == (422, {"detail": [{"type": "model_attributes_type", "loc": ["body"], "msg": NOT_OBJECT,
                                               "input": body.decode()}]})
    assert "csrf" not in projects(api)


def test_a_list_body_under_another_content_type_is_not_a_list(server, api):
    t = task(api, "t")
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "w"})[1]["id"]
    body = json.dumps([{"task_id": t["id"]}]).encode()
    status, got = raw_post(server, f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body,
                           {"Authorization": f"Bearer {api.token}", "Content-Type": "text/plain"})
    assert (status, got) == (422, {"detail": [{"type": "list_type", "loc": ["body"],
                                               "msg": "Input should be a valid list", "input": body.decode()}]})


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON",
                                   "application/vnd.fractal+json"])
def test_json_content_types_still_parse(server, api, ctype):
    status, got = raw_post(server, "/api/v2/project/", b'{"name": "ok"}',
                           {"Authorization": f"Bearer {api.token}", "Content-Type": ctype})
    assert status == 201, got


def test_login_keeps_its_form(server):
    status, got = raw_post(server, "/auth/token/login/", b"username=admin%40example.org&password=1234",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and got["access_token"], got


# ---- 5: indexed text has a maximum length, on both engines ----

def random_text(n):
    """Text PostgreSQL cannot compress into its index (a run of one letter
    would fit)."""
    rnd = random.Random(n)
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def too_long(loc, value):
    return {"type": "string_too_long", "loc": loc, "msg": "String should have at most 512 characters",
            "input": value, "ctx": {"max_length": 512}}


def test_a_long_group_name_is_a_422(api):
    name = random_text(9000)
    status, got, _ = api.post("/auth/group/", body={"name": name})
    assert (status, got) == (422, {"detail": [too_long(["body", "name"], name)]})
    # 512 characters of four bytes each still fit PostgreSQL's index
    wide = "".join(chr(0x1F600 + i % 64) for i in range(512))
    status, got, _ = api.post("/auth/group/", body={"name": wide})
    assert status == 201 and got["name"] == wide, got


def test_a_long_task_name_is_a_422(api):
    name = random_text(9000)
    status, got, _ = api.post("/api/v2/task/", body={"name": name, "version": "1", "command_non_parallel": "x"})
    assert (status, got) == (422, {"detail": [too_long(["body", "name"], name)]})


def test_a_long_template_name_is_a_422(api):
    t = task(api, "t")
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "w"})[1]["id"]
    assert api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": t["id"]}])[0] == 201
    name = random_text(9000)
    status, got, _ = api.post(f"/api/v2/workflow-template/?workflow_id={wid}", body={"name": name, "version": 1})
    assert (status, got) == (422, {"detail": [too_long(["body", "name"], name)]})


def test_a_long_resource_name_is_a_422(api):
    name = random_text(9000)
    body = {"type": "local", "name": name, "jobs_local_dir": "/srv/jobs", "tasks_local_dir": "/srv/tasks",
            "jobs_runner_config": {}, "tasks_pixi_config": {},
            "tasks_python_config": {"default_version": "3.12", "versions": {"3.12": "/usr/bin/python3.12"}}}
    status, got, _ = api.post("/admin/v2/resource/", body=body)
    assert status == 422, got
    errs = got["detail"] if isinstance(got["detail"], list) else None
    assert errs and errs[0]["type"] == "string_too_long" and errs[0]["loc"][-1] == "name", got
    assert errs[0]["ctx"] == {"max_length": 512}


def test_long_emails_get_email_validators_answer(api):
    """Upstream's own limits (pydantic's 2048, email-validator's 254)."""
    huge = random_text(9000) + "@example.org"
    status, got, _ = api.post("/auth/register/", body={"email": huge, "password": "12345678"})
    assert status == 422, got
    assert got["detail"][0]["msg"] == "value is not a valid email address: Length must not exceed 2048 characters"
    assert got["detail"][0]["loc"] == ["body", "email"]
    long = random_text(300) + "@example.org"
    status, got, _ = api.post("/auth/register/", body={"email": long, "password": "12345678"})
    assert status == 422, got
    assert got["detail"][0]["ctx"] == {"reason": "The email address is too long (58 characters too many)."}


def test_a_long_zarr_url_is_a_422(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    ds = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    url = ds["zarr_dir"] + "/" + random_text(9000)
    status, got, _ = api.post(f"/api/v2/project/{pid}/dataset/{ds['id']}/images/", body={"zarr_url": url})
    assert status == 422 and got["detail"][0]["type"] == "string_too_long", got
    assert got["detail"][0]["loc"] == ["body", "zarr_url"]


# ---- 6: no body deeper than what can be read back ----

def nested(depth):
    """An object with depth levels of objects and arrays in all."""
    v = 0
    for i in range(depth):
        v = {"k": v} if (depth - i) % 2 else [v]
    return v


@pytest.fixture
def deep_python():
    """Python's json stops near 1,000 levels: the client needs more."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    yield
    sys.setrecursionlimit(old)


def test_deep_args_are_refused_and_what_is_accepted_reads_back(api, deep_python):
    t = task(api, "t")
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "w"})[1]["id"]
    url = f"/api/v2/project/{pid}/workflow/{wid}/wftask/"
    # the list and its item are two levels: args of 998 make a body of 1000
    status, got, _ = api.post(url, body=[{"task_id": t["id"], "args_non_parallel": nested(2045)}])
    assert status == 422, got
    err = got["detail"][0]
    assert err["type"] == "json_invalid" and err["loc"][0] == "body", got
    assert err["ctx"]["error"] == "Nesting too deep: more than 1000 levels of arrays and objects"
    status, got, _ = api.post(url, body=[{"task_id": t["id"], "args_non_parallel": nested(999)}])
    assert status == 422, got
    status, got, _ = api.post(url, body=[{"task_id": t["id"], "args_non_parallel": nested(998)}])
    assert status == 201, got
    # a template of that workflow (the args three levels further in) reads back
    status, tpl, _ = api.post(f"/api/v2/workflow-template/?workflow_id={wid}", body={"name": "t", "version": 1})
    assert status == 201, tpl
    status, got, _ = api.get(f"/api/v2/workflow-template/{tpl['id']}/")
    assert status == 200 and got["data"]["task_list"][0]["args_non_parallel"] == nested(998)
    assert api.get(f"/api/v2/project/{pid}/workflow/{wid}/export/")[0] == 200


def test_brackets_inside_strings_do_not_count(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    name = '["\\' * 1500 + "{" * 1500
    status, got, _ = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": name})
    assert status == 201 and got["name"] == name, got


# ---- 9a: a zarr_url inside zarr_dir, not only after it as a string ----

def test_an_image_beside_the_zarr_dir_is_refused(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    ds = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    z = ds["zarr_dir"]
    status, got, _ = api.post(f"/api/v2/project/{pid}/dataset/{ds['id']}/images/", body={"zarr_url": z + "x/img"})
    assert (status, got) == (422, {"detail": f"Cannot create image with zarr_url which is not relative to {z}."})
    assert api.post(f"/api/v2/project/{pid}/dataset/{ds['id']}/images/", body={"zarr_url": z + "/img"})[0] == 201


# ---- 9b: a symbolic link in the project dir does not lead out of it ----

def test_a_symlink_out_of_the_project_dir_is_refused(api, tmp_path):
    other = tmp_path.parent / (tmp_path.name + "-other-user")
    other.mkdir()
    (tmp_path / "link").symlink_to(other)
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    zarr_dir = f"{tmp_path}/link/ds"
    status, got, _ = api.post(f"/api/v2/project/{pid}/dataset/import/",
                              body={"name": "d", "zarr_dir": zarr_dir, "images": []})
    assert (status, got) == (422, {"detail": f"dataset.zarr_dir='{zarr_dir}' is not relative to any of user's "
                                             "project dirs."})
    status, got, _ = api.post(f"/api/v2/project/{pid}/dataset/",
                              body={"name": "d", "project_dir": str(tmp_path), "zarr_subfolder": "link/ds"})
    assert status == 422, got
    assert api.get(f"/api/v2/project/{pid}/dataset/")[1] == []
    # a real folder (existing or not) is still fine
    (tmp_path / "real").mkdir()
    for z in (f"{tmp_path}/real/ds", f"{tmp_path}/new/ds"):
        status, got, _ = api.post(f"/api/v2/project/{pid}/dataset/import/",
                                  body={"name": "d", "zarr_dir": z, "images": []})
        assert status == 201, got


# ---- 9c: %00 in a path ----

def test_a_nul_in_the_path_serves_nothing_else(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    # decoded, the NUL used to end the path: /api/v2/project/ (the list)
    status, got, _ = api.get("/api/v2/project/%00/")
    assert status == 422 and got["detail"][0]["loc"] == ["path", "project_id"], got
    status, got, _ = api.get(f"/api/v2/project/{pid}/%00")
    assert (status, got) == (404, {"detail": "Not Found"})
    assert api.get(f"/api/v2/project/{pid}/")[0] == 200


# ---- 9d: Transfer-Encoding and Content-Length together ----

def test_both_body_framings_are_refused(server, api):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    body = b'{"name": "smuggled"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    s.sendall(b"POST /api/v2/project/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + api.token.encode() + b"\r\n"
              b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    data = b""
    while True:
        part = s.recv(65536)
        if not part:
            break  # the server closes the connection after its answer
        data += part
    s.close()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert data.endswith(b"Invalid HTTP request received."), data
    assert "smuggled" not in projects(api)


# ---- 9e: a wheel without a distribution name ----

def test_a_wheel_without_a_name_is_refused(api):
    status, got, _ = post_form(api, "/api/v2/task/collect/pip/", {}, {"file": ("-.whl", b"PK")})
    assert (status, got) == (422, {"detail": ["Invalid wheel-file name -.whl. Original error: Invalid "
                                              "wheel_filename='-.whl'. Original error: empty distribution name."]})


# ---- 9f: SQLite's synchronous setting ----

def test_sqlite_synchronous_is_full_unless_set(env, tmp_path, db):
    e = init_db(env, tmp_path)
    for value, shown in ((None, "FULL"), ("NORMAL", "NORMAL")):
        ee = dict(e)
        if value:
            ee["SQLITE_SYNCHRONOUS"] = value
        s = Server(ee, tmp_path)
        try:
            tok = s.http.login()
            status, got, _ = s.http.get("/api/settings/database/", token=tok)
            assert status == 200 and got["SQLITE_SYNCHRONOUS"] == shown, got
        finally:
            assert s.stop() == 0
    r = run(["start", "--port", "1"], env=dict(e, SQLITE_SYNCHRONOUS="OFF"), cwd=tmp_path)
    assert r.returncode != 0 and "SQLITE_SYNCHRONOUS" in r.stderr + r.stdout
