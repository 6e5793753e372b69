"""Foundation: fractalctl start, the first routes, and clean shutdown."""
import http.client
import signal
import threading
import time

import pytest

from conftest import ADMIN_EMAIL, JWT_SECRET, Server, init_db


def test_alive_answers_anyone(server):
    status, body, headers = server.http.get("/api/alive/")
    assert status == 200
    assert body == {"alive": True, "version": "2.24.2"}
    assert headers["Content-Type"] == "application/json"


def test_alive_with_a_query_string_goes_through_the_router(server):
    status, body, _ = server.http.get("/api/alive/?x=1")
    assert status == 200 and body["alive"] is True


def test_unknown_path_is_404(server):
    status, body, _ = server.http.get("/api/v2/nothing-here/")
    assert status == 404
    assert body == {"detail": "Not Found"}


def test_wrong_method_is_405(server):
    status, body, _ = server.http.post("/api/alive/", body={})
    assert status == 405
    assert body == {"detail": "Method Not Allowed"}
    status, body, _ = server.http.get("/auth/token/login/")
    assert status == 405


def test_missing_trailing_slash_redirects_like_fastapi(server):
    status, _, headers = server.http.get("/api/alive?x=1")
    assert status == 307
    assert headers["Location"] == f"http://127.0.0.1:{server.port}/api/alive/?x=1"
    status, _, headers = server.http.get("/api/settings/app")
    assert status == 307 and headers["Location"].endswith("/api/settings/app/")


def test_settings_require_a_superuser(server, db):
    for group in ("app", "database", "email", "oauth"):
        status, body, _ = server.http.get(f"/api/settings/{group}/")
        assert (status, body) == (401, {"detail": "Unauthorized"})
        status, body, _ = server.http.get(f"/api/settings/{group}/", token="not.a.jwt")
        assert (status, body) == (401, {"detail": "Unauthorized"})
    token = server.http.login()
    # a forged signature is refused
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    assert server.http.get("/api/settings/app/", token=forged)[0] == 401
    db.execute("UPDATE user_oauth SET is_superuser = false")
    status, body, _ = server.http.get("/api/settings/app/", token=token)
    assert (status, body) == (403, {"detail": "Forbidden"})
    db.execute("UPDATE user_oauth SET is_active = false")
    assert server.http.get("/api/settings/app/", token=token)[0] == 401


def test_settings_show_values_and_mask_secrets(server, db):
    token = server.http.login()
    status, app, _ = server.http.get("/api/settings/app/", token=token)
    assert status == 200
    assert app["JWT_SECRET_KEY"] == "**********"
    assert app["JWT_EXPIRE_SECONDS"] == 180
    assert app["FRACTAL_DEFAULT_GROUP_NAME"] == "All"
    assert app["FRACTAL_GRACEFUL_SHUTDOWN_TIME"] == 30.0
    assert app["FRACTAL_RUNNER_BACKEND"] == "local"
    assert JWT_SECRET not in str(app)
    status, dbs, _ = server.http.get("/api/settings/database/", token=token)
    assert status == 200
    assert dbs["DB_ENGINE"] == db.engine
    assert dbs["DB_ECHO"] == "false"
    if db.engine == "postgres":
        assert dbs["POSTGRES_PASSWORD"] == "**********" and dbs["POSTGRES_DB"] == db.name
    else:
        assert dbs["SQLITE_PATH"] == str(db.path)
    status, email, _ = server.http.get("/api/settings/email/", token=token)
    assert status == 200 and email["public"] is None and email["FRACTAL_EMAIL_USE_STARTTLS"] == "true"
    status, oauth, _ = server.http.get("/api/settings/oauth/", token=token)
    assert status == 200 and oauth["OAUTH_EMAIL_CLAIM"] == "email"


def test_login_is_case_insensitive_and_rejects_bad_credentials(server):
    assert server.http.login(email=ADMIN_EMAIL.upper())
    status, body, _ = server.http.post("/auth/token/login/", form={"username": ADMIN_EMAIL, "password": "nope"})
    assert (status, body) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
    status, body, _ = server.http.post("/auth/token/login/", form={"username": "who@example.org", "password": "x"})
    assert (status, body) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
    status, body, _ = server.http.post("/auth/token/login/", form={"username": ADMIN_EMAIL})
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "password"]
    assert body["detail"][0]["type"] == "missing"


def test_sigterm_lets_a_request_in_flight_finish(server):
    result = {}

    def slow_login():
        # a login costs one bcrypt hash (~0.2 s): long enough to be in flight
        result["r"] = server.http.post("/auth/token/login/", form={"username": ADMIN_EMAIL, "password": "1234"})

    t = threading.Thread(target=slow_login)
    t.start()
    time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    t.join(30)
    assert result["r"][0] == 200, result
    assert server.proc.wait(timeout=30) == 0
    out = server.output()
    assert "SIGTERM" in out and "Shutdown complete" in out


def test_sigint_stops_cleanly(env, tmp_path):
    e = init_db(env, tmp_path)
    s = Server(e, tmp_path)
    assert s.http.get("/api/alive/")[0] == 200
    assert s.stop(signal.SIGINT) == 0
    assert "SIGINT" in s.output()
    # the port is free again
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", s.port, timeout=2).request("GET", "/api/alive/")


def test_start_logs_version_and_database(server, db):
    out = server.output()
    assert "2.24.2" in out
    assert ("SQLite database" if db.engine == "sqlite" else "PostgreSQL database") in out


def test_oversized_body_is_refused_with_413(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/auth/token/login/")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(1 << 40))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413
    assert "too large" in r.read().decode()


def test_disable_basic_auth_removes_login(env, tmp_path):
    e = init_db(env, tmp_path)
    e["FRACTAL_DISABLE_BASIC_AUTH"] = "true"
    s = Server(e, tmp_path)
    try:
        status, body, _ = s.http.post("/auth/token/login/", form={"username": ADMIN_EMAIL, "password": "1234"})
        assert (status, body) == (404, {"detail": "Not Found"})
    finally:
        assert s.stop() == 0


def test_many_concurrent_requests(server):
    token = server.http.login()
    errors = []

    def worker():
        for _ in range(30):
            st, _, _ = server.http.get("/api/settings/database/", token=token)
            if st != 200:
                errors.append(st)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_server_reconnects_after_losing_its_postgres_connection(tmp_path):
    """PostgreSQL only: a worker's connection killed under it is reopened."""
    from conftest import Database, psql
    db = Database("postgres", tmp_path)
    try:
        env = dict(db.env, JWT_SECRET_KEY=JWT_SECRET)
        server = Server(init_db(env, tmp_path), tmp_path)
        try:
            token = server.http.login()
            assert server.http.get("/api/settings/app/", token=token)[0] == 200
            killed = psql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      f"WHERE application_name = 'fractalctl' AND datname = '{db.name}'")
            assert int(killed[0][0]) >= 1
            for _ in range(10):
                assert server.http.get("/api/settings/app/", token=token)[0] == 200
        finally:
            assert server.stop() == 0
    finally:
        db.drop()
