"""Projects, datasets and images (the v2 user API), on both engines."""
import json
from pathlib import Path

import pytest

from conftest import ADMIN_EMAIL


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def new_user(api, email, project_dirs=("/data/u",)):
    admin = api.token
    status, u, _ = api.post("/auth/register/", body={"email": email, "password": "abcd",
                                                     "project_dirs": list(project_dirs)})
    assert status == 201, u
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": 1})
    token = api.login(email, "abcd")
    api.token = admin
    return u["id"], token


def test_project_crud(api, server):
    status, p, _ = api.post("/api/v2/project/", body={"name": " proj 1 ", "description": "first"})
    assert status == 201, p
    assert list(p) == ["id", "name", "description", "is_starred", "timestamp_created"]
    assert p["name"] == "proj 1" and p["description"] == "first" and p["is_starred"] is False
    assert api.post("/api/v2/project/", body={"name": "proj 1"})[1] == {"detail": "Project name (proj 1) already in use"}
    status, body, _ = api.post("/api/v2/project/", body={"name": "bad/name"})
    assert status == 422 and body["detail"][0]["type"] == "string_pattern_mismatch"
    status, body, _ = api.post("/api/v2/project/", body={"name": "x", "resource_id": 1})
    assert status == 422 and body["detail"][0]["type"] == "extra_forbidden"
    p2 = api.post("/api/v2/project/", body={"name": "proj 2"})[1]
    # newest first, starred first
    assert [x["id"] for x in api.get("/api/v2/project/")[1]] == [p2["id"], p["id"]]
    assert api.post(f"/api/v2/project/{p['id']}/star/")[0] == 200
    assert [x["id"] for x in api.get("/api/v2/project/")[1]] == [p["id"], p2["id"]]
    assert api.get(f"/api/v2/project/{p['id']}/")[1]["is_starred"] is True
    api.post(f"/api/v2/project/{p['id']}/unstar/")
    assert api.get("/api/v2/project/?is_owner=false")[1] == []
    status, q, _ = api.request("PATCH", f"/api/v2/project/{p['id']}/", body={"name": "renamed", "description": None})
    assert status == 200 and q["name"] == "renamed" and q["description"] is None
    assert api.request("PATCH", f"/api/v2/project/{p['id']}/", body={"name": "proj 2"})[0] == 422
    assert api.request("PATCH", f"/api/v2/project/{p['id']}/", body={"name": "renamed"})[0] == 200
    assert api.get("/api/v2/project/999/")[1] == {"detail": "Project not found"}
    assert api.request("DELETE", f"/api/v2/project/{p['id']}/")[0] == 204
    assert api.get(f"/api/v2/project/{p['id']}/")[0] == 404


def test_project_access_of_strangers_and_guests(api, db):
    pid = api.post("/api/v2/project/", body={"name": "mine"})[1]["id"]
    uid, other = new_user(api, "other@example.org")
    forbidden = {"detail": "You are not authorized to perform this action. If you think this is by mistake, "
                           "please contact the project owner."}
    assert api.get(f"/api/v2/project/{pid}/", token=other)[1:2] == (forbidden,)
    assert api.request("PATCH", f"/api/v2/project/{pid}/", body={"name": "x"}, token=other)[0] == 403
    assert api.request("DELETE", f"/api/v2/project/{pid}/", token=other)[0] == 403
    # a read-only guest link: reading works, writing does not
    db.execute(f"INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
               f"VALUES ({pid}, {uid}, false, true, 'r')")
    assert api.get(f"/api/v2/project/{pid}/", token=other)[0] == 200
    assert [x["id"] for x in api.get("/api/v2/project/?is_owner=false", token=other)[1]] == [pid]
    assert api.request("PATCH", f"/api/v2/project/{pid}/", body={"name": "x"}, token=other)[0] == 403
    db.execute(f"UPDATE linkuserprojectv2 SET permissions = 'rwx' WHERE user_id = {uid}")
    status, body, _ = api.request("DELETE", f"/api/v2/project/{pid}/", token=other)
    assert (status, body) == (403, {"detail": "Only the owner can delete a Project."})
    # an invitation not yet accepted gives nothing
    db.execute(f"UPDATE linkuserprojectv2 SET is_verified = false WHERE user_id = {uid}")
    assert api.get(f"/api/v2/project/{pid}/", token=other)[0] == 403
    # a user without a profile
    db.execute(f"UPDATE user_oauth SET profile_id = NULL WHERE id = {uid}")
    status, body, _ = api.get("/api/v2/project/", token=other)
    assert (status, body) == (403, {"detail": "Forbidden access (user.is_verified=True user.profile_id=None)."})


def test_project_with_a_submitted_job_cannot_be_deleted(api, db):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    did = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]["id"]
    db.execute("INSERT INTO jobv2 (project_id, dataset_id, user_email, dataset_dump, workflow_dump, project_dump, "
               f"first_task_index, last_task_index, start_timestamp, status) VALUES ({pid}, {did}, '{ADMIN_EMAIL}', "
               "'{}', '{}', '{}', 0, 0, '2024-01-01T00:00:00+00:00', 'submitted')")
    jid = db.query("SELECT id FROM jobv2")[0][0]
    status, body, _ = api.request("DELETE", f"/api/v2/project/{pid}/")
    assert (status, body) == (422, {"detail": f"Cannot delete project {pid} because it is linked to active job(s) {jid}."})
    status, body, _ = api.request("DELETE", f"/api/v2/project/{pid}/dataset/{did}/")
    assert (status, body) == (422, {"detail": f"Cannot delete dataset {did} because it is linked to active job(s) {jid}."})
    db.execute("UPDATE jobv2 SET status = 'done'")
    assert api.request("DELETE", f"/api/v2/project/{pid}/")[0] == 204
    # the job stays, detached
    assert db.query("SELECT project_id, dataset_id FROM jobv2") == [[None, None]]
    assert db.query("SELECT count(*) FROM datasetv2") == [["0"]]


def test_dataset_crud(api, server):
    pid = api.post("/api/v2/project/", body={"name": "My Project!"[:-1]})[1]["id"]
    status, d, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "Raw Data"})
    assert status == 201, d
    assert list(d) == ["id", "name", "project_id", "project", "timestamp_created", "zarr_dir", "is_starred"]
    assert d["zarr_dir"] == f"{server.cwd}/fractal/{pid}_my_project/{d['id']}_raw_data"
    status, d2, _ = api.post(f"/api/v2/project/{pid}/dataset/",
                             body={"name": "b", "project_dir": f"{server.cwd}/", "zarr_subfolder": "x//y/"})
    assert status == 201 and d2["zarr_dir"] == f"{server.cwd}/x/y"
    status, body, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "c", "project_dir": "/not/mine"})
    assert (status, body) == (403, {"detail": "You are not allowed to use dataset.project_dir='/not/mine'."})
    status, body, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "c", "zarr_subfolder": "x"})
    assert status == 422 and body["detail"][0]["loc"] == ["body"]
    assert "zarr_subfolder" in body["detail"][0]["msg"]
    status, body, _ = api.post(f"/api/v2/project/{pid}/dataset/",
                               body={"name": "c", "project_dir": f"{server.cwd}", "zarr_subfolder": "../up"})
    assert status == 422
    # list: starred first, then by name
    api.post(f"/api/v2/project/{pid}/dataset/{d2['id']}/star/")
    assert [x["name"] for x in api.get(f"/api/v2/project/{pid}/dataset/")[1]] == ["b", "Raw Data"]
    status, x, _ = api.request("PATCH", f"/api/v2/project/{pid}/dataset/{d['id']}/", body={"name": "renamed"})
    assert status == 200 and x["name"] == "renamed" and x["zarr_dir"] == d["zarr_dir"]
    status, body, _ = api.request("PATCH", f"/api/v2/project/{pid}/dataset/{d['id']}/", body={"zarr_dir": "/x"})
    assert status == 422 and body["detail"][0]["type"] == "extra_forbidden"
    assert api.get(f"/api/v2/project/{pid}/dataset/999/")[1] == {"detail": "Dataset not found"}
    other = api.post("/api/v2/project/", body={"name": "other"})[1]["id"]
    assert api.get(f"/api/v2/project/{other}/dataset/{d['id']}/")[1] == {"detail": "Dataset not found"}
    assert api.request("DELETE", f"/api/v2/project/{pid}/dataset/{d['id']}/")[0] == 204
    assert api.get(f"/api/v2/project/{pid}/dataset/{d['id']}/")[0] == 404


def test_all_datasets_listing(api, server):
    p1 = api.post("/api/v2/project/", body={"name": "alpha"})[1]["id"]
    p2 = api.post("/api/v2/project/", body={"name": "beta"})[1]["id"]
    for pid, name in ((p1, "one"), (p1, "two"), (p2, "three")):
        api.post(f"/api/v2/project/{pid}/dataset/", body={"name": name})
    status, page, _ = api.get("/api/v2/dataset/")
    assert status == 200
    assert (page["current_page"], page["page_size"], page["total_count"]) == (1, 3, 3)
    assert [x["name"] for x in page["items"]] == ["three", "two", "one"]
    assert page["items"][0]["owner_email"] == ADMIN_EMAIL and page["items"][0]["image_count"] == 0
    page = api.get("/api/v2/dataset/?page=2&page_size=2")[1]
    assert [x["name"] for x in page["items"]] == ["one"] and page["total_count"] == 3
    assert [x["name"] for x in api.get("/api/v2/dataset/?project_name=ALP")[1]["items"]] == ["two", "one"]
    assert [x["name"] for x in api.get("/api/v2/dataset/?dataset_name=hre")[1]["items"]] == ["three"]
    status, body, _ = api.get("/api/v2/dataset/?page=0")
    assert status == 422 and body["detail"].startswith("Invalid pagination parameters.")
    status, body, _ = api.get("/api/v2/dataset/?page=2")
    assert status == 422 and "page_size is None" in body["detail"]


def test_all_datasets_listing_counts_the_images_of_each_list(api, server, tmp_path):
    """image_count is counted from the stored list (on SQLite by a scan of
    our own rather than JSON1's parse): after an import, in-place edits
    (which leave spaces in the text) and a list emptied again."""
    pid = api.post("/api/v2/project/", body={"name": "counts"})[1]["id"]
    z = str(tmp_path / "zarr")
    images = [{"zarr_url": f"{z}/{i}", "attributes": {"s": "],[\\\"" if i == 1 else i}, "types": {}} for i in range(5)]
    d = api.post(f"/api/v2/project/{pid}/dataset/import/", body={"name": "five", "zarr_dir": z, "images": images})[1]
    status, empty, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "none"})
    assert status == 201, empty

    def counts():
        return {x["name"]: x["image_count"] for x in api.get("/api/v2/dataset/")[1]["items"]}

    assert counts() == {"five": 5, "none": 0}
    base = f"/api/v2/project/{pid}/dataset/{d['id']}"
    assert api.request("DELETE", f"{base}/images/?zarr_url={z}/4")[0] == 204
    assert api.request("DELETE", f"{base}/images/?zarr_url={z}/0")[0] == 204
    assert api.post(f"{base}/images/", body={"zarr_url": f"{z}/new"})[0] == 201
    assert counts() == {"five": 4, "none": 0}
    ebase, ez = f"/api/v2/project/{pid}/dataset/{empty['id']}", empty["zarr_dir"]
    assert api.post(f"{ebase}/images/", body={"zarr_url": f"{ez}/a"})[0] == 201
    assert counts() == {"five": 4, "none": 1}
    assert api.request("DELETE", f"{ebase}/images/?zarr_url={ez}/a")[0] == 204
    assert counts() == {"five": 4, "none": 0}


def test_images_add_patch_delete_and_export_import(api, server):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    d = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    base = f"/api/v2/project/{pid}/dataset/{d['id']}"
    z = d["zarr_dir"]
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": f"{z}/plate.zarr/A/01/0/",
                                                         "attributes": {" well ": "A01"}, "types": {"3D": 1}})
    assert status == 201 and body is None
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": f"{z}/plate.zarr/A/01/0"})
    assert (status, body) == (422, {"detail": [f"Image with zarr_url '{z}/plate.zarr/A/01/0' already in DatasetV2 {d['id']}"]})
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": "/elsewhere/x"})
    assert (status, body) == (422, {"detail": f"Cannot create image with zarr_url which is not relative to {z}."})
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": z})
    assert status == 422 and "cannot be equal" in body["detail"]
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": "relative/x"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "zarr_url"]
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": f"{z}/a", "attributes": {"k": [1]}})
    assert status == 422 and body["detail"][0]["loc"][:2] == ["body", "attributes"]
    status, body, _ = api.post(f"{base}/images/", body={"zarr_url": f"{z}/a", "attributes": {"k": None}})
    assert status == 422
    status, img, _ = api.request("PATCH", f"{base}/images/", body={"zarr_url": f"{z}/plate.zarr/A/01/0",
                                                                   "attributes": {"well": "A02"}, "types": None})
    assert status == 200
    assert img == {"zarr_url": f"{z}/plate.zarr/A/01/0", "origin": None, "attributes": {"well": "A02"},
                   "types": {"3D": True}}
    assert api.request("PATCH", f"{base}/images/", body={"zarr_url": f"{z}/nope"})[1] == \
        {"detail": f"No image with zarr_url '{z}/nope' in DatasetV2 {d['id']}."}
    status, export, _ = api.get(f"{base}/export/")
    assert status == 200 and export == {"name": "d", "zarr_dir": z, "images": [img]}
    # import into the same project under a new name
    export["name"] = "copy"
    export["filters"] = {"legacy": True}
    status, imported, _ = api.post(f"/api/v2/project/{pid}/dataset/import/", body=export)
    assert status == 201 and imported["zarr_dir"] == z
    status, body, _ = api.post(f"/api/v2/project/{pid}/dataset/import/",
                               body={"name": "x", "zarr_dir": "/not/mine", "images": []})
    assert (status, body) == (422, {"detail": "dataset.zarr_dir='/not/mine' is not relative to any of user's project dirs."})
    status, body, _ = api.post(f"/api/v2/project/{pid}/dataset/import/",
                               body={"name": "x", "zarr_dir": z, "images": [{"zarr_url": "/other/img"}]})
    assert status == 422 and "is not relative to" in body["detail"][0]["msg"]
    assert api.request("DELETE", f"{base}/images/?zarr_url={z}/plate.zarr/A/01/0")[0] == 204
    assert api.request("DELETE", f"{base}/images/?zarr_url={z}/plate.zarr/A/01/0")[0] == 404
    assert api.get(f"{base}/export/")[1]["images"] == []
    status, body, _ = api.request("DELETE", f"{base}/images/")
    assert status == 422 and body["detail"][0]["loc"] == ["query", "zarr_url"]


# (type_filters, attribute_filters, expected zarr_urls): the table the C unit tests check both
# forms of src/model/filters.c against (see its "about")
_FILTERS = json.loads((Path(__file__).parent / "unit" / "filter_cases.json").read_text())
IMAGES = _FILTERS["images"]
FILTER_CASES = [tuple(c) for c in _FILTERS["cases"]]


@pytest.mark.parametrize("type_filters,attribute_filters,expected", FILTER_CASES)
def test_image_query_filters(api, server, db, type_filters, attribute_filters, expected):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    status, d, _ = api.post(f"/api/v2/project/{pid}/dataset/import/",
                            body={"name": "d", "zarr_dir": "/", "images": IMAGES})
    if status == 422:  # "/" is not under the admin's project dir: make it so
        db.execute(f"UPDATE user_oauth SET project_dirs = '{json.dumps(['/']) if db.engine == 'sqlite' else '{/}'}'")
        status, d, _ = api.post(f"/api/v2/project/{pid}/dataset/import/",
                                body={"name": "d", "zarr_dir": "/", "images": IMAGES})
    assert status == 201, d
    status, page, _ = api.post(f"/api/v2/project/{pid}/dataset/{d['id']}/images/query/",
                               body={"type_filters": type_filters, "attribute_filters": attribute_filters})
    assert status == 200, page
    assert [i["zarr_url"] for i in page["items"]] == expected
    assert page["total_count"] == len(expected)
    assert page["attributes"] == {"well": ["A01", "A02", "B01"], "n": [1, 2, 3], "f": [0.5], "ok": [False, True],
                                  "big": [9007199254740993], "flag": [1]}
    assert sorted(page["types"]) == ["3D", "mip"]


def test_image_query_paging_and_errors(api, server):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    d = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    url = f"/api/v2/project/{pid}/dataset/{d['id']}/images/query/"
    page = api.post(url)[1]
    assert page == {"current_page": 1, "page_size": 0, "total_count": 0, "items": [], "attributes": {}, "types": []}
    for i in range(5):
        api.post(f"/api/v2/project/{pid}/dataset/{d['id']}/images/", body={"zarr_url": f"{d['zarr_dir']}/{i}"})
    page = api.post(url + "?page=2&page_size=2")[1]
    assert [x["zarr_url"][-1] for x in page["items"]] == ["2", "3"] and page["current_page"] == 2
    page = api.post(url + "?page=9&page_size=2")[1]
    assert page["current_page"] == 3 and [x["zarr_url"][-1] for x in page["items"]] == ["4"]
    page = api.post(url, body={"zarr_url": f"{d['zarr_dir']}/3"})[1]
    assert [x["zarr_url"][-1] for x in page["items"]] == ["3"]
    status, body, _ = api.post(url, body={"attribute_filters": {"x": []}})
    assert status == 422 and "cannot be an empty list" in body["detail"][0]["msg"]
    status, body, _ = api.post(url, body={"attribute_filters": {"x": [1, "a"]}})
    assert status == 422 and "non-homogeneous" in body["detail"][0]["msg"]
    status, body, _ = api.post(url, body={"type_filters": {"x": "maybe"}})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "type_filters", "x"]
    # a JSON body that is not an object is the model's error, as pydantic's;
    # null is no query (ImageQuery | None), as an empty body
    assert api.post(url, raw=b"null", headers={"Content-Type": "application/json"})[1]["total_count"] == 5
    status, body, _ = api.post(url, raw=b"5", headers={"Content-Type": "application/json"})
    assert status == 422 and body["detail"][0]["type"] == "model_attributes_type", body
    status, body, _ = api.post(f"/api/v2/project/{pid}/dataset/{d['id']}/images/", raw=b'"x"',
                               headers={"Content-Type": "application/json"})
    assert status == 422 and body["detail"][0]["type"] == "model_type" and body["detail"][0]["loc"] == ["body"], body
    status, body, _ = api.request("PATCH", f"/api/v2/project/{pid}/dataset/{d['id']}/images/", raw=b"[]",
                                  headers={"Content-Type": "application/json"})
    assert status == 422 and body["detail"][0]["type"] == "model_attributes_type", body


def test_large_dataset_query(api, server):
    """10,000 images in one dataset: imported, queried with a filter and paged."""
    pid = api.post("/api/v2/project/", body={"name": "big"})[1]["id"]
    root = f"{server.cwd}/big"
    images = [{"zarr_url": f"{root}/plate.zarr/{i // 100}/{i % 100}/0",
               "attributes": {"well": f"W{i // 100:03d}", "idx": i}, "types": {"3D": i % 2 == 0}}
              for i in range(10000)]
    status, d, _ = api.post(f"/api/v2/project/{pid}/dataset/import/", body={"name": "d", "zarr_dir": root, "images": images})
    assert status == 201
    url = f"/api/v2/project/{pid}/dataset/{d['id']}/images/query/?page=3&page_size=100"
    status, page, _ = api.post(url, body={"type_filters": {"3D": True}, "attribute_filters": {"well": ["W005", "W006"]}})
    assert status == 200
    assert page["total_count"] == 100 and page["current_page"] == 1
    assert len(page["attributes"]["idx"]) == 10000
    # (its speed is measured by bench/, not here)


def test_an_import_read_image_by_image_from_the_body_answers_as_a_whole_parse(api, server):
    """The import reads its images one at a time from the body's text (a
    large body is never one tree); whatever the body, the answer is the
    one a parse of the whole body gives."""
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    z = f"{server.cwd}/imp"
    hdr = {"Content-Type": "application/json"}

    def imp(raw):
        return api.post(f"/api/v2/project/{pid}/dataset/import/", raw=raw.encode(), headers=hdr)

    def images(d):
        return api.get(f"/api/v2/project/{pid}/dataset/{d['id']}/export/")[1]["images"]

    # whitespace anywhere, keys in any order: stored in SingleImage's form
    status, d = imp(f'{{ "images" : [ \n {{"types": {{"3D": true}}, "zarr_url": "{z}/a/" }} ,\t'
                    f'{{"zarr_url":"{z}/b","attributes":{{"w":"A01","n":1}}}}\n] , "name":"d1", "zarr_dir":"{z}"}}')[:2]
    assert status == 201, d
    assert images(d) == [{"zarr_url": f"{z}/a", "origin": None, "attributes": {}, "types": {"3D": True}},
                         {"zarr_url": f"{z}/b", "origin": None, "attributes": {"n": 1, "w": "A01"}, "types": {}}]
    status, d = imp(f'{{"name":"d2","zarr_dir":"{z}","images":[ ]}}')[:2]
    assert status == 201 and images(d) == []
    # a key twice, or spelt with an escape: the last value counts, as for any JSON parser
    status, d = imp(f'{{"name":"d3","zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}}],'
                    f'"images":[{{"zarr_url":"{z}/b"}}]}}')[:2]
    assert status == 201 and [i["zarr_url"] for i in images(d)] == [f"{z}/b"]
    status, d = imp(f'{{"name":"d4","zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}}],'
                    f'"\\u0069mages":[{{"zarr_url":"{z}/c"}}]}}')[:2]
    assert status == 201 and [i["zarr_url"] for i in images(d)] == [f"{z}/c"]
    # an item that is not JSON: the whole body's decode error
    status, body = imp(f'{{"name":"x","zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}},{{bad}}]}}')[:2]
    assert status == 422 and body["detail"][0]["type"] == "json_invalid", body
    status, body = imp(f'{{"name":"x","zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}} {{"zarr_url":"{z}/b"}}]}}')[:2]
    assert status == 422 and body["detail"][0]["type"] == "json_invalid", body
    # the model's errors echo the whole input, images included
    raw = f'{{"zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}}]}}'
    status, body = imp(raw)[:2]
    assert (status, body["detail"]) == (422, [{"type": "missing", "loc": ["body", "name"], "msg": "Field required",
                                               "input": json.loads(raw)}])
    status, body = imp(f'{{"name":"x","zarr_dir":"{z}","images":5}}')[:2]
    assert status == 422 and body["detail"][0]["type"] == "list_type" and body["detail"][0]["input"] == 5
    # each image's errors at its place in the list
    status, body = imp(f'{{"name":"x","zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}},5,'
                       f'{{"zarr_url":"{z}/c","attributes":{{"k":[1]}}}},{{"origin":"{z}/o"}}]}}')[:2]
    assert status == 422, body
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [
        ("model_type", ["body", "images", 1]), ("string_type", ["body", "images", 2, "attributes", "k"]),
        ("missing", ["body", "images", 3, "zarr_url"])]
    raw = f'{{"name":"x","zarr_dir":"{z}","images":[{{"zarr_url":"{z}/a"}},{{"zarr_url":"/elsewhere/b"}}]}}'
    status, body = imp(raw)[:2]
    assert status == 422 and body["detail"][0]["loc"] == ["body"] and body["detail"][0]["input"] == json.loads(raw)
    assert "image.zarr_url='/elsewhere/b' is not relative to" in body["detail"][0]["msg"]
    # nothing of the refused ones was stored
    assert sorted(d["name"] for d in api.get(f"/api/v2/project/{pid}/dataset/")[1]) == ["d1", "d2", "d3", "d4"]


def test_image_keys_come_back_in_jsonb_order_on_both_engines(api, server):
    """Upstream stores images as jsonb: keys sorted by length, then bytes."""
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    d = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    base = f"/api/v2/project/{pid}/dataset/{d['id']}"
    api.post(f"{base}/images/", body={"zarr_url": f"{d['zarr_dir']}/x", "attributes": {"zz": 1, "b": 2, "a": 3, "ccc": 4},
                                       "types": {"long_type": True, "t": False}})
    img = api.post(f"{base}/images/query/")[1]["items"][0]
    assert list(img) == ["zarr_url", "origin", "attributes", "types"]
    assert list(img["attributes"]) == ["a", "b", "zz", "ccc"]
    assert list(img["types"]) == ["t", "long_type"]


def test_image_reads_see_every_write_even_from_outside_the_server(api, db):
    """Reads reuse a parsed copy of the list while the row's version matches."""
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    d = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    url = f"/api/v2/project/{pid}/dataset/{d['id']}/images/query/"
    api.post(f"/api/v2/project/{pid}/dataset/{d['id']}/images/", body={"zarr_url": f"{d['zarr_dir']}/a"})
    assert [i["zarr_url"] for i in api.post(url)[1]["items"]] == [f"{d['zarr_dir']}/a"]
    assert api.post(url)[1]["total_count"] == 1  # served from the cache
    new = '[{"zarr_url": "/x/b", "origin": null, "attributes": {"k": 1}, "types": {}}]'
    db.execute(f"UPDATE datasetv2 SET images = '{new}' WHERE id = {d['id']}")
    page = api.post(url)[1]
    assert [i["zarr_url"] for i in page["items"]] == ["/x/b"] and page["attributes"] == {"k": [1]}
    assert api.get(f"/api/v2/project/{pid}/dataset/{d['id']}/export/")[1]["images"][0]["zarr_url"] == "/x/b"
    # a change that keeps the text's length (SQLite's version is length and hash)
    db.execute(f"UPDATE datasetv2 SET images = '{new.replace('/x/b', '/x/c')}' WHERE id = {d['id']}")
    assert [i["zarr_url"] for i in api.post(url)[1]["items"]] == ["/x/c"]
