"""Auth: user groups and the default group's rules."""
import pytest

from conftest import Server, init_db


@pytest.fixture
def admin(server):
    return server.http.login()


def test_group_create_list_get(server, admin):
    status, g, _ = server.http.post("/auth/group/", body={"name": "  team  "}, token=admin)
    assert status == 201
    assert g["name"] == "team" and g["user_ids"] == [] and g["id"] == 2
    assert g["timestamp_created"].endswith("+00:00") and "T" in g["timestamp_created"]
    status, body, _ = server.http.post("/auth/group/", body={"name": "team"}, token=admin)
    assert (status, body) == (422, {"detail": "A group with the same name already exists"})
    status, body, _ = server.http.post("/auth/group/", body={"name": "  "}, token=admin)
    assert status == 422 and body["detail"][0]["type"] == "string_too_short"
    status, body, _ = server.http.post("/auth/group/", body={"name": "x", "viewer_paths": []}, token=admin)
    assert status == 422 and body["detail"][0]["type"] == "extra_forbidden"
    status, groups, _ = server.http.get("/auth/group/", token=admin)
    assert [(x["id"], x["name"], x["user_ids"]) for x in groups] == [(1, "All", None), (2, "team", None)]
    status, groups, _ = server.http.get("/auth/group/?user_ids=true", token=admin)
    assert [(x["id"], x["user_ids"]) for x in groups] == [(1, [1]), (2, [])]
    status, one, _ = server.http.get("/auth/group/1/", token=admin)
    assert one["user_ids"] == [1] and one["name"] == "All"
    assert server.http.get("/auth/group/9/", token=admin)[1] == {"detail": "UserGroup 9 not found."}


def test_add_and_remove_users(server, admin):
    gid = server.http.post("/auth/group/", body={"name": "team"}, token=admin)[1]["id"]
    status, g, _ = server.http.post(f"/auth/group/{gid}/add-user/1/", token=admin)
    assert status == 200 and g["user_ids"] == [1]
    status, body, _ = server.http.post(f"/auth/group/{gid}/add-user/1/", token=admin)
    assert (status, body) == (422, {"detail": f"User 'admin@example.org' is already a member of group {gid}."})
    assert server.http.post(f"/auth/group/{gid}/add-user/9/", token=admin)[1] == {"detail": "User 9 not found."}
    assert server.http.post("/auth/group/9/add-user/1/", token=admin)[1] == {"detail": "UserGroup 9 not found."}
    status, g, _ = server.http.post(f"/auth/group/{gid}/remove-user/1/", token=admin)
    assert status == 200 and g["user_ids"] == []
    status, body, _ = server.http.post(f"/auth/group/{gid}/remove-user/1/", token=admin)
    assert (status, body) == (422, {"detail": f"User 'admin@example.org' is not a member of group {gid}."})
    status, body, _ = server.http.post("/auth/group/1/remove-user/1/", token=admin)
    assert (status, body) == (422, {"detail": ["Cannot remove user from 'All' group."]})


def test_delete_group(server, admin, db):
    gid = server.http.post("/auth/group/", body={"name": "team"}, token=admin)[1]["id"]
    server.http.post(f"/auth/group/{gid}/add-user/1/", token=admin)
    status, body, _ = server.http.request("DELETE", f"/auth/group/{gid}/", token=admin)
    assert status == 204 and body is None
    assert db.query(f"SELECT count(*) FROM linkusergroup WHERE group_id = {gid}") == [["0"]]
    assert server.http.request("DELETE", f"/auth/group/{gid}/", token=admin)[0] == 404
    status, body, _ = server.http.request("DELETE", "/auth/group/1/", token=admin)
    assert (status, body) == (422, {"detail": "Cannot delete default UserGroup 'All'."})


def test_without_default_group_setting_any_group_can_be_deleted(env, tmp_path):
    e = init_db(env, tmp_path, default_group=False)
    s = Server(e, tmp_path)
    try:
        admin = s.http.login()
        gid = s.http.post("/auth/group/", body={"name": "All"}, token=admin)[1]["id"]
        s.http.post(f"/auth/group/{gid}/add-user/1/", token=admin)
        assert s.http.post(f"/auth/group/{gid}/remove-user/1/", token=admin)[0] == 200
        assert s.http.request("DELETE", f"/auth/group/{gid}/", token=admin)[0] == 204
        # registration adds nobody to any group
        body = {"email": "u@example.org", "password": "abcd", "project_dirs": ["/d"]}
        uid = s.http.post("/auth/register/", body=body, token=admin)[1]["id"]
        assert s.http.get(f"/auth/users/{uid}/", token=admin)[1]["group_ids_names"] == []
    finally:
        assert s.stop() == 0
