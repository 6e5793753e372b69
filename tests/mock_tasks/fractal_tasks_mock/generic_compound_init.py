"""Init of generic_task_compound: one item per input image, with its index."""
from _task import run_fractal_task


def generic_compound_init(*, zarr_urls, zarr_dir, argument=1):
    return {"parallelization_list": [
        {"zarr_url": url, "init_args": {"argument": argument, "ind": ind}}
        for ind, url in enumerate(zarr_urls)]}


if __name__ == "__main__":
    run_fractal_task(generic_compound_init)
