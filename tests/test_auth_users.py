"""Auth: registration, users, current user, login/logout, impersonation, CSV."""
import time

import pytest

from conftest import ADMIN_EMAIL, Server, init_db


def register(http, token, **kw):
    body = {"email": "user@example.org", "password": "abcd", "project_dirs": ["/data/user"]}
    body.update(kw)
    return http.post("/auth/register/", body=body, token=token)


@pytest.fixture
def admin(server):
    return server.http.login()


def make_user(server, admin, email="user@example.org", verified=True, profile=True, **kw):
    status, user, _ = register(server.http, admin, email=email, **kw)
    assert status == 201, user
    patch = {"is_verified": verified}
    if profile:
        patch["profile_id"] = 1
    status, user, _ = server.http.request("PATCH", f"/auth/users/{user['id']}/", body=patch, token=admin)
    assert status == 200, user
    return user, server.http.login(email, kw.get("password", "abcd"))


def test_register_creates_an_unverified_user_in_the_default_group(server, admin):
    status, user, _ = register(server.http, admin, email="New@Example.ORG", project_dirs=["/data/new/"],
                               slurm_accounts=["acc_1", "acc-2.x"], is_superuser=True, is_verified=True,
                               is_active=False, profile_id="1")
    assert status == 201, user
    assert user == {
        "id": 2, "email": "New@example.org", "is_active": True, "is_superuser": False, "is_verified": False,
        "is_guest": False, "group_ids_names": None, "oauth_accounts": [], "profile_id": 1,
        "project_dirs": ["/data/new"], "slurm_accounts": ["acc_1", "acc-2.x"],
    }
    status, full, _ = server.http.get("/auth/users/2/", token=admin)
    assert full["group_ids_names"] == [[1, "All"]]
    # the new user logs in (case-insensitively) and reads itself
    token = server.http.login("new@EXAMPLE.org", "abcd")
    status, me, _ = server.http.get("/auth/current-user/", token=token)
    assert status == 200 and me["id"] == 2 and me["group_ids_names"] is None


def test_register_refuses_duplicates_and_bad_passwords(server, admin):
    assert register(server.http, admin)[0] == 201
    status, body, _ = register(server.http, admin, email="USER@example.org")
    assert (status, body) == (400, {"detail": "REGISTER_USER_ALREADY_EXISTS"})
    status, body, _ = register(server.http, admin, email="other@example.org", password="abc")
    assert status == 400
    assert body == {"detail": {"code": "REGISTER_INVALID_PASSWORD",
                               "reason": "The password is too short (length = 3, minimum length = 4)."}}
    status, body, _ = register(server.http, admin, email="other@example.org", password="é" * 37)
    assert status == 400
    assert body["detail"]["reason"] == "The password is too long (length = 74 bytes, maximum length = 72 bytes)."
    assert server.http.get("/auth/users/", token=admin)[1].__len__() == 2


@pytest.mark.parametrize("body,loc,typ", [
    ({"email": "x@example.org", "password": "abcd"}, ["body", "project_dirs"], "missing"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": []}, ["body", "project_dirs"], "too_short"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": ["rel/dir"]}, ["body", "project_dirs"], "value_error"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": ["/a", "/a/"]}, ["body", "project_dirs"], "value_error"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": ["/a;rm"]}, ["body", "project_dirs"], "value_error"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": ["/a"], "slurm_accounts": ["a b"]},
     ["body", "slurm_accounts"], "value_error"),
    ({"email": "not-an-email", "password": "abcd", "project_dirs": ["/a"]}, ["body", "email"], "value_error"),
    ({"password": "abcd", "project_dirs": ["/a"]}, ["body", "email"], "missing"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": ["/a"], "profile_id": "one"},
     ["body", "profile_id"], "int_parsing"),
    ({"email": "x@example.org", "password": "abcd", "project_dirs": ["/a"], "is_guest": "maybe"},
     ["body", "is_guest"], "bool_parsing"),
])
def test_register_validation_errors_are_pydantic_shaped(server, admin, body, loc, typ):
    status, resp, _ = server.http.post("/auth/register/", body=body, token=admin)
    assert status == 422, resp
    errs = resp["detail"]
    assert any(e["loc"] == loc and e["type"] == typ for e in errs), errs
    assert all({"type", "loc", "msg", "input"} <= set(e) for e in errs)


def test_register_with_missing_profile_is_404(server, admin):
    status, body, _ = register(server.http, admin, profile_id=99)
    assert (status, body) == (404, {"detail": "Profile 99 not found."})


def test_malformed_json_body_is_422(server, admin):
    status, body, _ = server.http.request("POST", "/auth/register/", raw=b"{not json", token=admin,
                                          headers={"Content-Type": "application/json"})
    assert status == 422
    assert body["detail"][0]["type"] == "json_invalid"
    assert body["detail"][0]["msg"] == "JSON decode error"
    status, body, _ = server.http.request("POST", "/auth/register/", raw=b"[1, 2]", token=admin,
                                          headers={"Content-Type": "application/json"})
    assert status == 422 and body["detail"][0]["type"] == "model_attributes_type"
    status, body, _ = server.http.request("POST", "/auth/register/", token=admin)
    assert status == 422 and body["detail"] == [{"type": "missing", "loc": ["body"], "msg": "Field required",
                                                 "input": None}]


def test_users_list_get_and_profile_filter(server, admin):
    make_user(server, admin, "a@example.org")
    register(server.http, admin, email="b@example.org")
    status, users, _ = server.http.get("/auth/users/", token=admin)
    assert status == 200
    assert [u["email"] for u in users] == [ADMIN_EMAIL, "a@example.org", "b@example.org"]
    assert all(u["group_ids_names"] is None for u in users)
    status, users, _ = server.http.get("/auth/users/?profile_id=1", token=admin)
    assert [u["email"] for u in users] == [ADMIN_EMAIL, "a@example.org"]
    status, user, _ = server.http.get("/auth/users/3/?group_ids_names=false", token=admin)
    assert status == 200 and user["group_ids_names"] is None
    assert server.http.get("/auth/users/99/", token=admin)[1] == {"detail": "User 99 not found."}
    status, body, _ = server.http.get("/auth/users/x/", token=admin)
    assert status == 422 and body["detail"][0]["loc"] == ["path", "user_id"]


def test_patch_user(server, admin):
    user, _ = make_user(server, admin, "a@example.org")
    uid = user["id"]
    p = lambda body: server.http.request("PATCH", f"/auth/users/{uid}/", body=body, token=admin)
    status, u, _ = p({"email": "renamed@example.org"})
    assert status == 200 and u["email"] == "renamed@example.org" and u["is_verified"] is False
    assert u["group_ids_names"] == [[1, "All"]]
    status, u, _ = p({"email": "other@example.org", "is_verified": True})
    assert u["is_verified"] is True
    assert p({"email": ADMIN_EMAIL.upper()})[1] == {"detail": "UPDATE_USER_EMAIL_ALREADY_EXISTS"}
    status, body, _ = p({"password": "xyz"})
    assert status == 400 and body["detail"]["code"] == "UPDATE_USER_INVALID_PASSWORD"
    assert p({"password": "  brand-new  "})[0] == 200
    assert server.http.login("other@example.org", "brand-new")
    assert p({"is_guest": True})[0] == 200
    status, body, _ = p({"is_superuser": True, "is_guest": True})
    assert (status, body) == (422, {"detail": "Superuser cannot be guest."})
    assert p({"profile_id": 42}) [1] == {"detail": "Profile 42 not found."}
    status, u, _ = p({"profile_id": None, "project_dirs": ["/x/y/"], "slurm_accounts": []})
    assert status == 200 and u["profile_id"] is None and u["project_dirs"] == ["/x/y"] and u["slurm_accounts"] == []
    status, body, _ = p({"unknown": 1, "is_active": None})
    assert status == 422
    assert {e["type"] for e in body["detail"]} == {"extra_forbidden", "bool_type"}
    assert server.http.request("PATCH", "/auth/users/99/", body={}, token=admin)[0] == 404


def test_deactivated_user_cannot_log_in_or_use_a_token(server, admin):
    user, token = make_user(server, admin, "a@example.org")
    assert server.http.request("PATCH", f"/auth/users/{user['id']}/", body={"is_active": False}, token=admin)[0] == 200
    assert server.http.get("/auth/current-user/", token=token)[0] == 401
    status, body, _ = server.http.post("/auth/token/login/", form={"username": "a@example.org", "password": "abcd"})
    assert (status, body) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})


def test_current_user_patch_and_profile_info(server, admin):
    user, token = make_user(server, admin, "a@example.org")
    status, me, _ = server.http.request("PATCH", "/auth/current-user/", body={"slurm_accounts": ["x", "y"]}, token=token)
    assert status == 200 and me["slurm_accounts"] == ["x", "y"] and me["group_ids_names"] == [[1, "All"]]
    status, body, _ = server.http.request("PATCH", "/auth/current-user/", body={"password": "hack"}, token=token)
    assert status == 422 and body["detail"][0]["type"] == "extra_forbidden"
    status, body, _ = server.http.request("PATCH", "/auth/current-user/", body={"slurm_accounts": ["x", "x"]},
                                          token=token)
    assert status == 422 and "repetitions" in body["detail"][0]["msg"]
    assert server.http.get("/auth/current-user/profile-info/", token=token)[1] == {
        "has_profile": True, "resource_name": "Local resource", "profile_name": "Local profile", "username": None}
    server.http.request("PATCH", f"/auth/users/{user['id']}/", body={"profile_id": None, "is_guest": True}, token=admin)
    assert server.http.get("/auth/current-user/profile-info/", token=token)[1] == {
        "has_profile": False, "resource_name": None, "profile_name": None, "username": None}
    status, body, _ = server.http.request("PATCH", "/auth/current-user/", body={}, token=token)
    assert (status, body) == (403, {"detail": "This feature is not available for guest users."})


def test_allowed_viewer_paths(server, admin, db):
    user, token = make_user(server, admin, "a@example.org", project_dirs=["/data/a", "/data/b"])
    assert server.http.get("/auth/current-user/allowed-viewer-paths/", token=token)[1] == ["/data/a", "/data/b"]
    db.execute("INSERT INTO projectv2 (name, timestamp_created, resource_id) VALUES ('p', '2024-01-01T00:00:00+00:00', 1);"
               "INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
               f"VALUES (1, {user['id']}, true, true, 'rwx');"
               "INSERT INTO datasetv2 (name, project_id, timestamp_created, zarr_dir) "
               "VALUES ('d', 1, '2024-01-01T00:00:00+00:00', '/elsewhere/zarr')")
    assert server.http.get("/auth/current-user/allowed-viewer-paths/", token=token)[1] == \
        ["/data/a", "/data/b", "/elsewhere/zarr"]
    assert server.http.get("/auth/current-user/allowed-viewer-paths/?include_shared_projects=false",
                           token=token)[1] == ["/data/a", "/data/b"]
    # removing the project dir that holds a dataset's zarr_dir is refused
    user2, _ = make_user(server, admin, "b@example.org", project_dirs=["/elsewhere"])
    db.execute("INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
               f"VALUES (1, {user2['id']}, false, true, 'r')")
    status, body, _ = server.http.request("PATCH", f"/auth/users/{user2['id']}/", body={"project_dirs": ["/other"]},
                                          token=admin)
    assert status == 422 and "removing ['/elsewhere']" in body["detail"]
    unverified = register(server.http, admin, email="c@example.org")[1]
    tok = server.http.login("c@example.org", "abcd")
    status, body, _ = server.http.get("/auth/current-user/allowed-viewer-paths/", token=tok)
    assert (status, body) == (403, {"detail": "Forbidden"})
    assert unverified["is_verified"] is False


def test_set_groups(server, admin):
    user, _ = make_user(server, admin, "a@example.org")
    uid = user["id"]
    g2 = server.http.post("/auth/group/", body={"name": "g2"}, token=admin)[1]["id"]
    g3 = server.http.post("/auth/group/", body={"name": "g3"}, token=admin)[1]["id"]
    sg = lambda ids: server.http.post(f"/auth/users/{uid}/set-groups/", body={"group_ids": ids}, token=admin)
    status, u, _ = sg([g3, 1, g2])
    assert status == 200 and sorted(g[0] for g in u["group_ids_names"]) == [1, g2, g3]
    assert u["group_ids_names"][0] == [1, "All"]
    status, u, _ = sg([1, g2])
    assert [g[0] for g in u["group_ids_names"]] == [1, g2]
    assert sg([1, 99])[1] == {"detail": "Some UserGroups in [1, 99] do not exist."}
    assert sg([g2])[1] == {"detail": ["Cannot remove user from 'All' group."]}
    status, body, _ = sg([])
    assert status == 422 and body["detail"][0]["type"] == "too_short"
    status, body, _ = sg([1, 1])
    assert status == 422 and "repetitions" in body["detail"][0]["msg"]
    status, body, _ = sg([-1])
    assert status == 422 and body["detail"][0]["loc"] == ["body", "group_ids", 0]
    assert server.http.post("/auth/users/99/set-groups/", body={"group_ids": [1]}, token=admin)[0] == 404


def test_logout(server, admin):
    status, body, _ = server.http.post("/auth/token/logout/", token=admin)
    assert status == 204 and body is None
    assert server.http.post("/auth/token/logout/")[0] == 401


def test_cookie_token_is_accepted(server, admin):
    status, me, _ = server.http.get("/auth/current-user/", token="", headers={"Cookie": f"fastapiusersauth={admin}"})
    assert status == 200 and me["email"] == ADMIN_EMAIL


def test_impersonate(server, admin):
    user, _ = make_user(server, admin, "a@example.org")
    status, body, _ = server.http.get(f"/admin/v2/impersonate/{user['id']}/", token=admin)
    assert status == 200 and body["token_type"] == "bearer"
    me = server.http.get("/auth/current-user/", token=body["access_token"])[1]
    assert me["email"] == "a@example.org"
    assert server.http.get("/admin/v2/impersonate/99/", token=admin)[1] == {"detail": "User 99 not found."}


def test_users_csv(server, admin, db):
    make_user(server, admin, "b@example.org", slurm_accounts=["s1", "s2"], project_dirs=["/p1", "/p2"])
    register(server.http, admin, email="noprofile@example.org")
    db.execute("INSERT INTO projectv2 (name, timestamp_created, resource_id) VALUES ('p', '2024-01-01T00:00:00+00:00', 1);"
               "INSERT INTO jobv2 (user_email, dataset_dump, workflow_dump, project_dump, first_task_index, "
               "last_task_index, start_timestamp, status) VALUES ('b@example.org', '{}', '{}', '{}', 0, 0, "
               "'2024-06-01T10:00:00+00:00', 'done')")
    status, text, headers = server.http.get("/admin/v2/users-csv/", token=admin)
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == "attachment"
    assert text.split("\r\n") == [
        "id,email,slurm_username,slurm_accounts,project_dirs,user_groups,num_jobs",
        f"1,{ADMIN_EMAIL},,,{server.cwd},All,0",
        "2,b@example.org,,s1|s2,/p1|/p2,All,1",
        "",
    ]
    text = server.http.get("/admin/v2/users-csv/?exclude_zero_jobs=true", token=admin)[1]
    assert text.split("\r\n")[1:] == ["2,b@example.org,,s1|s2,/p1|/p2,All,1", ""]
    text = server.http.get("/admin/v2/users-csv/?start_timestamp_min=2024-06-01T11:00:00%2B02:00",
                           token=admin)[1]
    assert text.split("\r\n")[2].endswith(",1")
    text = server.http.get("/admin/v2/users-csv/?start_timestamp_min=2024-06-01T10:00:01Z", token=admin)[1]
    assert text.split("\r\n")[2].endswith(",0")
    status, body, _ = server.http.get("/admin/v2/users-csv/?start_timestamp_min=2024-06-01", token=admin)
    assert status == 422 and body["detail"][0]["type"] == "timezone_aware"


def test_expired_token_is_401(env, tmp_path):
    e = init_db(env, tmp_path)
    # exp is whole seconds after the login: 3 s leave room for a slow login under load
    e["JWT_EXPIRE_SECONDS"] = "3"
    s = Server(e, tmp_path)
    try:
        token = s.http.login()
        assert s.http.get("/auth/current-user/", token=token)[0] == 200
        time.sleep(4.1)
        assert s.http.get("/auth/current-user/", token=token) [:2] == (401, {"detail": "Unauthorized"})
    finally:
        assert s.stop() == 0


def test_login_burst_does_not_slow_other_requests(server):
    import threading
    stop = time.time() + 1.5

    def burst():
        while time.time() < stop:
            server.http.post("/auth/token/login/", form={"username": ADMIN_EMAIL, "password": "wrong"})

    threads = [threading.Thread(target=burst) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    worst = 0.0
    while time.time() < stop:
        t0 = time.time()
        assert server.http.get("/api/alive/")[0] == 200
        worst = max(worst, time.time() - t0)
    for t in threads:
        t.join()
    # a login costs ~0.2 s of bcrypt; alive must not queue behind them
    assert worst < 0.15, worst
