"""Converter (non-parallel, no input images); optionally fails."""
from _task import run_fractal_task


def generic_task_converter(*, zarr_dir, raise_error=False):
    if raise_error:
        raise ValueError("This is the error message")
    return None


if __name__ == "__main__":
    run_fractal_task(generic_task_converter)
