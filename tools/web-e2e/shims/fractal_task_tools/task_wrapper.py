"""Offline stand-in for fractal_task_tools.task_wrapper (e2e tests only)."""
import argparse
import json
import logging
import time


def run_fractal_task(*, task_function, logger_name=None):
    p = argparse.ArgumentParser()
    p.add_argument("--args-json", required=True)
    p.add_argument("--out-json", required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s; %(levelname)s; %(message)s")
    with open(a.args_json) as f:
        pars = json.load(f)
    name = task_function.__name__
    logging.info(f"START {name} task")
    t0 = time.perf_counter()
    out = task_function(**pars)
    logging.info(f"END {name} task, in {time.perf_counter() - t0:.3f} seconds")
    if out is not None:
        with open(a.out_json, "w") as f:
            json.dump(out, f, indent=2)
