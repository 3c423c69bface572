"""Array references of a job → one array per model input or output, or a 422 that says why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from models.data.references import align, inline_array, is_columns, leaf_shape, load_leaf, unwrap
from models.errors import DatasetMismatch

INPUTS = ["features", "extra"]
SHAPES = {"a": (10, 3), "b": (10, 2), "c1": (10,), "c2": (10,), "c3": (10,), "short": (9,)}


@contextmanager
def mismatch(*fragments: str) -> Iterator[None]:
    """Expect a DatasetMismatch (a 422) whose message holds every fragment."""
    with pytest.raises(DatasetMismatch) as caught:
        yield
    error = caught.value
    assert error.status_code == 422
    assert error.code == "dataset_mismatch"
    for fragment in fragments:
        assert fragment in error.message, error.message


# --- align: with a dataset ---------------------------------------------------------------------


def test_a_name_for_a_single_input() -> None:
    assert align("x_train", ["dense_input"], "data.train.x", inline=False) == ["x_train"]


def test_a_list_of_names_in_model_order() -> None:
    assert align(["f", "e"], INPUTS, "data.train.x", inline=False) == ["f", "e"]


def test_an_object_keyed_by_layer_name_comes_back_in_model_order() -> None:
    ref = {"extra": "e", "features": "f"}
    assert align(ref, INPUTS, "data.train.x", inline=False) == ["f", "e"]


def test_columns_are_one_leaf() -> None:
    columns = {"columns": ["c1", "c2"]}
    assert is_columns(columns)
    assert not is_columns({"columns": ["c1"], "extra": "e"})
    assert align(columns, ["dense_input"], "data.train.x", inline=False) == [columns]
    assert align([columns, "b"], INPUTS, "data.train.x", inline=False) == [columns, "b"]
    assert align({"features": columns, "extra": "b"}, INPUTS, "d.x", inline=False) == [
        columns,
        "b",
    ]


def test_one_name_for_several_inputs() -> None:
    with mismatch("`data.train.x` names one array", "2 inputs (['features', 'extra'])"):
        align("x_train", INPUTS, "data.train.x", inline=False)


def test_a_list_of_the_wrong_count() -> None:
    with mismatch("`data.test.y` lists 3 arrays", "2 outputs (['label', 'category'])"):
        align(["a", "b", "c"], ["label", "category"], "data.test.y", inline=False)


def test_an_object_with_missing_and_unknown_keys() -> None:
    with mismatch("missing ['extra']", "unknown ['extras']", "keyed by layer name"):
        align({"features": "f", "extras": "e"}, INPUTS, "data.train.x", inline=False)


@pytest.mark.parametrize("ref", [3, [], [1.0, 2.0], ["a", 3], None])
def test_anything_else_with_a_dataset(ref: Any) -> None:
    with mismatch("`data.train.x` must name arrays of the dataset", "Received:"):
        align(ref, ["dense_input"], "data.train.x", inline=False)


# --- align: inline -----------------------------------------------------------------------------


def test_inline_array_for_a_single_input() -> None:
    rows = [[0.1, 0.2], [0.3, 0.4]]
    assert align(rows, ["dense_input"], "data.train.x", inline=True) == [rows]


def test_inline_arrays_keyed_by_layer_name() -> None:
    ref = {"extra": [[1.0]], "features": [[2.0]]}
    assert align(ref, INPUTS, "data.train.x", inline=True) == [[[2.0]], [[1.0]]]


@pytest.mark.parametrize("ref", ["x_train", {"columns": ["c1", "c2"]}])
def test_a_name_without_a_dataset(ref: Any) -> None:
    with mismatch("names an array", "has no `dataset`", '"dataset": "<dataset id>"'):
        align(ref, ["dense_input"], "data.train.x", inline=True)


def test_inline_arrays_for_several_inputs_need_names() -> None:
    with mismatch("must be an object keyed by layer name", "{'features': [[...]], ...}"):
        align([[[0.1]], [[0.2]]], INPUTS, "data.train.x", inline=True)


# --- inline_array ------------------------------------------------------------------------------


def test_inline_floats_become_float32() -> None:
    array = inline_array([[0.5, 1.5], [2.5, 3.5]], "x")
    assert array.dtype == np.float32
    assert array.shape == (2, 2)


def test_inline_integers_and_booleans_keep_their_kind() -> None:
    assert inline_array([0, 1, 1], "y").dtype.kind == "i"
    assert inline_array([True, False], "y").dtype.kind == "b"


def test_ragged_inline_array() -> None:
    with mismatch("`data.train.x` is not a rectangular array", "same length"):
        inline_array([[1.0, 2.0], [3.0]], "data.train.x")


@pytest.mark.parametrize("value", [[["a", "b"]], [1, "a"], 3.0, {"x": 1}])
def test_inline_array_of_anything_but_numbers(value: Any) -> None:
    with mismatch("`data.train.y` must be a (nested) list of numbers"):
        inline_array(value, "data.train.y")


# --- leaf_shape --------------------------------------------------------------------------------


def test_shape_of_an_inline_leaf() -> None:
    assert leaf_shape([[1, 2, 3], [4, 5, 6]], "x", None) == (2, 3)


def test_shape_of_a_named_array() -> None:
    assert leaf_shape("a", "data.train.x", SHAPES) == (10, 3)


def test_missing_array_lists_the_available_names() -> None:
    with mismatch("names array 'x_train'", "which the dataset does not have", str(sorted(SHAPES))):
        leaf_shape("x_train", "data.train.x", SHAPES)


def test_shape_of_stacked_columns() -> None:
    assert leaf_shape({"columns": ["c1", "c2", "c3"]}, "data.train.x", SHAPES) == (10, 3)


@pytest.mark.parametrize(
    ("columns", "fragments"),
    [
        (["c1", "short"], ["1-D arrays of equal length", "'short': (9,)"]),
        (["c1", "a"], ["1-D arrays of equal length", "'a': (10, 3)"]),
        ([], ["`data.train.x.columns` must be a non-empty list"]),
        ("c1", ["`data.train.x.columns` must be a non-empty list"]),
        (["c1", "nope"], ["names array 'nope'"]),
    ],
)
def test_columns_that_do_not_stack(columns: Any, fragments: list[str]) -> None:
    with mismatch(*fragments):
        leaf_shape({"columns": columns}, "data.train.x", SHAPES)


# --- load_leaf and unwrap ----------------------------------------------------------------------


def dataset() -> dict[str, np.ndarray]:
    return {
        "a": np.arange(6.0).reshape(3, 2),
        "c1": np.array([1.0, 2.0, 3.0]),
        "c2": np.array([10.0, 20.0, 30.0]),
    }


def test_load_an_inline_leaf() -> None:
    np.testing.assert_array_equal(load_leaf([[1.0, 2.0]], "x", None), [[1.0, 2.0]])


def test_load_a_named_array() -> None:
    np.testing.assert_array_equal(load_leaf("a", "x", dataset().__getitem__), dataset()["a"])


def test_load_columns_stacks_them_in_order() -> None:
    array = load_leaf({"columns": ["c2", "c1"]}, "x", dataset().__getitem__)
    np.testing.assert_array_equal(array, [[10.0, 1.0], [20.0, 2.0], [30.0, 3.0]])


def test_unwrap_gives_keras_one_array_or_the_list() -> None:
    one, two = np.zeros(2), np.ones(2)
    assert unwrap([one]) is one
    assert unwrap([one, two]) == [one, two]
