# fractalctl's SLURM worker: runs one task unit on a compute node.
#
# Upstream runs `<jobs_slurm_python_worker> -m fractal_server.runner.
# executors.slurm_common.remote`, which needs fractal-server installed on the
# cluster. This script needs nothing but the Python standard library: the
# runner (src/runner/exec_slurm.c) writes it into each job folder, with
# FRACTAL_SERVER_VERSION set to the server's version, and each srun line runs
# `<jobs_slurm_python_worker> <this file> --input-file IN --output-file OUT`.
# The contract is upstream's: IN is {"python_version", "fractal_server_version",
# "full_command", "metadiff_file_remote", "log_file_remote", "user_cache_dir"};
# OUT is [true, <metadiff or null>] or [false, {"exc_type_name",
# "traceback_string"}]. `--versions` prints {"python": [...],
# "fractal_server": "..."} (the runner's check that the interpreter works).
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import traceback

FRACTAL_SERVER_VERSION = "@FRACTAL_SERVER_VERSION@"
MAX_LEN_STDERR = 100_000
FORBIDDEN = "`#$&*()\\|[]{};<>?!"


class TaskExecutionError(RuntimeError):
    pass


class FractalVersionMismatch(RuntimeError):
    pass


def validate_cmd(cmd):
    bad = [c for c in FORBIDDEN if c in cmd]
    if bad:
        chars = ", ".join(repr(c) for c in FORBIDDEN)
        raise ValueError(
            "Command must not contain any of this characters: '{" + chars + "}'\n"
            f"Provided command: '{cmd}'."
        )


def placeholder_if_too_long(stderr):
    if len(stderr) > MAX_LEN_STDERR:
        return (
            f"Cannot display stderr of length {len(stderr)}. You can find the "
            "detailed logs by downloading the job-log folder."
        )
    return stderr


def call_command(cmd, log_path, user_cache_dir):
    try:
        validate_cmd(cmd)
    except ValueError as e:
        raise TaskExecutionError(f"Invalid command. Original error: {str(e)}")
    split_cmd = shlex.split(cmd)
    if shutil.which(split_cmd[0]) is None:
        raise TaskExecutionError(
            f'Command "{split_cmd[0]}" is not valid. '
            "Hint: make sure that it is executable."
        )
    with open(log_path, "w") as fp_log:
        result = subprocess.run(
            split_cmd,
            stderr=fp_log,
            stdout=fp_log,
            env=dict(os.environ, FRACTAL_CACHE_DIR=user_cache_dir),
        )
    if result.returncode != 0:
        stderr = ""
        if os.path.isfile(log_path):
            with open(log_path) as fp:
                stderr = placeholder_if_too_long(fp.read())
        raise TaskExecutionError(
            f"Task failed with returncode={result.returncode}.\n"
            f"STDERR: {stderr}"
        )


def worker(in_fname, out_fname):
    out_dir = os.path.dirname(out_fname)
    if not os.path.exists(out_dir):
        os.mkdir(out_dir)
    try:
        with open(in_fname) as f:
            data = json.load(f)
        server_version = data["fractal_server_version"]
        if server_version != FRACTAL_SERVER_VERSION:
            raise FractalVersionMismatch(
                f"server_fractal_server_version={server_version!r} but "
                f"worker_fractal_server_version={FRACTAL_SERVER_VERSION!r}"
            )
        worker_python = list(sys.version_info[:3])
        server_python = data["python_version"]
        if worker_python[:2] != list(server_python)[:2]:
            print(f"WARNING: server_python_version={server_python} but worker_python_version={worker_python}.")
        call_command(data["full_command"], data["log_file_remote"], data["user_cache_dir"])
        try:
            with open(data["metadiff_file_remote"]) as f:
                result = (True, json.load(f))
        except FileNotFoundError:
            result = (True, None)
    except Exception as e:
        exc_type, exc_value, tb = sys.exc_info()
        text = "".join(traceback.format_exception(exc_type, exc_value, tb.tb_next))
        result = (False, {"exc_type_name": type(e).__name__, "traceback_string": text})
    with open(out_fname, "w") as f:
        json.dump(result, f, indent=2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", action="store_true")
    parser.add_argument("--input-file")
    parser.add_argument("--output-file")
    args = parser.parse_args()
    if args.versions:
        print(json.dumps({"python": list(sys.version_info[:3]), "fractal_server": FRACTAL_SERVER_VERSION}))
        return
    if not args.input_file or not args.output_file:
        parser.error("--input-file and --output-file are required")
    worker(args.input_file, args.output_file)


if __name__ == "__main__":
    main()
