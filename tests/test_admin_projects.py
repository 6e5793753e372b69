"""Admin views of projects and sharing links; ownership transfer; guest verification."""
import pytest


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def new_user(api, email, guest=False, dirs=("/data/u",), profile=1):
    admin = api.token
    u = api.post("/auth/register/", body={"email": email, "password": "abcd", "project_dirs": list(dirs)})[1]
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": profile, "is_guest": guest})
    return u["id"], api.login(email, "abcd")


def test_admin_project_list(api):
    bid, bob = new_user(api, "bob@example.org")
    api.post("/api/v2/project/", body={"name": "zeta"})
    api.post("/api/v2/project/", body={"name": "alpha"})
    api.post("/api/v2/project/", body={"name": "bobs"}, token=bob)
    status, page, _ = api.get("/admin/v2/project/")
    assert status == 200
    assert [(p["user_email"], p["name"]) for p in page["items"]] == [
        ("admin@example.org", "alpha"), ("admin@example.org", "zeta"), ("bob@example.org", "bobs")]
    assert page["total_count"] == 3 and page["page_size"] == 3
    assert list(page["items"][0]) == ["id", "name", "description", "is_starred", "timestamp_created", "user_email"]
    page = api.get("/admin/v2/project/?user_email=bob@example.org")[1]
    assert [p["name"] for p in page["items"]] == ["bobs"] and page["total_count"] == 1
    page = api.get("/admin/v2/project/?name=ETA&page=1&page_size=1")[1]
    assert [p["name"] for p in page["items"]] == ["zeta"] and page["total_count"] == 1
    assert api.get("/admin/v2/project/", token=bob)[0] == 403


def test_transfer_ownership(api, server):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})
    bid, bob = new_user(api, "bob@example.org", dirs=("/data/bob",))
    status, body, _ = api.request("PATCH", f"/admin/v2/project/{pid}/?user_id={bid}")
    assert status == 422 and "is not relative to one of bob@example.org project dirs" in body["detail"]
    api.request("PATCH", f"/auth/users/{bid}/", body={"project_dirs": ["/data/bob", str(server.cwd)]})
    assert api.request("PATCH", f"/admin/v2/project/{pid}/?user_id=1")[1] == \
        {"detail": f"User 1 is already the owner of project {pid}."}
    assert api.request("PATCH", f"/admin/v2/project/{pid}/?user_id={bid}")[0] == 200
    assert [p["id"] for p in api.get("/api/v2/project/", token=bob)[1]] == [pid]
    assert api.get("/api/v2/project/")[1] == []
    assert api.request("PATCH", f"/admin/v2/project/999/?user_id={bid}")[1] == {"detail": "Project 999 not found."}
    assert api.request("PATCH", f"/admin/v2/project/{pid}/?user_id=999")[1] == {"detail": "User 999 not found."}
    status, body, _ = api.request("PATCH", f"/admin/v2/project/{pid}/")
    assert status == 422 and body["detail"][0]["loc"] == ["query", "user_id"]
    gid, _ = new_user(api, "g@example.org", guest=True)
    assert api.request("PATCH", f"/admin/v2/project/{pid}/?user_id={gid}")[1] == \
        {"detail": "Cannot transfer ownership to a guest user."}


def test_links_and_guest_verification(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    gid, g = new_user(api, "g@example.org", guest=True)
    bid, _ = new_user(api, "bob@example.org")
    api.post(f"/api/v2/project/{pid}/guest/?email=g@example.org", body={"permissions": "rw"})
    api.post(f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "r"})
    page = api.get("/admin/v2/linkuserproject/")[1]
    assert [(x["user_email"], x["is_owner"], x["is_verified"], x["permissions"]) for x in page["items"]] == [
        ("admin@example.org", True, True, "rwx"), ("bob@example.org", False, False, "r"), ("g@example.org", False, False, "rw")]
    assert api.get("/admin/v2/linkuserproject/?is_owner=false&user_id=%d" % gid)[1]["total_count"] == 1
    assert api.get("/admin/v2/linkuserproject/?is_verified=true")[1]["total_count"] == 1
    v = lambda u: api.post(f"/admin/v2/linkuserproject/verify/?guest_user_id={u}&project_id={pid}")
    assert v(bid)[1] == {"detail": "Cannot accept invitations for non-guest users."}
    assert v(gid)[1] == {"detail": "Guest users can only have 'r' permission (given: 'rw')"}
    api.request("PATCH", f"/api/v2/project/{pid}/guest/?email=g@example.org", body={"permissions": "r"})
    assert v(gid)[0] == 200
    assert v(gid)[1] == {"detail": "No pending invitation for user on this project."}
    assert api.get(f"/api/v2/project/{pid}/", token=g)[0] == 200
