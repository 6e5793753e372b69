"""Checks the black-box suite's real traffic against the OpenAPI document.

tests/conftest.py's Http.request() hands every exchange to check(): the
answer's JSON body must match the schema the document declares for its
route and status (the route's `default`, HTTPError, for a status it does not
list), and a JSON body the server accepted (2xx) must match the route's
request schema. Answers are checked strictly: every object the document
declares with properties refuses properties it does not declare, so a
handler that adds, drops or retypes a field fails the test that saw it.

The document comes from `fractalctl openapi` once per test session; each
(route, status) schema is compiled once (python3-jsonschema, draft 2020-12)
and kept. FRACTAL_OPENAPI_CHECK=0 turns the check off.
"""
import copy
import json
import os
import re
import subprocess
import tempfile
import time

from jsonschema import Draft202012Validator, FormatChecker, validators

ENABLED = os.environ.get("FRACTAL_OPENAPI_CHECK", "1") != "0"

_doc = None
_routes = None      # [(regex, pattern, path item)] in the document's order
_validators = {}    # (pattern, method, where) -> validator or None
stats = {"checked": 0, "requests": 0, "seconds": 0.0}


def load(fractalctl):
    """The document (parsed), from the binary under test; cached."""
    global _doc, _routes
    if _doc is None:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "openapi.json")
            r = subprocess.run([fractalctl, "openapi", "-f", out], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            with open(out) as f:
                _doc = json.load(f)
        _routes = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p, item)
                   for p, item in _doc["paths"].items()]
    return _doc


def strict(schema):
    """A copy where every object schema with properties refuses others."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


_strict_components = None

# Request bodies are read as pydantic's lax mode reads them (and as our
# validators do, model/validate.c): 1 or "true" for a bool, "3" or 3.0 for an
# int. FastAPI's document says "boolean" and "integer" all the same.
_BOOL_STRINGS = {"0", "1", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n"}


def _lax_int(checker, v):
    if isinstance(v, bool):
        return False
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return True
    return isinstance(v, str) and v.strip().lstrip("+-").isdigit()


def _lax_number(checker, v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return True
    try:
        return isinstance(v, str) and float(v) == float(v)
    except ValueError:
        return False


def _lax_bool(checker, v):
    return isinstance(v, bool) or v in (0, 1) or (isinstance(v, str) and v.lower() in _BOOL_STRINGS)


LaxValidator = validators.extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"integer": _lax_int, "number": _lax_number, "boolean": _lax_bool}))


def _validator(schema, answer):
    global _strict_components
    if answer and _strict_components is None:
        _strict_components = strict(_doc["components"])
    root = copy.deepcopy(schema)
    if isinstance(root, dict) and root.get("$ref"):
        root = {"$ref": root["$ref"]}
    # the "#/components/..." references resolve inside this root
    root = dict(root)
    root["components"] = _strict_components if answer else _doc["components"]
    cls = Draft202012Validator if answer else LaxValidator
    return cls(root, format_checker=FormatChecker())


def route_of(path):
    for rx, pattern, item in _routes:
        if rx.match(path):
            yield pattern, item


def _json_schema(content):
    if not content:
        return None
    media = content.get("application/json")
    return media["schema"] if media else None


def _compiled(pattern, method, where, schema, answer):
    key = (pattern, method, where)
    if key not in _validators:
        _validators[key] = _validator(schema, answer) if schema is not None else None
    return _validators[key]


def _fail(what, method, path, status, errors):
    lines = [f"{e.json_path}: {e.message[:300]}" for e in errors[:5]]
    raise AssertionError(f"OpenAPI: {method} {path} -> {status}: {what} does not match the document:\n  "
                         + "\n  ".join(lines))


def check(fractalctl, method, url_path, sent, status, parsed, text, headers):
    """Raises AssertionError when the exchange contradicts the document."""
    if not ENABLED:
        return
    t0 = time.perf_counter()
    try:
        _check(fractalctl, method, url_path, sent, status, parsed, text, headers)
    finally:
        stats["seconds"] += time.perf_counter() - t0


def _check(fractalctl, method, url_path, sent, status, parsed, text, headers):
    load(fractalctl)
    path = url_path.split("?", 1)[0]
    op = pattern = None
    for pattern, item in route_of(path):
        op = item.get(method.lower())
        if op:
            break
    if op is None or 300 <= status < 400:
        return  # not a route of the document (404/405), or a redirect
    code = str(status)
    responses = op["responses"]
    declared = responses.get(code)
    response = declared or responses["default"]
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if 200 <= status < 300 and not declared:
        raise AssertionError(f"OpenAPI: {method} {path} answered {status}, the document says "
                             f"{[c for c in responses if c[0] == '2']}")
    schema = _json_schema(response.get("content"))
    if "json" in ctype and text:
        if schema is None:
            raise AssertionError(f"OpenAPI: {method} {path} -> {status}: a JSON body the document does not declare")
        v = _compiled(pattern, method, code if declared else "default", schema, True)
        errors = sorted(v.iter_errors(parsed), key=lambda e: list(e.path))
        if errors:
            _fail("the answer", method, path, status, errors)
        stats["checked"] += 1
    elif 200 <= status < 300 and response.get("content") and not text and status != 204:
        raise AssertionError(f"OpenAPI: {method} {path} -> {status}: an empty answer, the document declares a body")
    if sent is not None and 200 <= status < 300:
        body = op.get("requestBody")
        rschema = _json_schema(body["content"]) if body else None
        if rschema is None:
            raise AssertionError(f"OpenAPI: {method} {path}: a JSON body was accepted, the document declares none")
        v = _compiled(pattern, method, "request", rschema, False)
        errors = list(v.iter_errors(sent))
        if errors:
            _fail("the accepted request body", method, path, status, errors)
        stats["requests"] += 1
