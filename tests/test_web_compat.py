"""Requests as fractal-web (the browser client) sends them, found by running its
Playwright end-to-end tests against this server."""
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


def test_login_body_of_another_type_is_an_empty_form(server):
    # Starlette reads a form only from the two form types: anything else has no fields
    raw = f"username={ADMIN_EMAIL}&password={ADMIN_PWD}".encode()
    status, body, _ = server.http.post("/auth/token/login/", raw=raw, headers={"Content-Type": "text/plain"})
    assert status == 422
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [
        ("missing", ["body", "username"]), ("missing", ["body", "password"])]
