"""Pagination: a page past the last one is empty, however large its number.

Every paged route computes the items before a page with one bounded helper
(v_page_offset in src/api/params.c): (page - 1) * page_size used to
overflow for huge pages (undefined behaviour, caught by UBSan) and wrap to
the first page, or a negative OFFSET that PostgreSQL refuses.
"""
import pytest

BIG = 2**63 - 1

# one route per paging code path: its own SQL (dataset, admin project and
# link lists, templates) or the shared query builder (admin tasks, jobs)
ROUTES = ("/api/v2/dataset/", "/admin/v2/project/", "/admin/v2/linkuserproject/", "/api/v2/workflow-template/",
          "/admin/v2/task/", "/admin/v2/job/", "/admin/v2/task-group/", "/admin/v2/task-group/activity/")


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def test_a_huge_page_is_empty(api):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    for name in ("one", "two", "three"):
        assert api.post(f"/api/v2/project/{pid}/dataset/", body={"name": name})[0] == 201
    for path in ROUTES:
        status, first, _ = api.get(path + "?page=1&page_size=2")
        assert status == 200, (path, first)
        for query in (f"page={BIG}&page_size=10", f"page={BIG}&page_size={BIG}", f"page=3&page_size={BIG}",
                      f"page={2**62}&page_size=4"):
            status, page, _ = api.get(f"{path}?{query}")
            assert status == 200, (path, query, page)
            assert page["items"] == [] and page["total_count"] == first["total_count"], (path, query, page)
            assert page["current_page"] == int(query.split("&")[0][5:]), (path, query, page)
    # a page just past the end is empty too, and the last one is not
    assert [d["name"] for d in api.get("/api/v2/dataset/?page=2&page_size=2")[1]["items"]] == ["one"]
    assert api.get("/api/v2/dataset/?page=3&page_size=2")[1]["items"] == []


def test_images_clamp_a_huge_page_to_the_last(api):
    """The images query keeps upstream's rule: past the end means the last page."""
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    ds = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"})[1]
    did, z = ds["id"], ds["zarr_dir"]
    for i in range(3):
        assert api.post(f"/api/v2/project/{pid}/dataset/{did}/images/", body={"zarr_url": f"{z}/{i}"})[0] == 201
    status, page, _ = api.post(f"/api/v2/project/{pid}/dataset/{did}/images/query/?page={BIG}&page_size=2")
    assert status == 200, page
    assert [i["zarr_url"] for i in page["items"]] == [f"{z}/2"] and page["current_page"] == 2
