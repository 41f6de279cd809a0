"""Property-based fuzzing (hypothesis, a few seconds each): hostile input gives clean errors only.

The same targets run for minutes in ``python -m tests.fuzz.campaign``.
"""
import random

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.fuzz import targets  # noqa: E402

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

_token_lists = st.lists(st.sampled_from(targets.PROTOTXT_TOKENS), max_size=60)


@FAST
@given(tokens=_token_lists, cut=st.integers(0, len(targets.SEED_PROTOTXT)))
def test_prototxt_parser_gives_a_net_or_a_caffe_format_error(tokens, cut):
    text = targets.SEED_PROTOTXT[:cut] + " ".join(tokens) + targets.SEED_PROTOTXT[cut:]
    assert targets.check_prototxt(text) in ("ok", "CaffeFormatError")


@FAST
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_prototxt_parser_survives_arbitrary_text(text):
    assert targets.check_prototxt(text) in ("ok", "CaffeFormatError")


_CAFFEMODEL = targets.seed_caffemodel()


@FAST
@given(seed=st.integers(0, 2 ** 32 - 1), edits=st.integers(1, 12))
def test_caffemodel_reader_gives_a_net_or_a_caffe_format_error(seed, edits):
    data = targets.mutate(_CAFFEMODEL, edits, random.Random(seed))
    assert targets.check_caffemodel(data) in ("ok", "CaffeFormatError")


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    return targets.seed_model_file(str(tmp_path_factory.mktemp("seed")))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 32 - 1), edits=st.integers(1, 8))
def test_model_file_loader_gives_a_model_or_a_deepkit_error(model_bytes, tmp_path, seed, edits):
    data = targets.mutate(model_bytes, edits, random.Random(seed))
    assert targets.check_model_file(data, str(tmp_path)) in ("ok", "FileFormatError",
                                                             "DeepkitError")


def test_the_campaign_script_runs(tmp_path, capsys):
    from tests.fuzz import campaign
    assert campaign.main(["--target", "prototxt", "--seconds", "0.5", "--out",
                          str(tmp_path)]) == 0
    assert "prototxt:" in capsys.readouterr().out
