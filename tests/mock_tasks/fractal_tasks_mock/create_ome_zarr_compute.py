"""Compute of create_ome_zarr_compound: fills one image, sets well and plate."""
from _task import run_fractal_task


def create_ome_zarr_compute(*, zarr_url, init_args):
    with open(f"{zarr_url}/data", "w") as f:
        f.write(f"Source data: {init_args['raw_zarr_url']}\n")
    parts = zarr_url.rstrip("/").split("/")
    attributes = {"well": parts[-3] + parts[-2], "plate": parts[-4]}
    if init_args.get("acquisition") is not None:
        attributes["acquisition"] = init_args["acquisition"]
    return {"image_list_updates": [{"zarr_url": zarr_url, "attributes": attributes, "types": {"3D": True}}]}


if __name__ == "__main__":
    run_fractal_task(create_ome_zarr_compute)
