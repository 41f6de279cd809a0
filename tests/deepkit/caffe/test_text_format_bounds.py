"""The prototxt parser's bounds: nesting, number size, memory, and the unknown-field report."""
import tracemalloc

import pytest

from deepkit.caffe import text_format
from deepkit.caffe.reader import CaffeFormatError, read_prototxt

NET = ('name: "n"\ninput: "data"\ninput_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1\n'
       'layer { name: "r" type: "ReLU" bottom: "data" top: "y" }\n')


@pytest.mark.parametrize("opening", ["layer { ", "unknown_block { ", "layer { x < "])
def test_deep_nesting_is_a_caffe_format_error_with_line_and_column(opening):
    text = NET + opening * 2000
    with pytest.raises(CaffeFormatError, match="nested more than 100 levels") as err:
        read_prototxt(text)
    assert err.value.line == 5 and err.value.column > 1


def test_nesting_within_the_bound_still_parses():
    text = NET + "layer { name: \"u\" type: \"ReLU\" " + "fork_param { " * 50 + "}" * 50 + " }\n"
    assert [layer.name for layer in read_prototxt(text).layer] == ["input", "r", "u"]


@pytest.mark.parametrize("literal", ["9" * 5000, "0x" + "f" * 5000, "1" * 65 + ".5"])
def test_huge_number_literals_are_refused(literal):
    with pytest.raises(CaffeFormatError, match="at most 64 characters") as err:
        read_prototxt(NET + f"layer {{ name: \"x\" type: \"ReLU\" top: \"x\" "
                            f"some_param {{ v: {literal} }} }}\n")
    assert err.value.line == 5


def test_input_dim_out_of_range_keeps_its_message():
    with pytest.raises(CaffeFormatError, match="out of range"):
        read_prototxt(NET + "input_dim: 99999999999\n")


@pytest.mark.parametrize("body", ["a" * 2_000_000, "\\n" * 50_000, "\\101" * 30_000,
                                  "\n" * 300_000])
def test_memory_stays_a_small_multiple_of_the_input(body):
    if body.startswith("\n"):
        text = NET + body
    else:
        text = NET + f'layer {{ name: "big" type: "ReLU" note_param {{ s: "{body}" }} }}\n'
    tracemalloc.start()
    try:
        read_prototxt(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * len(text), (peak, len(text))


def test_repeated_unknown_fields_give_one_summarising_line():
    text = NET + "layer { name: \"u\" type: \"ReLU\" " + "fork_value: 1 " * 20000 + "}\n"
    net = read_prototxt(text)
    report = net.meta["unknown_fields"]
    assert len(report) < 30
    summary = [line for line in report if "fork_value" in line and "more" in line]
    assert len(summary) >= 1
    counted = sum(int(w) for line in summary for w in line.replace(";", " ").split()
                  if w.isdigit() and int(w) > 100)
    assert counted >= 19000
    assert text_format.MAX_UNKNOWN_RECORDED <= 1000
