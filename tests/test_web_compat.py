"""Requests as fractal-web (the browser client) sends them, found by running its
Playwright end-to-end tests against this server."""
import sys
import time
import uuid

from conftest import ADMIN_EMAIL, ADMIN_PWD


def multipart(fields):
    boundary = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def test_login_accepts_a_multipart_form(server):
    # fractal-web posts a FormData (multipart/form-data), as FastAPI's form accepts
    raw, ctype = multipart({"username": ADMIN_EMAIL, "password": ADMIN_PWD})
    status, body, _ = server.http.post("/auth/token/login/", raw=raw, headers={"Content-Type": ctype})
    assert status == 200, body
    assert body["token_type"] == "bearer"
    status, me, _ = server.http.get("/auth/current-user/", token=body["access_token"])
    assert status == 200 and me["email"] == ADMIN_EMAIL
    raw, ctype = multipart({"username": ADMIN_EMAIL, "password": "wrong"})
    status, body, _ = server.http.post("/auth/token/login/", raw=raw, headers={"Content-Type": ctype})
    assert (status, body) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
    raw, ctype = multipart({"username": ADMIN_EMAIL})
    status, body, _ = server.http.post("/auth/token/login/", raw=raw, headers={"Content-Type": ctype})
    assert status == 422
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [("missing", ["body", "password"])]


def test_multipart_parameters_inside_quotes_are_part_of_the_value(server):
    # found by fuzz/fuzz_form.c: the parameters were found by looking for `name=` after any ';', also one
    # inside an earlier quoted value, so this part (a file upload of field "x") was read as field
    # "username"; python-multipart, Starlette's reader, keeps a quoted value whole: there is no username
    boundary = uuid.uuid4().hex
    raw = (f'--{boundary}\r\nContent-Disposition: form-data; filename="a; name=username;"; name="x"\r\n'
           f'\r\n{ADMIN_EMAIL}\r\n'
           f'--{boundary}\r\nContent-Disposition: form-data; name="password"\r\n\r\n{ADMIN_PWD}\r\n'
           f'--{boundary}--\r\n').encode()
    status, body, _ = server.http.post("/auth/token/login/", raw=raw,
                                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 422, body
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [("missing", ["body", "username"])]

def test_login_body_of_another_type_is_an_empty_form(server):
    # Starlette reads a form only from the two form types: anything else has no fields
    raw = f"username={ADMIN_EMAIL}&password={ADMIN_PWD}".encode()
    status, body, _ = server.http.post("/auth/token/login/", raw=raw, headers={"Content-Type": "text/plain"})
    assert status == 422
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [
        ("missing", ["body", "username"]), ("missing", ["body", "password"])]


# ---- fractal-web 1.29.6's end-to-end flows that failed against us (issue 20): the answers they read ----

def web_api(server):
    server.http.token = server.http.login()
    return server.http


def test_version_tab_sequence(server):
    # VersionUpdate.svelte: the candidates give task_id and version; it reads GET /task/{task_id}/, posts
    # replace-task, then the page reloads the workflow and the candidates and keeps the answered wftask
    api = web_api(server)
    schema = {"properties": {"p": {"type": "string"}}, "type": "object"}
    ids = []
    for v, c in (("0.0.1", "command1"), ("0.0.2", "command2")):
        s, t, _ = api.post("/api/v2/task/?private=false&user_group_id=1", body={
            "name": "web-task", "type": "non_parallel", "version": v, "command_non_parallel": c,
            "input_types": {}, "output_types": {}, "args_schema_version": "pydantic_v2",
            "args_schema_non_parallel": schema})
        assert s == 201, t
        ids.append(t["id"])
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "w"})[1]["id"]
    s, added, _ = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": ids[0]}])
    assert s == 201, added
    wft = added[0]
    s, cands, _ = api.get(f"/api/v2/project/{pid}/workflow/{wid}/version-update-candidates/")
    assert (s, cands) == (200, [[{"task_id": ids[1], "version": "0.0.2"}]])
    s, cand, _ = api.get(f"/api/v2/task/{cands[0][0]['task_id']}/")
    assert s == 200 and (cand["id"], cand["version"], cand["args_schema_version"]) == (ids[1], "0.0.2", "pydantic_v2")
    s, new, _ = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/replace-task/"
                         f"?workflow_task_id={wft['id']}&task_id={cand['id']}",
                         body={"args_non_parallel": {}, "args_parallel": None})
    assert s == 201, new
    assert (new["id"], new["workflow_id"], new["task_id"], new["task"]["id"], new["task"]["version"]) == (
        wft["id"], wid, ids[1], ids[1], "0.0.2")
    s, wf, _ = api.get(f"/api/v2/project/{pid}/workflow/{wid}/")
    assert [(t["id"], t["task"]["id"]) for t in wf["task_list"]] == [(wft["id"], ids[1])]
    # newVersionsMap is keyed by task_list[i].task.id: the new task has no candidates
    assert api.get(f"/api/v2/project/{pid}/workflow/{wid}/version-update-candidates/")[1] == [[]]


def test_types_tab_reads_the_dataset_types_from_one_image_page(server, tmp_path):
    # InputFiltersTab.svelte shows "Add type filter from dataset" when a one-image page of the dataset has
    # types: they are those of all the dataset's images, not of the page nor of the filtered images
    api = web_api(server)
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    s, ds, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d", "project_dir": str(tmp_path),
                                                                 "zarr_subfolder": "zarr"})
    assert s == 201, ds
    for name, types in (("img1", {"t1": True}), ("img2", {"t2": False})):
        s, b, _ = api.post(f"/api/v2/project/{pid}/dataset/{ds['id']}/images/",
                           body={"zarr_url": f"{tmp_path}/zarr/{name}", "types": types})
        assert s == 201, b
    q = f"/api/v2/project/{pid}/dataset/{ds['id']}/images/query/?page=1&page_size=1"
    s, page, _ = api.post(q, body={})
    assert s == 200 and page["total_count"] == 2 and len(page["items"]) == 1
    assert page["types"] == ["t1", "t2"]
    s, page, _ = api.post(q, body={"type_filters": {"t1": True}})
    assert (page["total_count"], page["types"]) == (1, ["t1", "t2"])


def test_image_log_holds_the_task_output(server, tmp_path):
    # ImagesStatusModal.svelte shows the image's unit log: all the task wrote on stdout and stderr, in order
    # (fractal-task-tools logs "START <task> task" on stderr)
    api = web_api(server)
    script = tmp_path / "talk.py"
    script.write_text(
        "import argparse, json, logging, sys\n"
        "p = argparse.ArgumentParser(); p.add_argument('--args-json'); p.add_argument('--out-json')\n"
        "a = p.parse_args()\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s; %(message)s')\n"
        "logging.info('START talk task')\n"
        "print('on stdout', json.load(open(a.args_json))['zarr_url'], flush=True)\n"
        "logging.info('END talk task')\n"
        "json.dump(None, open(a.out_json, 'w'))\n")
    s, t, _ = api.post("/api/v2/task/", body={"name": "talk", "version": "0.0.1", "type": "parallel",
                                              "command_parallel": f"{sys.executable} {script}"})
    assert s == 201, t
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    s, ds, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d", "project_dir": str(tmp_path),
                                                                 "zarr_subfolder": "zarr"})
    assert s == 201, ds
    url = f"{tmp_path}/zarr/img"
    assert api.post(f"/api/v2/project/{pid}/dataset/{ds['id']}/images/", body={"zarr_url": url})[0] == 201
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "w"})[1]["id"]
    wft = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": t["id"]}])[1][0]["id"]
    s, job, _ = api.post(f"/api/v2/project/{pid}/job/submit/?workflow_id={wid}&dataset_id={ds['id']}", body={})
    assert s == 202, job
    deadline = time.time() + 60
    while job["status"] == "submitted" and time.time() < deadline:
        time.sleep(0.1)
        job = api.get(f"/api/v2/project/{pid}/job/{job['id']}/")[1]
    assert job["status"] == "done", job
    s, log, _ = api.post(f"/api/v2/project/{pid}/status/image-log/",
                         body={"workflowtask_id": wft, "dataset_id": ds["id"], "zarr_url": url})
    assert (s, log) == (200, f"INFO; START talk task\non stdout {url}\nINFO; END talk task\n")
