"""The images routes over the cached index (docs/images.md), on both engines:
writes of one image spliced into the stored list and applied to the index,
seen by another server on the same database and by the database itself; a
stored list in another form than ours; concurrent writers; the byte budget."""
import json
import threading

import pytest

from conftest import Server, init_db, run


def login(server):
    server.http.token = server.http.login()
    return server.http


def dataset(api, name="d"):
    pid = api.post("/api/v2/project/", body={"name": "p" + name})[1]["id"]
    d = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": name})[1]
    return f"/api/v2/project/{pid}/dataset/{d['id']}", d


def query(api, base, body=None):
    status, page, _ = api.post(f"{base}/images/query/", body=body or {})
    assert status == 200, page
    return page


def stored(db, did):
    return json.loads(db.query(f"SELECT images FROM datasetv2 WHERE id = {did}")[0][0])


def test_writes_on_two_servers_of_one_database(env, db, tmp_path):
    e = init_db(env, tmp_path)
    a, b = Server(e, tmp_path), Server(e, tmp_path)
    try:
        ha, hb = login(a), login(b)
        base, d = dataset(ha)
        z = d["zarr_dir"]
        for i in range(6):
            st, body, _ = ha.post(f"{base}/images/", body={"zarr_url": f"{z}/{i}", "attributes": {"well": f"A{i % 2}"},
                                                          "types": {"3D": i % 3 == 0}})
            assert st == 201, body
        assert query(ha, base)["total_count"] == 6 and query(hb, base)["total_count"] == 6  # both cached now
        # b writes: a sees it at once, and the other way round
        st, img, _ = hb.request("PATCH", f"{base}/images/", body={"zarr_url": f"{z}/2", "attributes": {"well": "B9"}})
        assert st == 200 and img == {"zarr_url": f"{z}/2", "origin": None, "attributes": {"well": "B9"},
                                     "types": {"3D": False}}, img
        page = query(ha, base, {"attribute_filters": {"well": ["B9"]}})
        assert [i["zarr_url"] for i in page["items"]] == [f"{z}/2"]
        assert page["attributes"] == {"well": ["A0", "A1", "B9"]} and page["types"] == ["3D"]
        assert ha.request("DELETE", f"{base}/images/?zarr_url={z}/0")[0] == 204
        assert hb.post(f"{base}/images/", body={"zarr_url": f"{z}/0"})[0] == 201  # gone on b's side too
        assert ha.post(f"{base}/images/", body={"zarr_url": f"{z}/0"})[0] == 422  # and back on a's
        for h in (ha, hb):
            page = query(h, base)
            assert [i["zarr_url"] for i in page["items"]] == [f"{z}/{i}" for i in (1, 2, 3, 4, 5, 0)]
            assert page["items"][-1] == {"zarr_url": f"{z}/0", "origin": None, "attributes": {}, "types": {}}
            assert query(h, base, {"type_filters": {"3D": True}})["total_count"] == 1  # image 3
        # what the database holds is the list both answer, in upstream's shape
        want = ha.get(f"{base}/export/")[1]["images"]
        assert stored(db, d["id"]) == want == hb.get(f"{base}/export/")[1]["images"]
        assert query(ha, base, {"zarr_url": f"{z}/4"})["items"] == [want[3]]
        assert query(ha, base, {"zarr_url": f"{z}/nope"})["total_count"] == 0
        # a write from outside both servers
        db.execute(f"UPDATE datasetv2 SET images = '[]' WHERE id = {d['id']}")
        assert query(ha, base)["total_count"] == 0 and query(hb, base)["total_count"] == 0
        assert ha.post(f"{base}/images/", body={"zarr_url": f"{z}/x"})[0] == 201
        assert stored(db, d["id"]) == [{"zarr_url": f"{z}/x", "origin": None, "attributes": {}, "types": {}}]
    finally:
        assert a.stop() == 0, a.output()
        assert b.stop() == 0, b.output()


def test_a_stored_list_in_another_form(server, db):
    """Whitespace, another key order, escapes, missing fields (upstream's or
    anyone's text): read as the same list, and edited without harm."""
    api = login(server)
    base, d = dataset(api)
    z = d["zarr_dir"]
    text = ('[ {"types": {"3D": true}, "attributes": {"n": 1.50, "s": "caf\\u00e9 \\"x\\""}, "zarr_url": "%s/a"},\n'
            '  {"zarr_url" : "%s/b\\u0041", "origin": "%s/a", "attributes" : { "n" : 2 , "b": false } } ,'
            '{"zarr_url": "%s/c", "attributes": {"n": true}} ]') % (z, z, z, z)
    db.execute("UPDATE datasetv2 SET images = '%s' WHERE id = %d" % (text.replace("'", "''"), d["id"]))
    page = query(api, base)
    assert page["items"] == [
        {"zarr_url": f"{z}/a", "origin": None, "attributes": {"n": 1.5, "s": 'café "x"'}, "types": {"3D": True}},
        {"zarr_url": f"{z}/bA", "origin": f"{z}/a", "attributes": {"n": 2, "b": False}, "types": {}},
        {"zarr_url": f"{z}/c", "origin": None, "attributes": {"n": True}, "types": {}}]
    assert page["attributes"] == {"n": [True, 1.5, 2], "s": ['café "x"'], "b": [False]}
    assert query(api, base, {"attribute_filters": {"n": [1]}})["total_count"] == 1  # True == 1
    assert query(api, base, {"attribute_filters": {"s": ['café "x"']}})["total_count"] == 1
    assert query(api, base, {"zarr_url": f"{z}/bA"})["total_count"] == 1
    st, img, _ = api.request("PATCH", f"{base}/images/", body={"zarr_url": f"{z}/bA", "types": {"label": True}})
    assert st == 200 and img["attributes"] == {"n": 2, "b": False} and img["types"] == {"label": True}, img
    assert api.request("DELETE", f"{base}/images/?zarr_url={z}/a")[0] == 204
    want = [{"zarr_url": f"{z}/bA", "origin": f"{z}/a", "attributes": {"n": 2, "b": False}, "types": {"label": True}},
            {"zarr_url": f"{z}/c", "origin": None, "attributes": {"n": True}, "types": {}}]
    # PostgreSQL edits its jsonb in place: an image nobody wrote keeps its form
    assert [dict({"origin": None, "attributes": {}, "types": {}}, **i) for i in stored(db, d["id"])] == want
    assert query(api, base)["items"] == want


def test_concurrent_writers_of_one_dataset(server, db):
    api = login(server)
    base, d = dataset(api)
    z = d["zarr_dir"]
    errors = []

    def writer(k):
        for i in range(8):
            st, body, _ = api.post(f"{base}/images/", body={"zarr_url": f"{z}/{k}/{i}", "attributes": {"k": k}})
            if st != 201:
                errors.append((st, body))
            if i % 2:
                st, body, _ = api.request("DELETE", f"{base}/images/?zarr_url={z}/{k}/{i - 1}")
                if st != 204:
                    errors.append((st, body))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    page = query(api, base)
    assert sorted(i["zarr_url"] for i in page["items"]) == sorted(f"{z}/{k}/{i}" for k in range(4) for i in (1, 3, 5, 7))
    assert page["attributes"] == {"k": [0, 1, 2, 3]}
    assert stored(db, d["id"]) == page["items"]


def test_images_cache_budget(env, db, tmp_path):
    e = init_db(env, tmp_path)
    r = run(["start", "--port", "1"], env=dict(e, FRACTAL_IMAGES_CACHE_BYTES="lots"), cwd=tmp_path)
    assert r.returncode != 0
    assert "FRACTAL_IMAGES_CACHE_BYTES: Input should be a valid non-negative integer (got 'lots')" in r.stderr
    # a budget of nothing: no index is kept, every answer still right
    s = Server(dict(e, FRACTAL_IMAGES_CACHE_BYTES="0"), tmp_path)
    try:
        api = login(s)
        base, d = dataset(api)
        z = d["zarr_dir"]
        for i in range(3):
            assert api.post(f"{base}/images/", body={"zarr_url": f"{z}/{i}", "attributes": {"i": i}})[0] == 201
        assert api.request("PATCH", f"{base}/images/", body={"zarr_url": f"{z}/1", "attributes": {"i": 9}})[0] == 200
        assert api.request("DELETE", f"{base}/images/?zarr_url={z}/0")[0] == 204
        page = query(api, base)
        assert [i["attributes"] for i in page["items"]] == [{"i": 9}, {"i": 2}] and page["attributes"] == {"i": [2, 9]}
        assert stored(db, d["id"]) == page["items"]
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.parametrize("mmap", ["0", None])
def test_aggregates_kept_in_step_match_a_fresh_scan(env, db, tmp_path, mmap):
    """The aggregates our writes keep in step (from per-value counts, or made
    anew when an edit needs it) are those a fresh server scans from the
    stored list: the same keys in the same order, the same values in the
    same order; with SQLite reading through mmap or not (SQLITE_MMAP_SIZE)."""
    e = init_db(env, tmp_path)
    if mmap is not None:
        e["SQLITE_MMAP_SIZE"] = mmap
    a = Server(e, tmp_path)
    fresh = []
    try:
        ha = login(a)
        base, d = dataset(ha)
        z = d["zarr_dir"]

        def add(i, attrs, types=None):
            st, body, _ = ha.post(f"{base}/images/", body={"zarr_url": f"{z}/{i}", "attributes": attrs,
                                                          "types": types or {}})
            assert st == 201, body

        def patch(i, attrs=None, types=None):
            body = {"zarr_url": f"{z}/{i}"}
            if attrs is not None:
                body["attributes"] = attrs
            if types is not None:
                body["types"] = types
            st, out, _ = ha.request("PATCH", f"{base}/images/", body=body)
            assert st == 200, out

        def delete(i):
            assert ha.request("DELETE", f"{base}/images/?zarr_url={z}/{i}")[0] == 204

        def compare(when):
            mine = query(ha, base)
            c = Server(e, tmp_path)
            fresh.append(c)
            theirs = query(login(c), base)
            assert c.stop() == 0
            fresh.pop()
            for k in ("attributes", "types"):
                assert json.dumps(mine[k]) == json.dumps(theirs[k]), (when, k, mine[k], theirs[k])
            return mine

        for i in range(8):
            add(i, {"well": f"B{i % 3}", "field": i % 2, "plate": "p"}, {"3D": i % 2 == 0})
        compare("built")
        patch(5, {"well": "B1", "field": 1, "plate": "p"})     # same values: nothing changes
        add(8, {"well": "A9", "field": 1, "plate": "p"})       # a new value, sorted in
        patch(3, {"well": "C0", "field": 1, "plate": "p", "z": 2.5}, {"2D": True})  # new value, key, type
        page = compare("new values")
        assert page["attributes"]["well"] == ["A9", "B0", "B1", "B2", "C0"] and page["types"] == ["3D", "2D"], page
        delete(3)                                               # "C0", "z" and "2D" go
        page = compare("values gone")
        assert "z" not in page["attributes"] and page["types"] == ["3D"], page
        patch(0, {"field": 0}, {})                              # the first image loses keys others have
        page = compare("first image")
        assert list(page["attributes"]) == ["field", "well", "plate"], page
        delete(0)
        compare("first image gone")
        patch(1, {"well": "B1", "field": "one", "plate": "p"})  # a key of mixed kinds: listed as found
        compare("mixed")
        patch(2, {"well": "B2", "field": 1.0, "plate": "p"})    # 1.0 beside 1: the first seen is listed
        compare("equal values")
        for i in (1, 2, 4, 5, 6, 7, 8):
            delete(i)
        assert compare("emptied")["attributes"] == {}
    finally:
        for c in fresh:
            c.stop()
        assert a.stop() == 0


def test_sqlite_mmap_size_is_checked(env, db, tmp_path):
    e = init_db(env, tmp_path)
    r = run(["start", "--port", "1"], env=dict(e, SQLITE_MMAP_SIZE="-1"), cwd=tmp_path)
    assert r.returncode != 0 and "SQLITE_MMAP_SIZE" in r.stderr + r.stdout, r.stderr


def test_a_large_import_leaves_room_for_appends(server, db):
    """An imported list of 1 MB or more is stored with the room the writes
    leave after its ']' (SQLite; PostgreSQL's jsonb keeps no spaces), so
    that the first image added after the import is written in place: the
    stored text keeps its length. A small import is stored as it is."""
    api = login(server)
    base0, d0 = dataset(api, "big")
    pid, z = d0["project_id"], d0["zarr_dir"] + "-imported"
    images = [{"zarr_url": f"{z}/{i}", "origin": None, "attributes": {"well": f"W{i // 100}", "field": i % 100},
               "types": {"3D": True}} for i in range(12000)]
    small = api.post(f"/api/v2/project/{pid}/dataset/import/",
                     body={"name": "small", "zarr_dir": z, "images": images[:10]})[1]
    st, d = api.post(f"/api/v2/project/{pid}/dataset/import/", body={"name": "large", "zarr_dir": z, "images": images})[:2]
    assert st == 201, d

    def text(did):
        return db.query(f"SELECT images FROM datasetv2 WHERE id = {did}")[0][0]

    before = text(d["id"])
    assert len(before) > 1 << 20 and json.loads(before) == images
    if db.engine == "sqlite":
        room = len(before) - len(before.rstrip(" "))
        assert before.rstrip(" ").endswith("]") and room >= len(before) // 40 and not text(small["id"]).endswith(" ")
    base = f"/api/v2/project/{pid}/dataset/{d['id']}"
    assert api.post(f"{base}/images/", body={"zarr_url": f"{z}/new", "types": {"3D": False}})[0] == 201
    after = text(d["id"])
    if db.engine == "sqlite":
        assert len(after) == len(before)
    assert json.loads(after) == images + [{"zarr_url": f"{z}/new", "origin": None, "attributes": {},
                                           "types": {"3D": False}}]
    assert query(api, base, {"type_filters": {"3D": False}})["items"][0]["zarr_url"] == f"{z}/new"
    assert query(api, base)["total_count"] == 12001


def test_the_database_shrinks_and_grows_under_a_running_server(server, db):
    """Another process empties a large list and compacts the database (on
    SQLite the file shrinks to a fraction: the server's memory map of it,
    kept across commits, docs/database.md, now reaches past its end), then
    the server writes and reads the lists that moved, and a new large one
    that grows the file again: every answer is the stored text's, and the
    server ends cleanly (no SIGBUS)."""
    import os
    api = login(server)
    base_a, a = dataset(api, "a")
    pid, z = a["project_id"], a["zarr_dir"]

    def images(tag, n):
        return [{"zarr_url": f"{z}/{tag}/{i}", "origin": None, "attributes": {"well": f"W{i // 100}"},
                 "types": {"3D": i % 2 == 0}} for i in range(n)]

    def imported(name, imgs):
        st, d = api.post(f"/api/v2/project/{pid}/dataset/import/", body={"name": name, "zarr_dir": z, "images": imgs})[:2]
        assert st == 201, d
        return f"/api/v2/project/{pid}/dataset/{d['id']}", d["id"]

    base_big, big = imported("big", images("big", 30000))
    base_b, b = imported("b", images("b", 3000))
    for base, did in ((base_big, big), (base_b, b)):  # read and edited through the map
        assert query(api, base, {"type_filters": {"3D": False}})["total_count"] in (15000, 1500)
        assert api.post(f"{base}/images/", body={"zarr_url": f"{z}/first/{did}"})[0] == 201
    size = os.path.getsize(db.path) if db.engine == "sqlite" else None
    if db.engine == "sqlite":
        db.execute(f"UPDATE datasetv2 SET images = '[]' WHERE id = {big}; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        assert os.path.getsize(db.path) < size // 3, (size, os.path.getsize(db.path))
    else:
        db.execute(f"UPDATE datasetv2 SET images = '[]' WHERE id = {big}")
        db.execute("VACUUM FULL datasetv2")
    assert query(api, base_big)["total_count"] == 0
    want_b = images("b", 3000) + [{"zarr_url": f"{z}/first/{b}", "origin": None, "attributes": {},
                                   "types": {}}]
    assert api.get(f"{base_b}/export/")[1]["images"] == want_b
    st, _, _ = api.request("DELETE", f"{base_b}/images/?zarr_url={z}/b/2999")
    assert st == 204
    assert api.post(f"{base_b}/images/", body={"zarr_url": f"{z}/b/new", "types": {"3D": False}})[0] == 201
    want_b = want_b[:2999] + want_b[3000:] + [{"zarr_url": f"{z}/b/new", "origin": None, "attributes": {},
                                              "types": {"3D": False}}]
    assert stored(db, b) == want_b == api.get(f"{base_b}/export/")[1]["images"]
    assert query(api, base_b, {"type_filters": {"3D": False}})["total_count"] == 1501
    # the file grows again, past the size the server last saw
    base_c, c = imported("c", images("c", 40000))
    assert api.post(f"{base_c}/images/", body={"zarr_url": f"{z}/c/new"})[0] == 201
    page = query(api, base_c, {"attribute_filters": {"well": ["W399"]}})
    assert page["total_count"] == 100 and page["items"][-1]["zarr_url"] == f"{z}/c/39999"
    assert stored(db, c) == images("c", 40000) + [{"zarr_url": f"{z}/c/new", "origin": None, "attributes": {},
                                                   "types": {}}]
    assert stored(db, b) == want_b  # and the server stops cleanly (the fixture checks)


def test_an_export_answered_while_the_list_is_edited(server, db):
    """An export answers the list's text from the cached index itself, held
    while the client reads (http_json_span), not from a copy: edits made
    while a slow client is still reading go to a copy of the index, and the
    answer is the list as it was when the export was asked for, whole and
    valid; the edits land, and the next export has them."""
    import socket
    import urllib.parse
    api = login(server)
    base0, d0 = dataset(api, "exported")
    pid, z = d0["project_id"], d0["zarr_dir"] + "-exp"
    # about 8 MB: more than the kernel's socket buffers hold (4 MB at most
    # for the server's, by default), so the server is still reading the
    # index's text when the edits are made
    n = 6000
    images = [{"zarr_url": f"{z}/{i:06d}", "origin": None, "attributes": {"well": f"W{i // 100}", "field": i % 100,
                                                                        "pad": "x" * 1200},
               "types": {"3D": i % 2 == 0}} for i in range(n)]
    st, d = api.post(f"/api/v2/project/{pid}/dataset/import/", body={"name": "big", "zarr_dir": z, "images": images})[:2]
    assert st == 201, d
    base = f"/api/v2/project/{pid}/dataset/{d['id']}"
    assert query(api, base)["total_count"] == n  # cached
    u = urllib.parse.urlparse(api.base)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # a slow reader: the server cannot send it all at once
    s.connect((u.hostname, u.port))
    s.sendall(f"GET {base}/export/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.token}\r\n"
              "Connection: close\r\n\r\n".encode())
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    # edits while the answer is on its way (an in-place edit of the text
    # being sent would show in it, or break it)
    for i in range(0, n, n // 10):
        st, b, _ = api.request("PATCH", f"{base}/images/", body={"zarr_url": f"{z}/{i:06d}",
                                                                 "attributes": {"well": "EDITED"}})
        assert st == 200, b
    assert api.request("DELETE", f"{base}/images/?zarr_url={z}/000001")[0] == 204
    assert api.post(f"{base}/images/", body={"zarr_url": f"{z}/new"})[0] == 201
    chunks = [first]
    while True:
        c = s.recv(1 << 16)
        if not c:
            break
        chunks.append(c)
    s.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert b"content-length: %d" % len(body) in head.lower(), head
    assert json.loads(body) == {"name": "big", "zarr_dir": z, "images": images}
    now = api.get(f"{base}/export/")[1]["images"]
    assert len(now) == n and now[-1]["zarr_url"] == f"{z}/new" and now[0]["attributes"]["well"] == "EDITED"
    assert f"{z}/000001" not in {i["zarr_url"] for i in now}
    assert stored(db, d["id"]) == now
