"""deepkit_engine.dist: one process without a launcher, and two under ``mpirun -np 2``.

The two-process cases run scripts from ``mpi_scripts/`` with the mpirun that
sits next to this Python (the ``mpich`` wheel of the ``dist``/``test``
extras puts it there), with hydra's fork launcher so that no ssh or network
is needed, each under a timeout.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from deepkit_engine import dist, kvstore, nd

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
SCRIPTS = HERE / "mpi_scripts"
MPIRUN = pathlib.Path(sys.executable).parent / "mpirun"


def _mpi_skip_reason():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'deepkit[dist]')"
    if not MPIRUN.exists():
        return f"no mpirun next to {sys.executable} (the mpich wheel of 'deepkit[dist]' brings it)"
    return None


_SKIP = _mpi_skip_reason()
needs_mpi = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def _hydra():
    try:
        out = subprocess.run([str(MPIRUN), "--version"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "HYDRA" in (out.stdout + out.stderr).upper()


def run_mpi(script, *args, launcher_args=(), env=None, timeout=60):
    """Run ``script`` on 2 ranks; returns (CompletedProcess, seconds)."""
    hydra = _hydra()
    cmd = [str(MPIRUN)] + (["-launcher", "fork"] if hydra else []) + list(launcher_args)
    cmd += ["-np", "2", sys.executable, str(SCRIPTS / script), *args]
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("PMI_", "PMIX_", "OMPI_COMM_WORLD", "MPI_LOCAL"))}
    child_env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                             os.environ.get("PYTHONPATH")])),
                     OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                     DEEPKIT_CPU_WORKERS="1", DEEPKIT_DIST_TIMEOUT="30")
    child_env.update(env or {})
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env,
                            cwd=str(REPO_ROOT))
    return result, time.monotonic() - start


# -- one process, no launcher ---------------------------------------------------------------

@pytest.fixture
def no_launcher(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("PMI_", "PMIX_", "OMPI_COMM_WORLD")):
            monkeypatch.delenv(name)
    if dist.is_initialized():
        pytest.skip("MPI was initialised in this test process")


def test_single_process_needs_no_launcher(no_launcher):
    assert (dist.rank(), dist.size(), dist.local_rank()) == (0, 1, 0)
    assert not dist.launched_under_mpi()
    a = np.arange(4.0)
    assert dist.allreduce_(a, average=True) is a
    np.testing.assert_array_equal(a, np.arange(4.0))
    arrays = [np.ones(3), np.zeros((2, 2), np.int32)]
    handle = dist.allreduce_many(arrays)
    assert handle.done() and handle.wait() == arrays
    assert dist.broadcast_(a) is a
    dist.barrier()
    dist.check_same_structure({"w": (2, 3)})
    assert dist.average_logs({"loss": 2.5, "acc": 1}) == {"acc": 1.0, "loss": 2.5}
    assert dist.is_initialized() is False  # nothing above needed MPI


def test_queued_allreduce_runs_on_the_communication_thread_in_order(no_launcher):
    """One process: the sum is the array itself, scaled; it waits for the writer before it."""
    a = nd.array(np.arange(4.0, dtype=np.float32))
    b = a * 3  # queued on a compute worker
    done = []
    dist.push_allreduce([b], scale=0.5,
                        on_done=lambda start, end: done.append(
                            (threading.current_thread().name, start <= end)))
    np.testing.assert_array_equal(b.asnumpy(), 1.5 * np.arange(4.0))
    assert len(done) == 1 and "comm" in done[0][0] and done[0][1]
    dist.push_allreduce([])  # nothing to do


def test_launcher_variables_give_rank_and_size(no_launcher, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "3")
    monkeypatch.setenv("PMI_SIZE", "8")
    monkeypatch.setenv("MPI_LOCALRANKID", "1")
    assert (dist.rank(), dist.size(), dist.local_rank()) == (3, 8, 1)
    assert dist.launched_under_mpi()


def test_bad_arguments_are_named(no_launcher):
    with pytest.raises(TypeError, match=r"allreduce_many: arrays\[1\] must be a numpy"):
        dist.allreduce_many([np.ones(2), [1.0, 2.0]])
    with pytest.raises(TypeError, match="dtype bool"):
        dist.allreduce_(np.ones(2, bool))
    readonly = np.ones(2)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        dist.allreduce_(readonly)
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\)"):
        dist.broadcast_(np.ones(2), root=1)
    with pytest.raises(TypeError, match="structure must be a dict"):
        dist.check_same_structure([("w", (2,))])


def test_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setattr(dist.mpi, "_timeout", None)
    monkeypatch.setenv("DEEPKIT_DIST_TIMEOUT", "12.5")
    assert dist.timeout() == 12.5
    monkeypatch.setenv("DEEPKIT_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="DEEPKIT_DIST_TIMEOUT must be a number"):
        dist.timeout()
    monkeypatch.delenv("DEEPKIT_DIST_TIMEOUT")
    assert dist.timeout() == 60.0


def test_without_mpi4py_the_error_names_the_extra(no_launcher, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # makes the import fail
    with pytest.raises(dist.DistUnavailableError, match=r"pip install 'deepkit\[dist\]'"):
        dist.init()
    with pytest.raises(ImportError,
                       match=r"kvstore.create\('dist_sync'\) needs MPI.*deepkit\[dist\]"):
        kvstore.create("dist_sync")
    assert not dist.is_initialized()


# -- two processes under mpirun ---------------------------------------------------------------

@needs_mpi
def test_collectives_and_dist_kvstore_on_two_ranks():
    result, _ = run_mpi("dist_checks.py", timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in ("ranks", "allreduce", "allreduce_many", "broadcast", "structure",
                 "average_logs", "kvstore dist_sync", "kvstore dist_sync_device"):
        for rank in (0, 1):
            assert f"PASS {name} rank {rank}" in result.stdout, output
    assert "DONE rank 0" in result.stdout and "DONE rank 1" in result.stdout, output


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("mode, limit", [("direct", 10), ("kvstore", 5)])
def test_a_dead_rank_fails_the_others_with_a_clear_error(mode, limit):
    if not _hydra():
        pytest.skip("needs MPICH's hydra launcher (-disable-auto-cleanup keeps rank 0 running)")
    result, seconds = run_mpi("dead_rank.py", mode, launcher_args=["-disable-auto-cleanup"],
                              env={"DEEPKIT_DIST_TIMEOUT": str(limit)}, timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "WAITING" in result.stdout, output
    assert "NOT REACHED" not in output
    assert "DistributedError on rank 0: allreduce" in result.stderr, output
    assert f"did not complete within {limit} s on rank 0 of 2" in result.stderr, output
    assert "ranks [1] did not join" in result.stderr, output
    assert "Aborting all ranks (MPI_Abort)" in result.stderr, output
    assert limit <= seconds < 60, (seconds, output)


# -- kvstore 'dist_async': the parameter server (a thread of rank 0) ---------------------------

@needs_mpi
def test_dist_async_is_asynchronous_and_exits_cleanly_on_two_ranks(tmp_path):
    """Rank 0 pushes and pulls while rank 1 sleeps 2 s and sees only its own updates (exact),
    in well under the sleep; after a barrier both ranks pull init - lr * (all pushes); each
    rank's pulls include its own pushes while both push at once; only rank 0 saves states;
    the script ends without closing the store and both ranks exit with 0."""
    result, seconds = run_mpi("async_kvstore.py", "checks", timeout=60,
                              env={"STATES_PATH": str(tmp_path / "async.states")})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in ("asynchrony", "read-your-writes", "states"):
        for rank in (0, 1):
            assert f"PASS {name} rank {rank}" in result.stdout, output
    assert "rank 0 did 5 push/pull cycles in" in result.stdout, output
    assert "DONE rank 0" in result.stdout and "DONE rank 1" in result.stdout, output
    assert seconds < 30, (seconds, output)


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("mode, rank, message", [
    ("server_dies", 1, "kvstore 'dist_async' pull of key 0 on rank 1 of 2: the parameter "
                       "server (rank 0) did not reply within 5 s"),
    ("worker_dies", 0, "kvstore 'dist_async' close on rank 0 of 2: the ranks [1] neither "
                       "closed the store nor sent anything to the parameter server within 5 s"),
])
def test_dist_async_a_dead_server_or_worker_fails_the_other_clearly(mode, rank, message):
    if not _hydra():
        pytest.skip("needs MPICH's hydra launcher (-disable-auto-cleanup keeps a rank running)")
    result, seconds = run_mpi("async_kvstore.py", mode, launcher_args=["-disable-auto-cleanup"],
                              env={"DEEPKIT_DIST_TIMEOUT": "5"}, timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "WAITING" in result.stdout, output
    assert "NOT REACHED" not in output
    assert f"DistributedError on rank {rank}: {message}" in result.stderr, output
    assert "Aborting all ranks (MPI_Abort)" in result.stderr, output
    assert 5 <= seconds < 30, (seconds, output)


@needs_mpi
def test_module_and_feedforward_fit_with_dist_async_on_two_ranks():
    """Each rank trains on its own data through the server; both learn the task and end
    with the server's final weights (the same on both ranks)."""
    result, seconds = run_mpi("async_fit.py", timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in ("module", "feedforward"):
        for rank in (0, 1):
            assert f"PASS {name} rank {rank}" in result.stdout, output
    assert seconds < 30, (seconds, output)


@needs_mpi
def test_module_fit_with_dist_async_alone_equals_local():
    """Without a launcher the store has one worker: the server applies the local SGD steps."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_COMM_WORLD", "MPI_LOCAL"))}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                       os.environ.get("PYTHONPATH")])),
               DEEPKIT_CPU_WORKERS="1", DEEPKIT_DIST_TIMEOUT="30")
    result = subprocess.run([sys.executable, str(SCRIPTS / "async_fit.py")], capture_output=True,
                            text=True, timeout=90, env=env, cwd=str(REPO_ROOT))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "PASS module one worker equals local rank 0" in result.stdout, output
