"""Non-parallel task: removes its input images (and more, on request)."""
from _task import run_fractal_task


def dummy_remove_images(*, zarr_urls, zarr_dir, more_zarr_urls=None):
    return {"image_list_removals": list(zarr_urls) + list(more_zarr_urls or [])}


if __name__ == "__main__":
    run_fractal_task(dummy_remove_images)
