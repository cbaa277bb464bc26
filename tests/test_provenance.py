"""What every run records about the code and the machine behind its numbers."""

import re

import pytest
import torch

from mrdd.train.provenance import environment_record, git_record


def test_environment_names_the_cpu_model_not_just_the_device_type():
    record = environment_record(torch.device("cpu"))
    assert {"mrdd_version", "git_commit", "git_dirty", "torch", "device", "cpu_threads"} <= set(
        record
    )
    assert record["device"] == "cpu"
    assert record["device_name"] and record["device_name"] != "cpu"
    assert record["cpu_threads"] == torch.get_num_threads()


def test_git_record_is_a_commit_hash_inside_a_checkout():
    record = git_record()
    if record["git_commit"] is None:
        pytest.skip("the package is not inside a git checkout here")
    assert re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
    assert isinstance(record["git_dirty"], bool)
