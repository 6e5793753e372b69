"""Converter: adds one image <zarr_dir>/my-new-image (or a broken one, on request)."""
from _task import run_fractal_task


def dummy_insert_single_image(*, zarr_dir, attributes=None, types=None, fail=False, fail_2=False,
                              trailing_slash=False, full_new_image=None):
    if full_new_image is not None:
        return {"image_list_updates": [full_new_image]}
    url = f"{zarr_dir.rstrip('/')}/my-new-image"
    if fail:
        url = "/invalid/my-new-image"
    if fail_2:
        url = zarr_dir
    if trailing_slash:
        url += "/" * 10
    image = {"zarr_url": url}
    if attributes is not None:
        image["attributes"] = attributes
    if types is not None:
        image["types"] = types
    return {"image_list_updates": [image]}


if __name__ == "__main__":
    run_fractal_task(dummy_insert_single_image)
