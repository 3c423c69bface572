"""Model JSON typed by hand: bare class names and unnamed layers build what Keras would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.errors import ForbiddenModel
from models.keras.dialects.bare import fill_bare_classes
from models.keras.inspection import inspect_model
from models.keras.model import build
from models.settings import Settings

CORPUS = Path(__file__).parents[2] / "corpus"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())
KERAS3_FILES = sorted(name for name, meta in MANIFEST.items() if meta["dialect"] == "keras3")
# The issue's example, as a curl user types it: Keras' class names, batch_shape, no modules.
HAND_TYPED = {
    "class_name": "Sequential",
    "config": {
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 8]}},
            {"class_name": "Dense", "config": {"units": 16, "activation": "relu"}},
            {"class_name": "Dense", "config": {"units": 1}},
        ]
    },
}


def _without_modules(value: Any) -> Any:
    """The JSON as a hand would write it: no ``module`` nor ``registered_name`` anywhere."""
    if isinstance(value, dict):
        return {
            key: _without_modules(child)
            for key, child in value.items()
            if key not in ("module", "registered_name")
        }
    if isinstance(value, list):
        return [_without_modules(child) for child in value]
    return value


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


def test_the_hand_typed_model_builds_with_keras_names(settings: Settings) -> None:
    model = build(HAND_TYPED, settings)
    assert model.count_params() == 8 * 16 + 16 + 16 + 1
    assert [layer.name for layer in model.layers] == ["dense", "dense_1"]
    report = inspect_model(HAND_TYPED, settings)
    assert report["dialect"] == "keras3"
    assert any("Dense, InputLayer, Sequential" in warning for warning in report["warnings"])
    assert any("input_layer, dense, dense_1" in warning for warning in report["warnings"])


@pytest.mark.parametrize("relative", KERAS3_FILES)
def test_every_keras3_corpus_model_builds_without_its_modules(
    relative: str, settings: Settings
) -> None:
    written = json.loads((CORPUS / relative).read_text())
    typed = _without_modules(written)
    assert build(typed, settings).count_params() == MANIFEST[relative]["params"]


def test_written_json_is_left_as_it_is() -> None:
    written = json.loads((CORPUS / "keras3" / "dense.json").read_text())
    assert fill_bare_classes(written) == (written, [])


def test_the_place_decides_the_kind_of_class() -> None:
    # Identity is both a layer and an initializer: under kernel_initializer it is the latter.
    typed = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 3]}},
                {
                    "class_name": "Dense",
                    "config": {
                        "name": "d",
                        "units": 3,
                        "kernel_initializer": {"class_name": "Identity", "config": {}},
                    },
                },
                {"class_name": "Identity", "config": {"name": "i"}},
            ],
        },
    }
    filled, _ = fill_bare_classes(typed)
    layers = filled["config"]["layers"]
    assert layers[1]["config"]["kernel_initializer"]["module"] == "keras.initializers"
    assert layers[2]["module"] == "keras.layers"


@pytest.mark.parametrize(
    ("layer", "phrase"),
    [
        ({"class_name": "Lambda", "config": {"function": "x"}}, "Lambda"),
        ({"class_name": "TFSMLayer", "config": {"filepath": "/etc"}}, "TFSMLayer"),
        ({"class_name": "NoSuchLayer", "config": {}}, "NoSuchLayer"),
    ],
)
def test_bare_names_do_not_open_the_allow_list(
    layer: dict[str, Any], phrase: str, settings: Settings
) -> None:
    typed = json.loads(json.dumps(HAND_TYPED))
    typed["config"]["layers"].insert(1, layer)
    with pytest.raises(ForbiddenModel, match=phrase):
        build(typed, settings)


def test_a_hand_typed_keras2_model_builds_too(settings: Settings) -> None:
    # Keras 2's spelling (batch_input_shape), no names, no modules: read as tf.keras 2 JSON.
    typed = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"units": 4, "batch_input_shape": [None, 3]}},
                {"class_name": "Dense", "config": {"units": 1}},
            ]
        },
    }
    report = inspect_model(typed, settings)
    assert report["dialect"] == "tf.keras2"
    assert report["params"]["total"] == 3 * 4 + 4 + 4 + 1
    assert build(typed, settings).count_params() == 21
