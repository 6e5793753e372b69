"""Parallel task: segments one image in place."""
from _task import run_fractal_task


def cellpose_segmentation(*, zarr_url):
    if not zarr_url.startswith("/"):
        raise ValueError(f"zarr_url={zarr_url} is not absolute")
    with open(f"{zarr_url}/data", "a") as f:
        f.write("Cellpose segmentation\n")
    return None


if __name__ == "__main__":
    run_fractal_task(cellpose_segmentation)
