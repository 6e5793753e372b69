"""Workflow templates: create, list, get, patch, delete, export, import, and import-from-template."""
from datetime import datetime

import pytest

from test_tasks import new_group, new_user
from test_workflows import task

TPL_KEYS = ["id", "user_email", "name", "version", "timestamp_created", "timestamp_last_used", "user_group_id",
            "description", "data", "fractal_server_version"]
WFT_EXPORT_KEYS = ["meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel", "type_filters",
                   "description", "alias", "task"]


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


@pytest.fixture
def wf(api):
    t = task(api, "tpl-task", version="1.0.0")
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    w = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "foo"})[1]
    return pid, w["id"], t


def test_template_lifecycle(api, wf, db):
    pid, wid, t = wf
    empty = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "empty"})[1]["id"]
    assert api.post(f"/api/v2/workflow-template/?workflow_id={empty}", body={"name": "t", "version": 1})[1] == \
        {"detail": f"Workflow {empty} has empty `task_list`."}
    assert api.post("/api/v2/workflow-template/?workflow_id=999", body={"name": "t", "version": 1})[1] == \
        {"detail": "Workflow 999 not found."}
    api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": t["id"], "args_non_parallel": {"a": 1}}])
    status, err, _ = api.post(f"/api/v2/workflow-template/?workflow_id={wid}", body={"name": "t", "version": 0})
    assert status == 422 and err["detail"][0]["type"] == "greater_than"
    status, tpl, _ = api.post(f"/api/v2/workflow-template/?workflow_id={wid}", body={"name": " t ", "version": 1})
    assert status == 201, tpl
    assert list(tpl) == TPL_KEYS and tpl["user_email"] == "admin@example.org" and tpl["name"] == "t"
    assert tpl["user_group_id"] is None and tpl["description"] is None and tpl["fractal_server_version"] == "2.24.2"
    assert datetime.fromisoformat(tpl["timestamp_last_used"]) > datetime.fromisoformat(tpl["timestamp_created"])
    assert tpl["data"]["name"] == "foo" and list(tpl["data"]["task_list"][0]) == WFT_EXPORT_KEYS
    assert tpl["data"]["task_list"][0]["task"] == {"pkg_name": "tpl-task", "version": "1.0.0", "name": "tpl-task"}
    assert api.post(f"/api/v2/workflow-template/?workflow_id={wid}", body={"name": "t", "version": 1})[1] == \
        {"detail": "The current user already own a workflow template with name='t' and version=1."}
    assert api.post(f"/api/v2/workflow-template/?workflow_id={wid}&user_group_id=999",
                    body={"name": "t", "version": 2})[1] == {"detail": "UserGroup 999 not found"}
    # get, export
    status, got, _ = api.get(f"/api/v2/workflow-template/{tpl['id']}/")
    assert status == 200 and got == tpl
    status, ex, _ = api.get(f"/api/v2/workflow-template/{tpl['id']}/export/")
    assert status == 200 and ex == {"name": "t", "version": 1, "description": None, "data": tpl["data"]}
    assert api.get("/api/v2/workflow-template/999/")[1] == {"detail": "WorkflowTemplate[999] not found."}
    # import: duplicate, then a new version, then an empty one
    assert api.post("/api/v2/workflow-template/import/", body=ex)[0] == 422
    status, imp, _ = api.post("/api/v2/workflow-template/import/?user_group_id=1", body=dict(ex, version=2))
    assert status == 201 and imp["version"] == 2 and imp["user_group_id"] == 1 and imp["data"] == tpl["data"]
    status, err, _ = api.post("/api/v2/workflow-template/import/",
                              body=dict(ex, version=3, data=dict(ex["data"], task_list=[])))
    assert status == 422 and err["detail"] == "Imported template has empty `data.task_list`."
    # patch
    status, p, _ = api.request("PATCH", f"/api/v2/workflow-template/{tpl['id']}/",
                               body={"user_group_id": 1, "description": "desc"})
    assert status == 200 and p["user_group_id"] == 1 and p["description"] == "desc"
    status, p, _ = api.request("PATCH", f"/api/v2/workflow-template/{tpl['id']}/", body={"user_group_id": None})
    assert status == 200 and p["user_group_id"] is None and p["description"] == "desc"
    # import-from-template
    url = f"/api/v2/project/{pid}/workflow/import-from-template/?template_id={tpl['id']}"
    assert api.post(url, body={})[1] == {"detail": f"Workflow with name='foo' and project_id={pid} already exists."}
    t2 = task(api, "tpl-task", version="1.0.1")
    status, w2, _ = api.post(url, body={"name": "bar", "override_versions": {"0": "1.0.1"}})
    assert status == 201 and w2["template_id"] == tpl["id"] and w2["task_list"][0]["task_id"] == t2["id"]
    assert w2["task_list"][0]["args_non_parallel"] == {"a": 1}
    assert api.get(f"/api/v2/workflow-template/{tpl['id']}/")[1]["timestamp_last_used"] > tpl["timestamp_last_used"]
    status, w3, _ = api.post(url, body={"name": "baz", "override_versions": {"-1": "1.0.0"}})
    assert status == 201 and w3["task_list"][0]["task_id"] == t["id"]
    assert api.post(url, body={"name": "x", "override_versions": {"1": "1.0.1"}})[1] == \
        {"detail": "Task index out of bound in `override_versions`."}
    status, err, _ = api.post(url, body={"name": "x", "override_versions": {"a": "1"}})
    assert status == 422 and err["detail"][0]["msg"] == "Input should be a valid integer, unable to parse string as an integer"
    assert err["detail"][0]["loc"] == ["body", "override_versions", "a", "[key]"]
    assert api.post(f"/api/v2/project/{pid}/workflow/import-from-template/?template_id=999", body={})[0] == 404
    # delete: the workflows made from it stay
    assert api.request("DELETE", f"/api/v2/workflow-template/{tpl['id']}/")[0] == 204
    assert api.get(f"/api/v2/workflow-template/{tpl['id']}/")[0] == 404
    assert api.get(f"/api/v2/project/{pid}/workflow/{w2['id']}/")[1]["template_id"] is None


def test_template_import_without_type_filters(api, wf):
    # upstream stores it, then answers 500 to it and to every read of it; we show {}
    body = {"name": "raw", "version": 1, "data": {"name": "w", "task_list": [
        {"task": {"pkg_name": "tpl-task", "version": "1.0.0", "name": "tpl-task"}}]}}
    status, tpl, _ = api.post("/api/v2/workflow-template/import/", body=body)
    assert status == 201 and tpl["data"]["task_list"][0]["type_filters"] == {}
    assert api.get(f"/api/v2/workflow-template/{tpl['id']}/")[0] == 200
    body["data"]["task_list"][0]["input_filters"] = {"attributes": {}, "types": {"b": True}}
    status, tpl, _ = api.post("/api/v2/workflow-template/import/", body=dict(body, version=2))
    assert status == 201 and tpl["data"]["task_list"][0]["type_filters"] == {"b": True}


def test_template_list_and_permissions(api, wf, db):
    pid, wid, t = wf
    api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": t["id"]}])
    uid, tok = new_user(api, "a-user@example.org")
    _, stranger = new_user(api, "stranger@example.org")
    db.execute(f"DELETE FROM linkusergroup WHERE user_id <> 1")
    gid = new_group(api, "team", 1, uid)

    def make(name, version, token=None, group=None, w=wid):
        q = f"?workflow_id={w}" + (f"&user_group_id={group}" if group else "")
        status, body, _ = api.post(f"/api/v2/workflow-template/{q}", body={"name": name, "version": version}, token=token)
        assert status == 201, body
        return body["id"]

    t_other1, t_other2, t_tpl = make("other", 1), make("other", 2), make("template", 2)
    # the user's own workflow, readable by the admin: templates of the user
    p2 = api.post("/api/v2/project/", body={"name": "p"}, token=tok)[1]["id"]
    api.post(f"/api/v2/task/?user_group_id={gid}", body={"name": "ut", "version": "1", "command_non_parallel": "x"},
             token=tok)
    w2 = api.post(f"/api/v2/project/{p2}/workflow/", body={"name": "w"}, token=tok)[1]["id"]
    ut = api.get("/api/v2/task/", token=tok)[1]
    api.post(f"/api/v2/project/{p2}/workflow/{w2}/wftask/", body=[{"task_id": ut[-1]["id"]}], token=tok)
    t_shared = make("template2", 1, token=tok, group=gid, w=w2)
    t_private = make("template2", 2, token=tok, w=w2)
    status, page, _ = api.get("/api/v2/workflow-template/")
    assert status == 200 and list(page) == ["current_page", "page_size", "total_count", "items", "email_list"]
    assert (page["current_page"], page["page_size"], page["total_count"]) == (1, 3, 3)
    assert page["email_list"] == ["a-user@example.org", "admin@example.org"]
    assert page["items"] == [
        {"user_email": "admin@example.org", "template_name": "other",
         "templates": [{"template_id": t_other2, "template_version": 2}, {"template_id": t_other1, "template_version": 1}]},
        {"user_email": "admin@example.org", "template_name": "template",
         "templates": [{"template_id": t_tpl, "template_version": 2}]},
        {"user_email": "a-user@example.org", "template_name": "template2",
         "templates": [{"template_id": t_shared, "template_version": 1}]}]
    page = api.get("/api/v2/workflow-template/?page_size=2&page=2")[1]
    assert (page["current_page"], page["page_size"], page["total_count"]) == (2, 2, 3)
    assert [i["templates"][0]["template_id"] for i in page["items"]] == [t_shared]
    items = api.get(f"/api/v2/workflow-template/?template_id={t_other1}")[1]["items"]
    assert [[m["template_id"] for m in i["templates"]] for i in items] == [[t_other1]]
    items = api.get("/api/v2/workflow-template/?is_owner=true")[1]["items"]
    assert [i["template_name"] for i in items] == ["other", "template"]
    items = api.get("/api/v2/workflow-template/?user_email=a-user@example.org")[1]["items"]
    assert [i["template_name"] for i in items] == ["template2"]
    items = api.get("/api/v2/workflow-template/?name=TEMPLATE")[1]["items"]
    assert [i["template_name"] for i in items] == ["template", "template2"]
    items = api.get("/api/v2/workflow-template/?version=2")[1]["items"]
    assert [[m["template_id"] for m in i["templates"]] for i in items] == [[t_other2], [t_tpl]]
    assert api.get("/api/v2/workflow-template/?page=0")[0] == 422
    # the owner sees both of the user's versions, first
    items = api.get("/api/v2/workflow-template/", token=tok)[1]["items"]
    assert items[0]["template_name"] == "template2" and len(items[0]["templates"]) == 2
    # permissions: group member reads, only the owner writes, strangers get 403
    assert api.get(f"/api/v2/workflow-template/{t_shared}/")[0] == 200
    assert api.get(f"/api/v2/workflow-template/{t_shared}/export/")[0] == 200
    assert api.get(f"/api/v2/workflow-template/{t_private}/")[1] == \
        {"detail": f"You are not authorized to view WorkflowTemplate[{t_private}]."}
    assert api.request("PATCH", f"/api/v2/workflow-template/{t_shared}/", body={})[1] == \
        {"detail": f"You are not the owner of WorkflowTemplate[{t_shared}]."}
    assert api.request("DELETE", f"/api/v2/workflow-template/{t_shared}/")[0] == 403
    assert api.request("PATCH", f"/api/v2/workflow-template/{t_shared}/", body={"user_group_id": 1}, token=tok)[1] == \
        {"detail": f"User {uid} does not belong to UserGroup 1"}
    assert api.get(f"/api/v2/workflow-template/{t_shared}/", token=stranger)[0] == 403
    assert api.get("/api/v2/workflow-template/", token=stranger)[1]["items"] == []
    # import-from-template needs read access to the template
    assert api.post(f"/api/v2/project/{pid}/workflow/import-from-template/?template_id={t_private}", body={})[0] == 403
