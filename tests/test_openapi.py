"""The API described: /openapi.json, `fractalctl openapi`, /docs, /redoc.

The document is generated from the route table (src/api/routes.c) and the
shapes of src/api/openapi_models.c. Here it is checked by a real OpenAPI
validator (@apidevtools/swagger-parser, pinned in tests/openapi/), compared
with the route table both ways, and fed to a standard generator
(openapi-typescript) whose typed client (openapi-fetch) tsc type-checks and
node runs against the server. tests/openapi_check.py checks every answer of
the rest of the suite against it.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import openapi_check
from conftest import ADMIN_EMAIL, ADMIN_PWD, FRACTALCTL, ROOT, Server, init_db, run

NPM_DIR = ROOT / "tests" / "openapi"
BIN = NPM_DIR / "node_modules" / ".bin"


def need_npm():
    if not (NPM_DIR / "node_modules" / "@apidevtools" / "swagger-parser").is_dir():
        pytest.fail("tests/openapi/node_modules is missing: run the tests through scripts/test.sh (npm ci)")


def table_routes():
    """(method, path, auth, hidden) of each entry of routes.c's table."""
    text = (ROOT / "src" / "api" / "routes.c").read_text()
    out = []
    for m in re.finditer(r'^\s*\{\s*"([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*\.auth\s*=\s*(\w+)(.*)\},$', text, re.M):
        out.append((m.group(1), m.group(2), m.group(3), ".hidden = 1" in m.group(4)))
    assert len(out) > 140
    return out


def write_doc(tmp_path, name="openapi.json"):
    r = run(["openapi", "-f", str(tmp_path / name)], env={}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return json.loads((tmp_path / name).read_text())


def operations(doc):
    return {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}


def test_the_validator_accepts_the_document_and_refuses_a_broken_one(tmp_path):
    need_npm()
    doc = write_doc(tmp_path)
    assert doc["openapi"].startswith("3.1")
    r = subprocess.run(["node", str(NPM_DIR / "validate.js"), str(tmp_path / "openapi.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "valid" in r.stdout
    # every schema is itself valid JSON Schema (2020-12, OpenAPI 3.1's dialect)
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    # the validator can fail: a dangling reference and a parameter without a schema
    broken = json.loads(json.dumps(doc))
    op = broken["paths"]["/api/v2/project/"]["get"]
    op["responses"]["200"]["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Nope"}
    op["parameters"][0].pop("schema")
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    r = subprocess.run(["node", str(NPM_DIR / "validate.js"), str(tmp_path / "broken.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr, r.stdout


def test_every_route_is_in_the_document_and_nothing_else(tmp_path):
    doc = write_doc(tmp_path)
    ops = operations(doc)
    routes = table_routes()
    served = {(m, p) for m, p, _, hidden in routes if not hidden}
    assert set(ops) == served
    # the pages themselves are not in it, as FastAPI's
    assert {p for _, p, _, hidden in routes if hidden} == {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    ids = [op["operationId"] for op in ops.values()]
    assert len(ids) == len(set(ids))
    schemes = doc["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token/login"
    assert schemes["APIKeyCookie"] == {"type": "apiKey", "in": "cookie", "name": "fastapiusersauth"}
    for m, p, auth, hidden in routes:
        if hidden:
            continue
        op = ops[(m, p)]
        if auth == "AUTH_NONE":
            assert "security" not in op, (m, p)
        else:
            assert op["security"] == [{"OAuth2PasswordBearer": []}, {"APIKeyCookie": []}], (m, p)
        # each {placeholder} is a required path parameter
        names = re.findall(r"\{(\w+)\}", p)
        params = [x["name"] for x in op.get("parameters", []) if x["in"] == "path"]
        assert params == names, (m, p)
        assert any(c.startswith("2") for c in op["responses"]), (m, p)


# Routes whose success answer is declared but not as a model: the settings
# (upstream's settings objects with secrets masked) only.
GENERIC = {("GET", "/api/settings/app/"), ("GET", "/api/settings/database/"), ("GET", "/api/settings/email/"),
           ("GET", "/api/settings/oauth/")}


def test_schemas_are_declared(tmp_path):
    doc = write_doc(tmp_path)
    schemas = doc["components"]["schemas"]
    generic = set()
    for key, op in operations(doc).items():
        ok = next(r for c, r in op["responses"].items() if c.startswith("2"))
        for media in ok.get("content", {}).values():
            s = media["schema"]
            if s == {} or s.get("$ref", "").endswith("/Settings"):
                generic.add(key)
        body = op.get("requestBody")
        if body:
            for media in body["content"].values():
                assert media["schema"] != {}, key
    assert generic == GENERIC
    # upstream's names for the shapes clients know
    for name in ("ProjectRead", "DatasetRead", "WorkflowReadWithWarnings", "TaskRead", "JobRead", "UserRead",
                 "TaskGroupActivityRead", "HTTPValidationError", "PaginationResponse_JobRead_"):
        assert name in schemas
    assert schemas["ProjectCreate"]["additionalProperties"] is False
    assert schemas["ProjectCreate"]["required"] == ["name"]


def test_the_check_catches_a_drifted_answer():
    openapi_check.load(FRACTALCTL)
    good = {"id": 1, "name": "p", "description": None, "is_starred": False,
            "timestamp_created": "2026-01-01T00:00:00+00:00"}
    h = {"Content-Type": "application/json"}
    openapi_check.check(FRACTALCTL, "GET", "/api/v2/project/1/", None, 200, good, json.dumps(good), h)
    for bad in ({k: v for k, v in good.items() if k != "name"}, dict(good, extra=1), dict(good, id="1")):
        with pytest.raises(AssertionError, match="OpenAPI"):
            openapi_check.check(FRACTALCTL, "GET", "/api/v2/project/1/", None, 200, bad, json.dumps(bad), h)
    with pytest.raises(AssertionError, match="answered 201"):
        openapi_check.check(FRACTALCTL, "GET", "/api/v2/project/1/", None, 201, good, json.dumps(good), h)
    # an accepted request the document would refuse
    with pytest.raises(AssertionError, match="request body"):
        openapi_check.check(FRACTALCTL, "POST", "/api/v2/project/", {"name": "p", "x": 1}, 201, good,
                            json.dumps(good), h)


def test_served_document_and_pages(server, tmp_path):
    http = server.http
    status, served, headers = http.get("/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert served == write_doc(tmp_path)
    for page, asset in (("/docs", "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"),
                        ("/redoc", "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js")):
        status, text, headers = http.get(page)
        assert status == 200 and headers["Content-Type"].startswith("text/html"), page
        assert asset in text and "/openapi.json" in text
    status, text, _ = http.get("/docs")
    assert "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css" in text
    assert "/docs/oauth2-redirect" in text
    status, text, headers = http.get("/docs/oauth2-redirect")
    assert status == 200 and "swaggerUIRedirectOauth2" in text
    # public even with a bad token, as FastAPI's; /docs/ redirects to /docs
    assert http.get("/openapi.json", token="forged.token.value")[0] == 200
    assert http.get("/docs/")[0] == 307


def test_pages_load_assets_from_another_base(env, tmp_path):
    e = init_db(env, tmp_path)
    e["FRACTAL_DOCS_ASSETS_URL"] = "http://mirror.example.org/npm/"
    s = Server(e, tmp_path)
    try:
        text = s.http.get("/docs")[1]
        assert "http://mirror.example.org/npm/swagger-ui-dist@5/swagger-ui-bundle.js" in text
        assert "http://mirror.example.org/npm/swagger-ui-dist@5/swagger-ui.css" in text
        assert "cdn.jsdelivr.net" not in text and "fastapi.tiangolo.com" not in text
        text = s.http.get("/redoc")[1]
        assert "http://mirror.example.org/npm/redoc@2/bundles/redoc.standalone.js" in text
        assert "cdn.jsdelivr.net" not in text
    finally:
        assert s.stop() == 0, s.output()


def test_a_generated_client_works(server, tmp_path):
    """openapi-typescript's types of our document, tsc --strict over a client
    that uses them (openapi-fetch), the client run against the server."""
    need_npm()
    build = NPM_DIR / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps(server.http.get("/openapi.json")[1]))
    r = subprocess.run([str(BIN / "openapi-typescript"), str(doc), "-o", str(build / "api.d.ts")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    r = subprocess.run([str(BIN / "tsc"), "--strict", "--noUnusedLocals", "--module", "nodenext", "--target",
                        "es2022", "--skipLibCheck", "--outDir", str(build), str(NPM_DIR / "client.ts")],
                       capture_output=True, text=True, timeout=300, cwd=NPM_DIR)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["node", str(build / "client.js"), server.http.base, ADMIN_EMAIL, ADMIN_PWD],
                       capture_output=True, text=True, timeout=60, cwd=NPM_DIR)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["project"]["name"] == "from-the-client" and out["same"] is True
    assert out["count"] == 1 and out["workflow_tasks"] == 0
    assert out["bad_status"] == 422 and out["bad_detail"]["detail"][0]["loc"] == ["body", "name"]
    # what the client created is there for everyone else
    token = server.http.login()
    status, projects, _ = server.http.get("/api/v2/project/", token=token)
    assert [p["name"] for p in projects] == ["from-the-client"]
