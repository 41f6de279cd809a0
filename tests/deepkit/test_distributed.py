"""deepkit.distributed: ``fit`` under ``mpirun -np 2`` equals one process, resumes, fails fast."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from deepkit import distributed
from deepkit_engine import threads
from tests.deepkit_engine.test_dist_mpi import needs_mpi, run_mpi

SCRIPT = pathlib.Path(__file__).parent / "mpi_scripts" / "fit_ranks.py"


def _one_process(*args):
    subprocess.run([sys.executable, str(SCRIPT), *args], check=True, timeout=120,
                   cwd=str(SCRIPT.parents[3]), capture_output=True)


def _two_ranks(*args, timeout=90, env=None):
    result, seconds = run_mpi(str(SCRIPT), *args, timeout=timeout, env=env)
    return result, seconds


def _weights(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_without_a_launcher_everything_is_one_process():
    assert distributed.size() == 1 and distributed.rank() == 0 and distributed.is_chief()
    assert not distributed.active()
    assert distributed.average_floats({"loss": 2.0}, 10) == {"loss": 2.0}


def _one_and_two_ranks(tmp_path, mode, env=None):
    """Run ``mode`` in one process and on two ranks; returns (reference weights, out dir)."""
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    _one_process(mode, str(single))
    result, _ = _two_ranks(mode, str(double), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return _weights(single / "weights_0_of_1.npz"), double


def _assert_every_rank_has(expected, folder, atol, skip=()):
    for rank in (0, 1):
        got = _weights(folder / f"weights_{rank}_of_2.npz")
        for name, value in expected.items():
            if name not in skip:
                np.testing.assert_allclose(got[name], value, atol=atol, rtol=0, err_msg=name)


@needs_mpi
def test_two_ranks_train_as_one_process_with_the_same_global_batch(tmp_path):
    reference, double = _one_and_two_ranks(tmp_path, "fit")
    _assert_every_rank_has(reference, double, 1e-5)
    # progress files come from rank 0 only
    assert (double / "log_rank0.csv").exists() and not (double / "log_rank1.csv").exists()


@needs_mpi
def test_gradient_buckets_start_while_backward_still_runs(tmp_path):
    """Bucket k's all-reduce starts once its piece of backward is done, not after backward.

    Two buckets (output layer, hidden layer): the backward pass is pushed in two
    pieces; the monitor holds the second piece until the first bucket's exchange has
    started on the communication thread, which only happens when that exchange does
    not wait for the whole backward pass. The weights still equal one process.
    """
    reference, double = _one_and_two_ranks(tmp_path, "buckets")
    _assert_every_rank_has(reference, double, 1e-5)
    for rank in (0, 1):
        record = json.loads((double / f"events_{rank}.json").read_text())
        assert record["pieces"] == 2
        assert record["groups"] == [["dense_1_bias", "dense_1_weight"],
                                    ["dense_bias", "dense_weight"]]
        (first, thread), (second, held) = record["events"]
        assert first == "allreduce started" and "comm" in thread
        assert second == "last backward piece ran" and held is True


@needs_mpi
@pytest.mark.parametrize("bucket_bytes", [None, 200])
def test_synchronized_batchnorm_on_two_ranks_trains_as_one_process(tmp_path, bucket_bytes):
    """Global batch statistics over the ranks; a rank without rows still joins the exchanges.

    With buckets of 200 bytes the backward pass runs in pieces, the statistics'
    exchange of SyncBatchNorm's backward in one of them, among the buckets' exchanges.
    """
    env = {"FIT_BUCKET_BYTES": str(bucket_bytes)} if bucket_bytes else None
    reference, double = _one_and_two_ranks(tmp_path, "syncbn", env)
    _assert_every_rank_has(reference, double, 1e-5)


@needs_mpi
def test_ranks_reading_their_own_parts_train_on_the_joined_batches(tmp_path):
    """MXNet's way: NDArrayIter(num_parts=2, part_index=rank); a global batch is both parts'."""
    reference, double = _one_and_two_ranks(tmp_path, "parts")
    # (the loss is evaluated on each rank's own rows and averaged: not the same number)
    _assert_every_rank_has(reference, double, 1e-5, skip=("loss",))


@needs_mpi
def test_module_with_dist_sync_kvstore_trains_as_mxnet(tmp_path):
    """MXNet's distributed Module: each rank its own part, rescale 1 / (batch * workers)."""
    reference, double = _one_and_two_ranks(tmp_path, "module")
    _assert_every_rank_has(reference, double, 1e-5)


@needs_mpi
def test_two_ranks_resume_exactly_from_the_backup_rank_0_wrote(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir()
    resumed.mkdir()
    result, _ = _two_ranks("backup", str(straight), "2")
    assert result.returncode == 0, result.stderr[-3000:]
    result, _ = _two_ranks("backup", str(resumed), "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (resumed / "backup").is_dir()
    result, _ = _two_ranks("backup", str(resumed), "2")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_every_rank_has(_weights(straight / "weights_0_of_2.npz"), resumed, 1e-7)


@needs_mpi
def test_a_dead_rank_ends_the_run_with_an_error_within_a_minute(tmp_path):
    result, seconds = _two_ranks("kill", str(tmp_path), timeout=90)
    assert result.returncode != 0
    assert seconds < 60
    assert not (tmp_path / "weights_0_of_2.npz").exists()


@needs_mpi
def test_ranks_with_different_models_are_refused_naming_the_parameters(tmp_path):
    result, _ = _two_ranks("mismatch", str(tmp_path))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "dense_weight" in output and "dense_bias" in output
    assert not list(tmp_path.glob("weights_*"))


def test_overlap_is_chosen_by_the_cores_of_each_process_unless_set(monkeypatch):
    monkeypatch.setattr(distributed, "overlap_backward", None)
    monkeypatch.setattr(threads, "cpu_cores", lambda: 2)
    monkeypatch.setattr(threads, "local_processes", lambda: 2)
    assert not distributed.overlaps_backward()  # one core each: MPI would spin on it
    monkeypatch.setattr(threads, "local_processes", lambda: 1)
    assert distributed.overlaps_backward()
    monkeypatch.setattr(distributed, "overlap_backward", False)
    assert not distributed.overlaps_backward()
    monkeypatch.setattr(distributed, "overlap_backward", True)
    monkeypatch.setattr(threads, "local_processes", lambda: 2)
    assert distributed.overlaps_backward()
