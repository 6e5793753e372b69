"""The throwaway SLURM cluster itself (tests/slurm_cluster.sh), as the SLURM executor will find it.

No fractalctl here: these check, and document, the environment the SLURM tests run in. Jobs are
submitted as the unprivileged test user through sudo, as upstream's sudo SLURM runner does.
"""
import time


def wait_state(slurm, job_id, states, timeout=60):
    """Polls sacct until the job is in one of states; returns that state."""
    deadline = time.time() + timeout
    while True:
        state = slurm.state(job_id)
        if state in states:
            return state
        assert time.time() < deadline, f"job {job_id} still {state!r} after {timeout} s"
        time.sleep(0.2)


def sbatch(slurm, workdir, script, *options):
    r = slurm.run("sbatch", "--parsable", f"--chdir={workdir}", *options, "--wrap", script)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_job_of_the_test_user_runs_as_that_user_and_sacct_records_it(slurm):
    wd = slurm.workdir("whoami")
    job = sbatch(slurm, wd, "whoami > out.txt")
    assert wait_state(slurm, job, {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL"}) == "COMPLETED"
    assert (wd / "out.txt").read_text() == f"{slurm.user}\n"
    assert (wd / "out.txt").owner() == slurm.user
    assert (wd / f"slurm-{job}.out").exists()  # sbatch's default output, in --chdir
    # without --mem a job gets DefMemPerCPU (100 MB for its one CPU), not the whole node. slurmdbd may
    # hold a partial record for a moment after the state is final (seen under load: no partition yet)
    want = f"{slurm.user}|fractal|{slurm.partition}|0:0|100M"
    deadline = time.time() + 20
    while True:
        r = slurm.run("sacct", "-n", "-X", "-P", "-o", "User,Account,Partition,ExitCode,ReqMem", "-j", job)
        assert r.returncode == 0, r.stderr
        if r.stdout.strip() == want or time.time() > deadline:
            break
        time.sleep(0.5)
    assert r.stdout.strip() == want


def test_request_the_node_cannot_meet_is_refused_at_submission(slurm):
    # EnforcePartLimits=ALL: refused by sbatch at once, instead of PENDING forever
    wd = slurm.workdir("toobig")
    r = slurm.run("sbatch", "--parsable", f"--chdir={wd}", "--mem=1000000G", "--wrap", "true")
    assert r.returncode != 0
    assert "Requested node configuration is not available" in r.stderr


def test_running_job_survives_a_slurmctld_restart(slurm):
    wd = slurm.workdir("restart")
    job = sbatch(slurm, wd, "sleep 5; echo done > out.txt")
    assert wait_state(slurm, job, {"RUNNING", "COMPLETED", "FAILED"}) == "RUNNING"
    slurm.restart_ctld()
    assert wait_state(slurm, job, {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL"}) == "COMPLETED"
    assert (wd / "out.txt").read_text() == "done\n"
