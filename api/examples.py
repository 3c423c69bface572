"""Working examples for the Swagger UI: each can be sent as it is with "Try it out"."""

from __future__ import annotations

from typing import Any

from fastapi import Body

# The seed example's model (Dense 64 relu, Dropout, Dense 64 relu, Dropout, Dense 1 sigmoid),
# as Keras 3's model.to_json() writes it, trimmed of default arguments.
SEED_MODEL: dict[str, Any] = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "seed",
        "layers": [
            {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {"batch_shape": [None, 20], "name": "input"},
            },
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {"name": "dense", "units": 64, "activation": "relu"},
            },
            {
                "module": "keras.layers",
                "class_name": "Dropout",
                "config": {"name": "dropout", "rate": 0.5},
            },
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {"name": "dense_1", "units": 64, "activation": "relu"},
            },
            {
                "module": "keras.layers",
                "class_name": "Dropout",
                "config": {"name": "dropout_1", "rate": 0.5},
            },
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {"name": "dense_2", "units": 1, "activation": "sigmoid"},
            },
        ],
    },
}

_ROW = [0.1 * i for i in range(20)]
INLINE_JOB = {
    "name": "seed-inline",
    "model": SEED_MODEL,
    "compile": {"optimizer": "rmsprop", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
    "data": {
        "train": {"x": [_ROW, _ROW[::-1], _ROW, _ROW[::-1]], "y": [[1], [0], [1], [0]]},
        "test": {"x": [_ROW, _ROW[::-1]], "y": [[1], [0]]},
    },
    "fit": {"epochs": 3, "batch_size": 2},
    "evaluate": {"batch_size": 2},
}
DATASET_JOB = {
    "name": "seed-example",
    "model": SEED_MODEL,
    "compile": {"optimizer": "rmsprop", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
    "data": {
        "train": {"dataset": "<dataset id>", "x": "x_train", "y": "y_train"},
        "test": {"dataset": "<dataset id>", "x": "x_test", "y": "y_test"},
    },
    "fit": {"epochs": 20, "batch_size": 128},
    "evaluate": {"batch_size": 128},
}

JOB_EXAMPLES = Body(
    openapi_examples={
        "inline": {
            "summary": "Seed model, inline data (runs as it is)",
            "value": INLINE_JOB,
        },
        "dataset": {
            "summary": "Seed example on an uploaded .npz (put your dataset id in)",
            "value": DATASET_JOB,
        },
    }
)
INSPECT_EXAMPLES = Body(
    openapi_examples={"seed": {"summary": "The seed model", "value": {"model": SEED_MODEL}}}
)
