"""Auth: every registered route keeps upstream's guard.

The routes and their guards come from our route table (src/api/routes.c,
whose `.auth =` the router checks before any handler runs) and the guard
each must have from the specification's routes.md (its "caller" column), so
a route added without its guard, or with the wrong one, fails here: first
by reading the table, then on the wire. Each route is called without a
token, with a forged token, with a plain user's token and with a guest's
token, with every path parameter set to 1.
"""
import re
from pathlib import Path

import pytest

from conftest import ROOT


# the guard of each route-table level, in routes.md's words
LEVELS = {"AUTH_NONE": "anyone", "AUTH_ACTIVE": "active", "AUTH_VERIFIED": "verified",
          "AUTH_GUEST": "guest+", "AUTH_USER": "user", "AUTH_SUPERUSER": "superuser"}


def route_lines():
    """((method, path), line) of each entry of routes.c's table."""
    text = (ROOT / "src" / "api" / "routes.c").read_text()
    return [(m.groups(), m.group(0)) for m in re.finditer(r'^\s*\{\s*"([A-Z]+)",\s*"([^"]+)",.*$', text, re.M)]


def route_table():
    """(method, path) -> the .auth of its entry in routes.c."""
    entries = [line for _, line in route_lines()]
    table, hidden = {}, set()
    for line in entries:
        m = re.match(r'\s*\{\s*"([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*\.auth\s*=\s*(\w+)'
                     r'(?:,\s*\.before\s*=\s*\w+)?(,\s*\.hidden\s*=\s*1)?\s*\},$', line)
        assert m, "route-table entry without a guard: %s" % line.strip()
        if m.group(4):
            # FastAPI's own pages (/openapi.json, /docs, /redoc): public,
            # not upstream routers' routes, so not in routes.md
            assert m.group(3) == "AUTH_NONE", line
            hidden.add((m.group(1), m.group(2)))
            continue
        table[(m.group(1), m.group(2))] = m.group(3)
    assert len(table) + len(hidden) == len(entries), "a route is in the table twice"
    return table


# routes we serve beyond upstream's table, with their guard; each has its
# own tests (the guard of /metrics: tests/test_observability.py)
BEYOND_UPSTREAM = {("GET", "/metrics"): "superuser"}


def our_routes():
    return [r for r in route_table() if r not in BEYOND_UPSTREAM]


def spec_callers(spec_dir):
    callers = {}
    for line in (spec_dir / "routes.md").read_text().splitlines():
        m = re.match(r"\|\s*([A-Z]+)\s*\|\s*`([^`]+)`\s*\|\s*\d+\s*\|\s*([\w+]+)\s*\|", line)
        if m:
            callers[(m.group(1), m.group(2))] = m.group(3)
    return callers


def test_every_route_is_in_the_spec(spec_dir):
    if spec_dir is None:
        pytest.skip("../shared/spec is not beside this checkout")
    callers = spec_callers(spec_dir)
    assert len(callers) >= 140
    unknown = [r for r in our_routes() if r not in callers]
    assert unknown == [], "routes not in routes.md: %s" % unknown


def test_the_table_has_the_specs_guards(spec_dir):
    if spec_dir is None:
        pytest.skip("../shared/spec is not beside this checkout")
    callers = {**spec_callers(spec_dir), **BEYOND_UPSTREAM}
    table = route_table()
    assert len(table) >= 140
    wrong = [(r, LEVELS.get(auth, auth), callers.get(r)) for r, auth in table.items()
             if LEVELS.get(auth) != callers.get(r)]
    assert wrong == [], "guards that differ from routes.md (route, ours, spec): %s" % wrong


GUARD_DETAILS = ("Unauthorized", "Forbidden", "This feature is not available for guest users.",
                 "Forbidden access (user.is_verified=True user.profile_id=None).")


def fill(path):
    return re.sub(r"\{[^}]+\}", "1", path)


def test_guards(server, spec_dir, db):
    if spec_dir is None:
        pytest.skip("../shared/spec is not beside this checkout")
    callers = spec_callers(spec_dir)
    http = server.http
    admin = http.login()
    # a plain user: verified, with a profile, not superuser; and a guest
    for email, guest in (("plain@example.org", False), ("guest@example.org", True)):
        status, u, _ = http.post("/auth/register/", token=admin,
                                 body={"email": email, "password": "abcd", "project_dirs": ["/d"]})
        assert status == 201
        assert http.request("PATCH", f"/auth/users/{u['id']}/", token=admin,
                            body={"is_verified": True, "profile_id": 1, "is_guest": guest})[0] == 200
    plain = http.login("plain@example.org", "abcd")
    guest = http.login("guest@example.org", "abcd")
    checked = 0
    table = route_table()
    for method, path in table:
        if (method, path) in BEYOND_UPSTREAM:
            continue
        caller = LEVELS[table[(method, path)]]
        assert caller == callers[(method, path)], (method, path)
        url = fill(path)
        if caller == "anyone":
            continue
        for tok in (None, "forged.token.value"):
            status, body, _ = http.request(method, url, token=tok)
            assert (status, body) == (401, {"detail": "Unauthorized"}), (method, path, tok, status, body)
        status, body, _ = http.request(method, url, token=plain)
        if caller == "superuser":
            assert (status, body) == (403, {"detail": "Forbidden"}), (method, path, status, body)
        else:
            # past the guard: a 403 may only be the route's own access check
            assert status != 401 and (status != 403 or body["detail"] not in GUARD_DETAILS), \
                (method, path, status, body)
        status, body, _ = http.request(method, url, token=guest)
        if caller == "superuser":
            assert (status, body) == (403, {"detail": "Forbidden"}), (method, path, status, body)
        elif caller == "user":
            assert (status, body) == (403, {"detail": "This feature is not available for guest users."}), \
                (method, path, status, body)
        checked += 1
    assert checked >= 20


def test_checks_before_the_guard(server):
    """The routes whose table entry has a .before check answer its 422 to
    anyone, as upstream resolves those dependencies before the user's; the
    same routes with a good request and no token are a 401."""
    http = server.http
    before = [r for r, line in route_lines() if ".before" in line]
    assert sorted(before) == sorted([("POST", "/admin/v2/accounting/"), ("POST", "/admin/v2/resource/"),
                                     ("PUT", "/admin/v2/resource/{resource_id}/"),
                                     ("POST", "/admin/v2/resource/{resource_id}/profile/"),
                                     ("PUT", "/admin/v2/profile/{profile_id}/"), ("GET", "/metrics")])
    status, body, _ = http.request("POST", "/admin/v2/accounting/?page=0", body={})
    assert status == 422 and body["detail"].startswith("Invalid pagination parameters."), body
    assert http.request("POST", "/admin/v2/accounting/?page=1", body={})[:2] == (401, {"detail": "Unauthorized"})
    for method, path in before:
        if "accounting" in path or (method, path) in BEYOND_UPSTREAM:
            continue
        status, body, _ = http.request(method, fill(path), raw=b"{not json",
                                       headers={"Content-Type": "application/json"})
        assert status == 422 and body["detail"][0]["type"] == "json_invalid", (method, path, body)
        assert http.request(method, fill(path), body={})[:2] == (401, {"detail": "Unauthorized"}), (method, path)
