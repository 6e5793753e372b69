"""Non-parallel task: warns, sleeps, optionally fails."""
import logging
import time

from _task import run_fractal_task


def generic_task(*, zarr_urls, zarr_dir, sleep_time=1, raise_error=False):
    logging.warning("This is a warning from generic_task")
    time.sleep(sleep_time)
    if raise_error:
        raise ValueError("This is the error message")
    return None


if __name__ == "__main__":
    run_fractal_task(generic_task)
