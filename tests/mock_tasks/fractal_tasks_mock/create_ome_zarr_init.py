"""Init of create_ome_zarr_compound: makes a plate with num_images images."""
import os

from _task import run_fractal_task


def create_ome_zarr_init(*, zarr_dir, image_dir, num_images=2):
    os.makedirs(zarr_dir)
    items = []
    for i in range(1, num_images + 1):
        url = f"{zarr_dir.rstrip('/')}/my_plate.zarr/A/{i:02d}/0"
        os.makedirs(url)
        items.append({"zarr_url": url, "init_args": {"raw_zarr_url": f"{image_dir}/A_{i:02d}_0.tif"}})
    return {"parallelization_list": items}


if __name__ == "__main__":
    run_fractal_task(create_ome_zarr_init)
