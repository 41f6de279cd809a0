"""Killed saves never damage a model file; what they leave behind is removed; writes are synced."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit_engine import fileio

HELPER = pathlib.Path(__file__).resolve().parents[1] / "fuzz" / "kill_saver.py"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill -9 test forks writers")
@pytest.mark.parametrize("mode, seed", [("save", 0), ("checkpoint", 1)])
def test_kill_9_during_saves_leaves_a_loadable_file_and_no_leftovers(tmp_path, mode, seed):
    out = subprocess.run([sys.executable, str(HELPER), str(tmp_path), mode, "12", str(seed)],
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kills"] == 12 and result["failures"] == []
    assert result["loads"] == 12
    assert result["remaining"] == []


def _dead_pid():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_next_save_removes_leftovers_of_dead_writers_only(tmp_path):
    target = tmp_path / "m.h5"
    dead = tmp_path / f".tmp-{_dead_pid()}-0badc0de-m.h5"
    mine = tmp_path / f".tmp-{os.getpid()}-12345678-m.h5"
    other = tmp_path / f".tmp-{_dead_pid()}-0badc0de-other.h5"
    for p in (dead, mine, other):
        p.write_bytes(b"partial")
    model = deepkit.Sequential([L.Dense(2, input_shape=(3,))])
    model.save(target)
    assert not dead.exists() and mine.exists() and other.exists()
    assert fileio.remove_leftovers(tmp_path / "other.h5") == [str(other)]


def test_atomic_writes_fsync_the_file_and_the_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                      else fd)
        return real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    with fileio.atomic_path(tmp_path / "a.bin") as tmp:
        pathlib.Path(tmp).write_bytes(b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert len(synced) == 2
    if isinstance(synced[0], str):
        assert os.path.basename(synced[0]).startswith(".tmp-") and synced[1] == str(tmp_path)


def test_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(tmp_path / "a.bin") as tmp:
            pathlib.Path(tmp).write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    np.testing.assert_equal(len(os.listdir(tmp_path)), 0)
