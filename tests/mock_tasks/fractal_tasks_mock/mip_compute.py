"""Compute of MIP_compound: copies the image into the new plate."""
import shutil

from _task import run_fractal_task


def mip_compute(*, zarr_url, init_args):
    new = init_args["new_zarr_url"]
    shutil.copytree(zarr_url, new)
    with open(f"{new}/data", "a") as f:
        f.write("MIP\n")
    return {"image_list_updates": [
        {"zarr_url": new, "origin": zarr_url, "attributes": {"plate": init_args["new_plate"]}}]}


if __name__ == "__main__":
    run_fractal_task(mip_compute)
