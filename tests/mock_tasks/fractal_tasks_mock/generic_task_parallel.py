"""Parallel task: sleeps on one image."""
import time

from _task import run_fractal_task


def generic_task_parallel(*, zarr_url, sleep_time=0):
    print(f"generic_task_parallel on {zarr_url}")
    time.sleep(sleep_time)
    return None


if __name__ == "__main__":
    run_fractal_task(generic_task_parallel)
