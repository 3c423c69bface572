"""Every Keras dialect of the corpus normalises to Keras 3, builds the same model, and trains.

The corpus (``tests/corpus``) holds each layer family as Keras 3 and tf-keras wrote it, plus
hand-written Keras 2.2 / 2.0 JSON and YAML. Its manifest says what the *writing* library made of
each model, so a conversion that loses a layer, a shape or a parameter fails here.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.errors import ForbiddenModel, InvalidModel
from models.keras.dialects.convert import detect_dialect, normalize
from models.keras.inspection import inspect_model
from models.keras.model import build, checked_keras3_json, describe
from models.model_text import parse_model_text
from models.settings import Settings
from models.spec import JobCreate

CORPUS = Path(__file__).parents[2] / "corpus"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())
TRAINED_IN_GRAPHS = {"tf_keras2/attention.json", "keras2.2/nested.json", "keras2.2/cudnn_rnn.json"}
KERAS2_FILES = sorted(name for name, meta in MANIFEST.items() if meta["dialect"] != "keras3")
# A Keras 2 Lambda layer as Keras 2.2.4 wrote `Lambda(lambda x: x * 2)`: marshalled bytecode.
LAMBDA_LAYER = {
    "class_name": "Lambda",
    "config": {
        "name": "doubler",
        "trainable": True,
        "function": [
            "4wEAAAAAAAAAAQAAAAIAAABDAAAAcwgAAAB8AGQBFABTACkCTukCAAAAqQApAdoBeHIDAAAA",
            None,
            None,
        ],
        "function_type": "lambda",
        "output_shape": None,
        "output_shape_type": "raw",
        "arguments": {},
    },
}


def corpus_model(relative: str) -> dict[str, Any]:
    return parse_model_text((CORPUS / relative).read_text())


def _output_shape(layer: Any) -> Any:
    output = layer.output
    if isinstance(output, list | tuple):
        return [list(o.shape) for o in output]
    return list(output.shape)


def _random_arrays(model: Any, rows: int = 8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    x = [
        rng.integers(0, 10, size=(rows, *t.shape[1:])).astype("int32")
        if "int" in str(t.dtype)
        else rng.random((rows, *t.shape[1:]), dtype=np.float32)
        for t in model.inputs
    ]
    y = [rng.random((rows, *t.shape[1:]), dtype=np.float32) for t in model.outputs]
    return x, y


@pytest.mark.parametrize("relative", sorted(MANIFEST))
def test_corpus_model_converts_faithfully_and_trains(relative: str) -> None:
    import keras

    meta = MANIFEST[relative]
    raw = corpus_model(relative)
    original = copy.deepcopy(raw)
    normalized = normalize(raw)
    assert raw == original, "normalize must not change the JSON the user sent"
    assert normalized.dialect == meta["dialect"]

    keras.utils.set_random_seed(0)
    model = keras.models.model_from_json(json.dumps(normalized.model_json))
    differences = meta.get("differences", {})
    layers = {layer.name: layer for layer in model.layers}
    assert sorted(layers) == sorted(expected["name"] for expected in meta["layers"])
    if raw["class_name"] == "Sequential":
        assert [layer.name for layer in model.layers] == [e["name"] for e in meta["layers"]]
    for expected in meta["layers"]:
        layer = layers[expected["name"]]
        difference = differences.get(expected["name"], {}).get("params", 0)
        assert layer.count_params() == expected["params"] + difference, expected["name"]
        if expected["output_shape"] is not None:
            assert _output_shape(layer) == expected["output_shape"], expected["name"]
    total_difference = sum(d["params"] for d in differences.values())
    assert model.count_params() == meta["params"] + total_difference
    assert [list(t.shape) for t in model.inputs] == [i["shape"] for i in meta["inputs"]]
    assert [list(t.shape) for t in model.outputs] == meta["outputs"]

    x, y = _random_arrays(model)
    # Eager skips tracing a graph per model (4x faster here); a few train as the worker does.
    model.compile(optimizer="adam", loss="mse", run_eagerly=relative not in TRAINED_IN_GRAPHS)
    history = model.fit(
        x[0] if len(x) == 1 else x, y[0] if len(y) == 1 else y, epochs=1, batch_size=4, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        ("3.15.1", "keras3"),
        ("2.21.0", "tf.keras2"),
        ("2.15.0", "tf.keras2"),
        ("2.4.0", "tf.keras2"),
        ("2.2.4-tf", "tf.keras2"),
        ("2.3.1", "keras2.2"),
        ("2.2.4", "keras2.2"),
        ("2.1.6", "keras2.0"),
        ("2.0.8", "keras2.0"),
    ],
)
def test_dialect_is_read_from_the_keras_version(version: str, dialect: str) -> None:
    model = {"class_name": "Sequential", "config": {"layers": []}, "keras_version": version}
    assert detect_dialect(model) == dialect


def test_dialect_without_a_version_is_read_from_the_json_itself() -> None:
    keras3 = corpus_model("keras3/seed.json")
    assert "keras_version" not in keras3 and detect_dialect(keras3) == "keras3"
    for relative, dialect in [
        ("tf_keras2/multi_io.json", "tf.keras2"),
        ("keras2.2/functional.json", "keras2.2"),
    ]:
        model = {k: v for k, v in corpus_model(relative).items() if k != "keras_version"}
        assert detect_dialect(model) == dialect
    bare = corpus_model("keras2.0/sequential_list.json")
    assert detect_dialect({"class_name": "Sequential", "config": bare["config"]}) == "keras2.0"
    with pytest.raises(InvalidModel, match="Keras 1"):
        detect_dialect({"class_name": "Sequential", "config": {}, "keras_version": "1.2.2"})


def test_warnings_name_what_changed() -> None:
    model = corpus_model("keras2.2/seed.json")
    first = model["config"]["layers"][0]["config"]
    del first["batch_input_shape"]
    first["input_dim"] = 20
    first["fancy_option"] = 3
    normalized = normalize(model)
    assert normalized.model_json["config"]["layers"][0]["config"]["batch_shape"] == [None, 20]
    assert any("`input_dim` is deprecated" in w and "InputLayer" in w for w in normalized.warnings)
    assert any(
        "`fancy_option`=3 was dropped" in w and "'dense_1'" in w for w in normalized.warnings
    )
    assert normalize(corpus_model("keras3/seed.json")).warnings == []


def test_yaml_of_keras2_reads_as_its_json() -> None:
    from_yaml = corpus_model("yaml/keras22_seed.yaml")
    assert from_yaml == corpus_model("keras2.2/seed.json")


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('!!python/object/apply:os.system ["echo pwned"]', "tag"),
        ("class_name: Sequential\nconfig: !!python/name:os.system", "tag"),
        ("class_name: !!binary aGVsbG8=\nconfig: {}", "JSON cannot hold"),
        ("class_name: Sequential\nconfig: {when: 2001-12-14}", "JSON cannot hold"),
        ("class_name: Sequential\nconfig: {size: .nan}", "JSON cannot hold"),
        ("- just\n- a list", "but not JSON"),
        ('{"class_name": "Sequential", "config": ', "but not JSON"),
        (
            "a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            + "".join(
                f"{chr(c)}: &{chr(c)} [*{chr(c - 1)}, *{chr(c - 1)}, *{chr(c - 1)}, *{chr(c - 1)}, "
                f"*{chr(c - 1)}, *{chr(c - 1)}, *{chr(c - 1)}, *{chr(c - 1)}, *{chr(c - 1)}]\n"
                for c in range(ord("c"), ord("m"))
            ),
            "anchors and aliases",
        ),
    ],
    ids=[
        "python-object",
        "python-name",
        "binary",
        "timestamp",
        "nan",
        "list",
        "cut-json",
        "laughs",
    ],
)
def test_hostile_yaml_is_invalid_model(text: str, phrase: str) -> None:
    start = time.monotonic()
    with pytest.raises(InvalidModel, match=phrase):
        parse_model_text(text)
    assert time.monotonic() - start < 1


def test_a_job_keeps_the_model_as_sent() -> None:
    text = (CORPUS / "yaml/keras22_seed.yaml").read_text()
    spec = JobCreate.model_validate({"model": text, "data": {"train": {"x": [[0.0] * 20]}}})
    assert spec.model == corpus_model("keras2.2/seed.json")
    with pytest.raises(ValueError, match="tag"):
        JobCreate.model_validate({"model": "!!python/object/apply:os.getcwd []", "data": {}})


GARBAGE = [
    {"class_name": "Sequential", "config": {"layers": [None]}},
    {"class_name": "Sequential", "config": {"layers": "dense"}},
    {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": []}]},
    {"class_name": "Sequential", "config": [{"class_name": 7, "config": {}}]},
    {
        "class_name": "Sequential",
        "config": [{"class_name": "Dense", "config": {"batch_input_shape": 20}}],
    },
    {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"input_dim": -4}}]},
    {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"dtype": [1]}}]},
    {"class_name": "Model", "config": []},
    {"class_name": "Model", "config": {"layers": [{"class_name": "Dense", "config": {}}]}},
    {"class_name": "Model", "config": {"layers": [], "input_layers": 3, "output_layers": []}},
    {
        "class_name": "Model",
        "config": {
            "layers": [
                {
                    "name": "d",
                    "class_name": "Dense",
                    "config": {},
                    "inbound_nodes": [[["nowhere", 0, 0, {}]]],
                }
            ],
            "input_layers": [["d", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    },
    {
        "class_name": "Model",
        "config": {
            "layers": [
                {
                    "name": "d",
                    "class_name": "Dense",
                    "config": {},
                    "inbound_nodes": [[["d", "x", 0, []]]],
                }
            ],
            "input_layers": [["d", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    },
    {
        "class_name": "Functional",
        "config": {"layers": [{"name": "m", "class_name": "Model", "config": 5}]},
    },
    {
        "class_name": "Sequential",
        "config": [{"class_name": "BatchNormalization", "config": {"axis": [1, 2]}}],
    },
    {
        "class_name": "Sequential",
        "config": [{"class_name": "LSTM", "config": {"time_major": True}}],
    },
    {"class_name": "Sequential", "config": [{"class_name": "Merge", "config": {"mode": "xor"}}]},
]


@pytest.mark.parametrize("model", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_invalid_model_not_a_crash(model: dict[str, Any]) -> None:
    with pytest.raises(InvalidModel):
        normalize({**model, "keras_version": "2.2.4"})


def _mutations(value: Any, rng: random.Random) -> Any:
    """The JSON with one random value replaced by an odd one."""
    odd = [None, 0, -1, 2**70, "", "x", [], {}, [[["x", 0, 0, {}]]], {"class_name": None}, True]
    paths: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else []
        )
        for key, child in items:
            paths.append((node, key))
            stack.append(child)
    node, key = rng.choice(paths)
    node[key] = rng.choice(odd)
    return value


@pytest.mark.parametrize("relative", KERAS2_FILES)
def test_mutated_keras2_json_never_crashes(relative: str) -> None:
    rng = random.Random(relative)
    for _ in range(40):
        model = _mutations(corpus_model(relative), rng)
        with contextlib.suppress(InvalidModel):  # any other exception fails the test
            normalize(model)


def test_lambda_in_keras2_json_is_forbidden_and_named() -> None:
    model = corpus_model("keras2.2/seed.json")
    model["config"]["layers"].insert(1, LAMBDA_LAYER)
    with pytest.raises(ForbiddenModel, match=r"'doubler'.*Lambda"):
        checked_keras3_json(model, Settings())


def test_legacy_merge_with_code_is_forbidden() -> None:
    model = corpus_model("keras2.0/functional_merge.json")
    merge = model["config"]["layers"][4]["config"]
    merge.update(mode=["4wEAAAAAAAAAAQ", None, None], mode_type="lambda")
    with pytest.raises(ForbiddenModel, match=r"'merge_1'.*Python code"):
        checked_keras3_json(model, Settings())


def test_tf_op_layers_are_named_with_what_to_use() -> None:
    model = corpus_model("tf_keras2/merge.json")
    layer = model["config"]["layers"][2]
    layer.update(class_name="TFOpLambda", config={"name": "tf.math.add", "function": "math.add"})
    with pytest.raises(InvalidModel, match=r"'tf\.math\.add'.*Add"):
        checked_keras3_json(model, Settings())


def test_the_wider_first_check_is_not_the_last() -> None:
    # A Keras 3 JSON passes through normalize as it is; the names allowed only for conversion
    # (a tf_keras module, Keras 2 classes) must still be refused in it.
    model = corpus_model("keras3/seed.json")
    model["config"]["layers"][1]["module"] = "tf_keras.src.anything"
    with pytest.raises(ForbiddenModel, match=r"tf_keras\.src\.anything"):
        checked_keras3_json(model, Settings())
    model = corpus_model("keras3/seed.json")
    model["config"]["layers"][1]["class_name"] = "CuDNNLSTM"
    with pytest.raises(ForbiddenModel, match="CuDNNLSTM"):
        checked_keras3_json(model, Settings())


def test_build_describe_and_inspect_read_every_dialect(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    model_json = corpus_model("tf_keras2/seed.json")
    assert build(model_json, settings).count_params() == 5569
    assert describe(model_json, settings).count_params() == 5569
    answer = inspect_model(model_json, settings)
    assert answer["dialect"] == "tf.keras2"
    assert any("batch_input_shape" in w for w in answer["warnings"])
    assert answer["params"]["total"] == 5569
    assert answer["model_json"]["class_name"] == "Sequential"
    assert inspect_model(corpus_model("keras3/seed.json"), settings)["dialect"] == "keras3"
