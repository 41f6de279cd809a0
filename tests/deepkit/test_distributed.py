"""deepkit.distributed: ``fit`` under ``mpirun -np 2`` equals one process, resumes, fails fast."""
import pathlib
import subprocess
import sys

import numpy as np

from deepkit import distributed
from tests.deepkit_engine.test_dist_mpi import needs_mpi, run_mpi

SCRIPT = pathlib.Path(__file__).parent / "mpi_scripts" / "fit_ranks.py"


def _one_process(*args):
    subprocess.run([sys.executable, str(SCRIPT), *args], check=True, timeout=120,
                   cwd=str(SCRIPT.parents[3]), capture_output=True)


def _two_ranks(*args, timeout=90):
    result, seconds = run_mpi(str(SCRIPT), *args, timeout=timeout)
    return result, seconds


def _weights(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_without_a_launcher_everything_is_one_process():
    assert distributed.size() == 1 and distributed.rank() == 0 and distributed.is_chief()
    assert not distributed.active()
    assert distributed.average_floats({"loss": 2.0}, 10) == {"loss": 2.0}


@needs_mpi
def test_two_ranks_train_as_one_process_with_the_same_global_batch(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    _one_process("fit", str(single))
    result, _ = _two_ranks("fit", str(double))
    assert result.returncode == 0, result.stderr[-3000:]
    reference = _weights(single / "weights_0_of_1.npz")
    for rank in (0, 1):
        got = _weights(double / f"weights_{rank}_of_2.npz")
        for name, value in reference.items():
            np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=0, err_msg=name)
    # progress files come from rank 0 only
    assert (double / "log_rank0.csv").exists() and not (double / "log_rank1.csv").exists()


@needs_mpi
def test_ranks_reading_their_own_parts_train_on_the_joined_batches(tmp_path):
    """MXNet's way: NDArrayIter(num_parts=2, part_index=rank); a global batch is both parts'."""
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    _one_process("parts", str(single))
    result, _ = _two_ranks("parts", str(double))
    assert result.returncode == 0, result.stderr[-3000:]
    reference = _weights(single / "weights_0_of_1.npz")
    for rank in (0, 1):
        got = _weights(double / f"weights_{rank}_of_2.npz")
        for name, value in reference.items():
            if name != "loss":  # evaluate runs on each rank's own rows, averaged
                np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=0, err_msg=name)


@needs_mpi
def test_module_with_dist_sync_kvstore_trains_as_mxnet(tmp_path):
    """MXNet's distributed Module: each rank its own part, rescale 1 / (batch * workers)."""
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    _one_process("module", str(single))
    result, _ = _two_ranks("module", str(double))
    assert result.returncode == 0, result.stderr[-3000:]
    reference = _weights(single / "weights_0_of_1.npz")
    for rank in (0, 1):
        got = _weights(double / f"weights_{rank}_of_2.npz")
        for name, value in reference.items():
            np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=0, err_msg=name)


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
    expected = _weights(straight / "weights_0_of_2.npz")
    for rank in (0, 1):
        got = _weights(resumed / f"weights_{rank}_of_2.npz")
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, atol=1e-7, rtol=0, err_msg=name)


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
