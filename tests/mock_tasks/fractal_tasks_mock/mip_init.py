"""Init of MIP_compound: a new plate <plate>_<suffix>.zarr, one item per image."""
import os

from _task import run_fractal_task


def mip_init(*, zarr_urls, zarr_dir, suffix="new"):
    plates = {url.rstrip("/").split("/")[-4] for url in zarr_urls}
    if len(plates) != 1:
        raise ValueError(f"All images must belong to one plate, got {sorted(plates)}")
    plate = plates.pop()
    new_plate = f"{plate.removesuffix('.zarr')}_{suffix}.zarr"
    os.makedirs(f"{zarr_dir.rstrip('/')}/{new_plate}", exist_ok=True)
    items = []
    for url in zarr_urls:
        new_url = url.replace(f"/{plate}/", f"/{new_plate}/")
        items.append({"zarr_url": url, "init_args": {"new_zarr_url": new_url, "new_plate": new_plate}})
    return {"parallelization_list": items}


if __name__ == "__main__":
    run_fractal_task(mip_init)
