"""Project sharing: invitations, guests' permissions, accepting and leaving."""
import pytest


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def new_user(api, email, guest=False):
    admin = api.token
    u = api.post("/auth/register/", body={"email": email, "password": "abcd", "project_dirs": ["/data/u"]})[1]
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": 1, "is_guest": guest})
    return u["id"], api.login(email, "abcd")


def test_invite_accept_use_and_leave(api):
    pid = api.post("/api/v2/project/", body={"name": "shared"})[1]["id"]
    _, bob = new_user(api, "bob@example.org")
    status, body, _ = api.post(f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "rw"})
    assert status == 201 and body is None
    assert api.post(f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "r"})[1] == \
        {"detail": "User is already associated to project."}
    assert api.get(f"/api/v2/project/{pid}/guest/")[1] == [
        {"email": "bob@example.org", "is_verified": False, "permissions": "rw"}]
    # not yet accepted: no access
    assert api.get(f"/api/v2/project/{pid}/", token=bob)[0] == 403
    assert api.get(f"/api/v2/project/{pid}/access/", token=bob)[1] == {"detail": f"User has no access to project {pid}."}
    assert api.get("/api/v2/project/invitation/", token=bob)[1] == [
        {"project_id": pid, "project_name": "shared", "owner_email": "admin@example.org", "guest_permissions": "rw"}]
    assert api.post(f"/api/v2/project/{pid}/access/accept/", token=bob)[0] == 200
    assert api.post(f"/api/v2/project/{pid}/access/accept/", token=bob)[1] == \
        {"detail": "No pending invitation for user on this project."}
    assert api.get("/api/v2/project/invitation/", token=bob)[1] == []
    assert api.get(f"/api/v2/project/{pid}/access/", token=bob)[1] == \
        {"is_owner": False, "permissions": "rw", "owner_email": "admin@example.org"}
    assert api.get(f"/api/v2/project/{pid}/access/")[1] == \
        {"is_owner": True, "permissions": "rwx", "owner_email": "admin@example.org"}
    # rw: can add datasets, cannot delete the project
    assert api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"}, token=bob)[0] == 201
    assert api.request("DELETE", f"/api/v2/project/{pid}/", token=bob)[0] == 403
    # the guest cannot manage guests
    assert api.get(f"/api/v2/project/{pid}/guest/", token=bob)[1] == {"detail": "Current user is not the project owner."}
    # the owner changes permissions, then revokes
    assert api.request("PATCH", f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "r"})[0] == 200
    assert api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "e"}, token=bob)[0] == 403
    assert api.request("PATCH", f"/api/v2/project/{pid}/guest/?email=admin@example.org",
                       body={"permissions": "r"})[1] == {"detail": "Cannot perform this operation on project owner."}
    assert api.request("DELETE", f"/api/v2/project/{pid}/guest/?email=bob@example.org")[0] == 204
    assert api.request("DELETE", f"/api/v2/project/{pid}/guest/?email=bob@example.org")[1] == \
        {"detail": "User is not linked to project."}
    assert api.get(f"/api/v2/project/{pid}/", token=bob)[0] == 403


def test_leave_and_owner_cannot_leave(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    _, bob = new_user(api, "bob@example.org")
    api.post(f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "r"})
    assert api.request("DELETE", f"/api/v2/project/{pid}/access/", token=bob)[0] == 204
    assert api.request("DELETE", f"/api/v2/project/{pid}/access/", token=bob)[1] == {"detail": "User is not linked to project."}
    assert api.request("DELETE", f"/api/v2/project/{pid}/access/")[1] == {"detail": f"You are the owner of project {pid}."}


def test_sharing_validation(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    status, body, _ = api.post(f"/api/v2/project/{pid}/guest/?email=x@example.org", body={"permissions": "w"})
    assert status == 422
    assert body["detail"] == [{"type": "enum", "loc": ["body", "permissions"], "msg": "Input should be 'r', 'rw' or 'rwx'",
                               "input": "w", "ctx": {"expected": "'r', 'rw' or 'rwx'"}}]
    status, body, _ = api.post(f"/api/v2/project/{pid}/guest/", body={"permissions": "r"})
    assert status == 422 and body["detail"][0]["loc"] == ["query", "email"]
    status, body, _ = api.post(f"/api/v2/project/{pid}/guest/?email=nobody", body={"permissions": "r"})
    assert status == 422 and body["detail"][0]["loc"] == ["query", "email"]
    assert api.post(f"/api/v2/project/{pid}/guest/?email=nobody@example.org", body={"permissions": "r"})[1] == \
        {"detail": "User not found."}
    other = api.post("/api/v2/project/", body={"name": "q"})[1]["id"]
    _, bob = new_user(api, "bob@example.org")
    assert api.post(f"/api/v2/project/{other}/guest/?email=admin@example.org", body={"permissions": "r"},
                    token=bob)[1] == {"detail": "Current user is not the project owner."}


def test_guest_users_see_no_invitations_and_cannot_accept(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    _, g = new_user(api, "guest@example.org", guest=True)
    api.post(f"/api/v2/project/{pid}/guest/?email=guest@example.org", body={"permissions": "r"})
    assert api.get("/api/v2/project/invitation/", token=g)[1] == []
    assert api.post(f"/api/v2/project/{pid}/access/accept/", token=g)[1] == \
        {"detail": "This feature is not available for guest users."}
