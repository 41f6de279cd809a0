"""Global settings: the image data format from the settings file and the environment."""
import json
import os
import subprocess
import sys

import pytest

import deepkit

CODE = "import deepkit; print(deepkit.backend.image_data_format())"


def _format_in_fresh_process(home, env_value=None):
    env = {k: v for k, v in os.environ.items() if k != "DEEPKIT_IMAGE_DATA_FORMAT"}
    env["DEEPKIT_HOME"] = str(home)
    if env_value is not None:
        env["DEEPKIT_IMAGE_DATA_FORMAT"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          env=env, timeout=120)


def test_default_is_channels_first(tmp_path):
    assert _format_in_fresh_process(tmp_path).stdout.strip() == "channels_first"


def test_the_settings_file_sets_it(tmp_path):
    (tmp_path / "deepkit.json").write_text(json.dumps({"image_data_format": "channels_last"}))
    assert _format_in_fresh_process(tmp_path).stdout.strip() == "channels_last"


def test_the_environment_overrides_the_file(tmp_path):
    (tmp_path / "deepkit.json").write_text(json.dumps({"image_data_format": "channels_last"}))
    result = _format_in_fresh_process(tmp_path, "channels_first")
    assert result.stdout.strip() == "channels_first"


def test_a_bad_environment_value_is_refused_by_name(tmp_path):
    result = _format_in_fresh_process(tmp_path, "nhwc")
    assert result.returncode != 0 and "DEEPKIT_IMAGE_DATA_FORMAT" in result.stderr


def test_a_damaged_settings_file_is_ignored_with_a_warning(tmp_path):
    (tmp_path / "deepkit.json").write_text("{not json")
    result = _format_in_fresh_process(tmp_path)
    assert result.stdout.strip() == "channels_first" and "deepkit.json" in result.stderr


def test_set_image_data_format_refuses_other_values():
    with pytest.raises(ValueError, match="channels_first.*channels_last"):
        deepkit.backend.set_image_data_format("NHWC")
