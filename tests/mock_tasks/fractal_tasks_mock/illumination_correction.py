"""Parallel task: corrects one image in place or into <url>_corr."""
import os

from _task import run_fractal_task


def illumination_correction(*, zarr_url, overwrite_input=False):
    if overwrite_input:
        with open(f"{zarr_url}/data", "a") as f:
            f.write("Illumination correction\n")
        return None
    new = f"{zarr_url}_corr"
    os.makedirs(new)
    with open(f"{new}/data", "a") as f:
        f.write("Illumination correction\n")
    return {"image_list_updates": [{"zarr_url": new, "origin": zarr_url}]}


if __name__ == "__main__":
    run_fractal_task(illumination_correction)
