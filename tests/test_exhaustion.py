"""Unauthenticated exhaustion (issue 19, finding 2; docs/security.md).

A body is read only for a client that may send it: a guarded route checks the
token from the headers and answers 401 before any of the body, a route
without a guard (login) takes at most 64 KiB, all buffered bodies share one
budget (FRACTAL_HTTP_BODY_BUDGET), and one address holds at most
FRACTAL_HTTP_CONNECTIONS_PER_IP connections. Everything here is bounded in
count and time and stays on the loopback interface.
"""
import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.error

from conftest import Server, init_db

BIG = 50 * 1000 * 1000
CHUNK = b"x" * (1 << 20)


@contextlib.contextmanager
def server_with(env, tmp_path, **settings):
    """A running server on a fresh database, with these settings."""
    e = init_db(env, tmp_path)
    e.update(settings)
    s = Server(e, tmp_path)
    try:
        yield s
    finally:
        assert s.stop() == 0, s.output()


def status_kb(server, field):
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def head(path, length, token=None, content_type="application/json", method="POST"):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}",
             f"Content-Length: {length}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_status(sock, timeout=5):
    """The status code and body of the answer on sock (None when it never comes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            if not got:
                break
            data += got
        hdr, _, rest = data.partition(b"\r\n\r\n")
        if not hdr.startswith(b"HTTP/1.1 "):
            return None, None
        length = 0
        for line in hdr.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            got = sock.recv(65536)
            if not got:
                break
            rest += got
        return int(hdr.split()[1]), rest[:length]
    except (socket.timeout, ConnectionError):
        return None, None


def send_body(sock, total, deadline):
    """Sends up to total bytes, stopping when the server closes or at the deadline."""
    sent = 0
    sock.settimeout(2)
    try:
        while sent < total and time.monotonic() < deadline:
            n = min(len(CHUNK), total - sent)
            sock.sendall(CHUNK[:n])
            sent += n
    except (OSError, socket.timeout):
        pass
    return sent


def test_unauthenticated_big_post_is_401_before_the_body(server):
    base = status_kb(server, "VmHWM")
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/api/v2/project/", BIG))
        status, body = read_status(s)
        elapsed = time.monotonic() - t0
        print(f"401 after {elapsed * 1000:.1f} ms")
        assert status == 401, "no answer before the body"
        assert json.loads(body) == {"detail": "Unauthorized"}
        assert elapsed < 3
        # the rest is not read: the server has closed the connection
        send_body(s, BIG, time.monotonic() + 10)
    # a forged token is no better
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/api/v2/project/", BIG, token="a.b.c"))
        assert read_status(s)[0] == 401
    grew = status_kb(server, "VmHWM") - base
    print(f"VmHWM {base} kB, grew by {grew} kB")
    assert grew < 20 * 1024
    assert server.http.get("/api/alive/")[0] == 200


def test_small_unauthenticated_post_keeps_its_connection(server):
    # within the small limit the request runs as before: a 401 after the
    # body, and the connection stays open for the next request
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/api/v2/project/", body=json.dumps({"name": "p" * 30_000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) == (401, {"detail": "Unauthorized"})
    conn.request("POST", "/api/v2/nothing/", body=b"{}", headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) == (404, {"detail": "Not Found"})
    sock = conn.sock
    conn.request("GET", "/api/alive/")
    r = conn.getresponse()
    assert r.status == 200
    r.read()
    assert conn.sock is sock
    conn.close()


def test_parallel_unauthenticated_uploads_do_not_grow_the_server(server):
    token = server.http.login()
    base = status_kb(server, "VmHWM")
    deadline = time.monotonic() + 20
    results = []

    def upload():
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(head("/api/v2/project/", BIG))
            send_body(s, BIG, deadline)

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    # an authenticated client is answered meanwhile (at least once, even when the uploads were refused
    # before this loop first looked)
    while True:
        results.append(server.http.get("/api/v2/project/", token=token)[0])
        if not any(t.is_alive() for t in threads) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=30)
    assert results and set(results) == {200}
    grew = status_kb(server, "VmHWM") - base
    print(f"VmHWM {base} kB, grew by {grew} kB")
    assert grew < 30 * 1024, f"the server grew by {grew} kB for 6 unauthenticated 50 MB uploads"


def test_unauthenticated_body_on_a_route_without_guard_is_capped(server):
    # a login form over 64 KiB: 413 from the headers
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/auth/token/login/", 100_000, content_type="application/x-www-form-urlencoded"))
        status, body = read_status(s)
        assert status == 413
        assert b"65536" in body
    # chunked, so no length to refuse early: read up to the limit, then 413
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/auth/token/login/", body=iter([b"username=" + b"a" * 50_000, b"b" * 50_000]),
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 413
    conn.close()
    # a normal login still works
    assert server.http.login()


def test_no_route_answers_before_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/api/v2/nothing-here/", BIG))
        assert read_status(s)[0] == 404


def test_route_with_a_before_check_keeps_its_order(server):
    # upstream answers the body's 422 before the user's 401 on these routes
    status, body, _ = server.http.post("/admin/v2/resource/", raw=b"{not json",
                                       headers={"Content-Type": "application/json"})
    assert status == 422, body
    status, body, _ = server.http.post("/admin/v2/resource/", body={"x": 1})
    assert (status, body) == (401, {"detail": "Unauthorized"})
    # an oversized unauthenticated body there gets the 401, not read
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/admin/v2/resource/", BIG))
        assert read_status(s)[0] == 401
    # and an authenticated one is still checked first for its body
    token = server.http.login()
    status, body, _ = server.http.post("/admin/v2/resource/", raw=b"{not json", token=token,
                                       headers={"Content-Type": "application/json"})
    assert status == 422, body


def test_authenticated_body_over_the_small_cap_is_read(server):
    token = server.http.login()
    status, body, _ = server.http.post("/api/v2/project/", body={"name": "big", "pad": "a" * 300_000},
                                       token=token)
    assert status in (201, 422), body
    status, body, _ = server.http.post("/api/v2/project/", body={"name": "p1"}, token=token)
    assert status == 201, body
    # a bad token on a superuser route: 401 before the body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/auth/register/", BIG, token="nope"))
        assert read_status(s)[0] == 401


def test_body_budget_answers_503(env, tmp_path):
    with server_with(env, tmp_path, FRACTAL_HTTP_BODY_BUDGET="1000000") as s:
        token = s.http.login()
        status, body, headers = s.http.post("/api/v2/project/", body={"name": "x", "pad": "a" * 2_000_000},
                                            token=token)
        assert status == 503, body
        assert headers.get("Retry-After") == "5"
        # the budget is given back: small bodies pass
        for i in range(3):
            status, body, _ = s.http.post("/api/v2/project/", body={"name": f"p{i}"}, token=token)
            assert status == 201, body


def test_bad_limit_setting_fails_start(env, tmp_path):
    e = init_db(env, tmp_path)
    e["FRACTAL_HTTP_CONNECTIONS_PER_IP"] = "many"
    try:
        s = Server(e, tmp_path)
    except AssertionError as exc:
        assert "FRACTAL_HTTP_CONNECTIONS_PER_IP" in str(exc)
    else:
        s.stop()
        raise AssertionError("the server started with FRACTAL_HTTP_CONNECTIONS_PER_IP=many")


def test_connection_flood_from_one_address(env, tmp_path):
    flood = []
    with server_with(env, tmp_path, FRACTAL_HTTP_CONNECTIONS_PER_IP="20") as s, contextlib.ExitStack() as open_:
        token = s.http.login()
        for _ in range(50):
            flood.append(open_.enter_context(socket.create_connection(("127.0.0.1", s.port), timeout=5)))
        # a client on another loopback address is answered throughout
        other = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5, source_address=("127.0.0.2", 0))
        for _ in range(5):
            other.request("GET", "/api/v2/project/", headers={"Authorization": f"Bearer {token}"})
            r = other.getresponse()
            r.read()
            assert r.status == 200
        other.close()
        # the flood beyond the limit was closed at once
        closed = 0
        for c in flood:
            c.settimeout(0.2)
            try:
                if c.recv(1) == b"":
                    closed += 1
            except socket.timeout:
                pass
            except ConnectionError:
                closed += 1
        print(f"{closed} of 50 refused")
        assert closed >= 25, f"only {closed} of 50 connections from one address refused (limit 20)"
        open_.close()
        # the address is served again once its connections are gone
        deadline = time.monotonic() + 10
        while True:
            try:
                if s.http.get("/api/v2/project/", token=token)[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass  # the server has not yet seen all of them close
            assert time.monotonic() < deadline
            time.sleep(0.2)
