"""Non-parallel task: removes one attribute from every input image."""
from _task import run_fractal_task


def dummy_unset_attribute(*, zarr_urls, zarr_dir, attribute):
    return {"image_list_updates": [{"zarr_url": url, "attributes": {attribute: None}} for url in zarr_urls]}


if __name__ == "__main__":
    run_fractal_task(dummy_unset_attribute)
