"""The task protocol of Fractal: `<script> --args-json IN --out-json OUT`.

Reads the arguments object from IN, calls the task function with them as
keyword arguments and always writes its return value (null when it returns
nothing) as JSON to OUT. An exception ends the process with a traceback on
stderr and a non-zero exit code.
"""
import argparse
import json
import logging
import os
import sys


def run_fractal_task(func):
    parser = argparse.ArgumentParser()
    parser.add_argument("--args-json", required=True)
    parser.add_argument("--out-json", required=True)
    ns = parser.parse_args()
    if os.path.exists(ns.out_json):
        sys.exit(f"Output file {ns.out_json} already exists. Terminating")
    with open(ns.args_json) as f:
        args = json.load(f)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s; %(levelname)s; %(message)s")
    logging.info("START %s task", func.__name__)
    out = func(**args)
    with open(ns.out_json, "w") as f:
        json.dump(out, f, indent=2)
    logging.info("END %s task", func.__name__)
