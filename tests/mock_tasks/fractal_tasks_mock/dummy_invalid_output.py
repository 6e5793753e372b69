"""Non-parallel task whose output breaks the output schema (an unknown key)."""
from _task import run_fractal_task


def dummy_invalid_output(*, zarr_urls, zarr_dir):
    return {"image_list_updates": [], "unexpected_key": 1}


if __name__ == "__main__":
    run_fractal_task(dummy_invalid_output)
