"""Compute of generic_task_compound; may fail always or for even indices."""
from _task import run_fractal_task


def generic_compound_compute(*, zarr_url, init_args, raise_error=False, raise_error_if_ind_is_even=False):
    if raise_error:
        raise RuntimeError("This is the error message")
    if raise_error_if_ind_is_even and init_args["ind"] % 2 == 0:
        raise RuntimeError(f"Error for even index {init_args['ind']}")
    return None


if __name__ == "__main__":
    run_fractal_task(generic_compound_compute)
