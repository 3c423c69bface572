"""Regenerate the model corpus written by real Keras: Keras 3 and tf-keras (the Keras 2 dialect).

Run ``.venv/bin/python tests/corpus/make_corpus.py`` after changing a family below. Each family
is one tiny model built twice from the same code, once with ``keras`` (Keras 3) and once with
``tf_keras`` (tf.keras 2 as a pip package), and written with ``model.to_json()``. The manifest
records what the writing library itself says about the model (layer names, output shapes,
parameter counts), so the tests compare the normalised model against the original, not against
Keras 3's reading of it. Hand-written files of older dialects (``keras2.2/``, ``keras2.0/``,
``yaml/``) keep their hand-written manifest entries.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CORPUS = Path(__file__).resolve().parent
MANIFEST = CORPUS / "manifest.json"
WRITERS = {"keras3": "keras3", "tf.keras2": "tf_keras2"}  # dialect -> folder


def dense(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(20,)),
            k.layers.Dense(
                16,
                activation="relu",
                kernel_regularizer=k.regularizers.L2(0.01),
                bias_constraint=k.constraints.MaxNorm(2.0),
                name="hidden",
            ),
            k.layers.Dense(1, activation="sigmoid", name="score"),
        ],
        name="dense_family",
    )


def seed(k: Any) -> Any:
    """The seed example's model, exactly as its author wrote it (``input_dim``)."""
    model = k.Sequential(name="seed")
    model.add(k.layers.Dense(64, input_dim=20, activation="relu"))
    model.add(k.layers.Dropout(0.5))
    model.add(k.layers.Dense(64, activation="relu"))
    model.add(k.layers.Dropout(0.5))
    model.add(k.layers.Dense(1, activation="sigmoid"))
    return model


def conv1d(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(16, 3)),
            k.layers.Conv1D(4, 3, padding="causal", dilation_rate=2),
            k.layers.SeparableConv1D(4, 3, depth_multiplier=2),
            k.layers.DepthwiseConv1D(3, padding="same"),
            k.layers.Conv1DTranspose(2, 3, strides=2),
            k.layers.MaxPooling1D(2),
            k.layers.AveragePooling1D(2),
            k.layers.GlobalAveragePooling1D(),
            k.layers.Dense(2),
        ],
        name="conv1d_family",
    )


def conv2d(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(8, 8, 3)),
            k.layers.Conv2D(4, (3, 3), padding="same", activation="relu"),
            k.layers.SeparableConv2D(4, 3, padding="same"),
            k.layers.DepthwiseConv2D(3, depth_multiplier=2),
            k.layers.Conv2DTranspose(3, 2, strides=2),
            k.layers.MaxPooling2D(),
            k.layers.AveragePooling2D(pool_size=(2, 2)),
            k.layers.GlobalMaxPooling2D(),
            k.layers.Dense(2),
        ],
        name="conv2d_family",
    )


def conv3d(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(4, 4, 4, 1)),
            k.layers.Conv3D(2, 3, padding="same"),
            k.layers.Conv3DTranspose(2, 2, strides=2),
            k.layers.MaxPooling3D(2),
            k.layers.AveragePooling3D(2),
            k.layers.GlobalAveragePooling3D(),
            k.layers.Dense(1),
        ],
        name="conv3d_family",
    )


def normalization(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(4, 6)),
            k.layers.BatchNormalization(),
            k.layers.LayerNormalization(),
            k.layers.Rescaling(1 / 255.0, offset=-0.5),
            k.layers.Normalization(mean=0.5, variance=0.25),
            k.layers.Flatten(),
            k.layers.Dense(2),
        ],
        name="normalization_family",
    )


def dropout(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(6, 4)),
            k.layers.SpatialDropout1D(0.2),
            k.layers.Dropout(0.3, noise_shape=(None, 1, 4), seed=1),
            k.layers.GaussianNoise(0.1),
            k.layers.GaussianDropout(0.1),
            k.layers.AlphaDropout(0.1),
            k.layers.Flatten(),
            k.layers.Dense(1),
        ],
        name="dropout_family",
    )


def embedding(k: Any) -> Any:
    kwargs = {"input_length": 5} if k.__name__ == "tf_keras" else {}
    return k.Sequential(
        [
            k.Input(shape=(5,), dtype="int32"),
            k.layers.Embedding(10, 8, mask_zero=True, **kwargs),
            k.layers.GlobalAveragePooling1D(),
            k.layers.Dense(1),
        ],
        name="embedding_family",
    )


def recurrent(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(6, 4)),
            k.layers.SimpleRNN(5, return_sequences=True),
            k.layers.LSTM(4, return_sequences=True, recurrent_dropout=0.1),
            k.layers.GRU(3, reset_after=True),
            k.layers.Dense(1),
        ],
        name="recurrent_family",
    )


def bidirectional(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(6, 4)),
            k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True)),
            k.layers.Bidirectional(k.layers.GRU(3), merge_mode="sum"),
            k.layers.Dense(1),
        ],
        name="bidirectional_family",
    )


def time_distributed(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(3, 5)),
            k.layers.TimeDistributed(k.layers.Dense(4, activation="relu")),
            k.layers.TimeDistributed(k.layers.Dropout(0.1)),
            k.layers.Flatten(),
            k.layers.Dense(1),
        ],
        name="time_distributed_family",
    )


def attention(k: Any) -> Any:
    query = k.Input(shape=(4, 8), name="query")
    value = k.Input(shape=(6, 8), name="value")
    attended = k.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(query, value)
    scored = k.layers.Attention(use_scale=True, name="dot_attention")([query, value])
    joined = k.layers.Concatenate(name="joined")([attended, scored])
    pooled = k.layers.GlobalAveragePooling1D(name="pooled")(joined)
    output = k.layers.Dense(1, name="output")(pooled)
    return k.Model([query, value], output, name="attention_family")


def reshaping(k: Any) -> Any:
    return k.Sequential(
        [
            k.Input(shape=(12,)),
            k.layers.Reshape((3, 4)),
            k.layers.Permute((2, 1)),
            k.layers.Flatten(),
            k.layers.RepeatVector(2),
            k.layers.Flatten(),
            k.layers.Dense(1),
        ],
        name="reshape_family",
    )


def merging(k: Any) -> Any:
    a = k.Input(shape=(8,), name="a")
    b = k.Input(shape=(8,), name="b")
    merged = [
        k.layers.Add(name="add")([a, b]),
        k.layers.Subtract(name="subtract")([a, b]),
        k.layers.Multiply(name="multiply")([a, b]),
        k.layers.Average(name="average")([a, b]),
        k.layers.Maximum(name="maximum")([a, b]),
        k.layers.Minimum(name="minimum")([a, b]),
        k.layers.Dot(axes=1, name="dot")([a, b]),
    ]
    joined = k.layers.Concatenate(axis=-1, name="concatenate")(merged)
    return k.Model([a, b], k.layers.Dense(1, name="output")(joined), name="merge_family")


def activations(k: Any) -> Any:
    layers = [
        k.Input(shape=(8,)),
        k.layers.Dense(8),
        k.layers.Activation("tanh"),
        k.layers.ReLU(max_value=6.0),
        k.layers.LeakyReLU(0.2),
        k.layers.PReLU(),
        k.layers.ELU(alpha=0.5),
    ]
    if hasattr(k.layers, "ThresholdedReLU"):  # removed in Keras 3
        layers.append(k.layers.ThresholdedReLU(theta=0.1))
    layers += [k.layers.Dense(3), k.layers.Softmax()]
    return k.Sequential(layers, name="activation_family")


def multi_io(k: Any) -> Any:
    features = k.Input(shape=(8,), name="features")
    extra = k.Input(shape=(3,), name="extra")
    trunk = k.layers.Concatenate(name="joined")([features, extra])
    trunk = k.layers.Dense(16, activation="relu", name="trunk")(trunk)
    label = k.layers.Dense(1, activation="sigmoid", name="label")(trunk)
    category = k.layers.Dense(4, activation="softmax", name="category")(trunk)
    return k.Model([features, extra], [label, category], name="two_by_two")


def shared(k: Any) -> Any:
    left = k.Input(shape=(6,), name="left")
    right = k.Input(shape=(6,), name="right")
    encoder = k.layers.Dense(4, activation="relu", name="encoder")
    projector = k.layers.Dense(6, name="projector")
    # The encoder is used at two depths: encoder(projector(encoder(left))) and encoder(right).
    deep = encoder(projector(encoder(left)))
    joined = k.layers.Concatenate(name="joined")([deep, encoder(right)])
    return k.Model([left, right], k.layers.Dense(1, name="output")(joined), name="shared_family")


def nested(k: Any) -> Any:
    inner_sequential = k.Sequential(
        [k.Input(shape=(4,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(4)],
        name="inner_sequential",
    )
    inner_input = k.Input(shape=(4,), name="inner_input")
    inner_functional = k.Model(
        inner_input, k.layers.Dense(3, name="inner_dense")(inner_input), name="inner_functional"
    )
    x = k.Input(shape=(4,), name="x")
    # inner_functional is called twice (shared model), once on the nested Sequential's output.
    deep = inner_functional(inner_sequential(x))
    direct = inner_functional(x)
    joined = k.layers.Concatenate(name="joined")([deep, direct])
    return k.Model(x, k.layers.Dense(1, name="output")(joined), name="nested_family")


def nested_sequential(k: Any) -> Any:
    block = k.Sequential([k.layers.Dense(6, activation="relu"), k.layers.Dense(3)], name="block")
    return k.Sequential(
        [k.Input(shape=(5,)), block, k.layers.Dense(1, name="head")], name="nested_sequential"
    )


def dtype_policy(k: Any) -> Any:
    mixed = k.mixed_precision.Policy("mixed_float16")
    return k.Sequential(
        [
            k.Input(shape=(4,)),
            k.layers.Dense(8, dtype=mixed, name="mixed"),
            k.layers.Dense(1, dtype="float32", name="out"),
        ],
        name="dtype_policy_family",
    )


FAMILIES: dict[str, Callable[[Any], Any]] = {
    "dense": dense,
    "seed": seed,
    "conv1d": conv1d,
    "conv2d": conv2d,
    "conv3d": conv3d,
    "normalization": normalization,
    "dropout": dropout,
    "embedding": embedding,
    "recurrent": recurrent,
    "bidirectional": bidirectional,
    "time_distributed": time_distributed,
    "attention": attention,
    "reshape": reshaping,
    "merge": merging,
    "activation": activations,
    "multi_io": multi_io,
    "shared": shared,
    "nested": nested,
    "nested_sequential": nested_sequential,
    "dtype_policy": dtype_policy,
}


def _output_shape(layer: Any) -> Any:
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None  # a layer used several times has no single output
    if isinstance(output, list | tuple):
        return [list(o.shape) for o in output]
    return list(output.shape)


def describe(model: Any, dialect: str) -> dict[str, Any]:
    """What the writing library says about its own model."""
    return {
        "dialect": dialect,
        "layers": [
            {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "output_shape": _output_shape(layer),
                "params": int(layer.count_params()),
            }
            for layer in model.layers
        ],
        "params": int(model.count_params()),
        "inputs": [{"shape": list(t.shape), "dtype": _dtype(t)} for t in model.inputs],
        "outputs": [list(t.shape) for t in model.outputs],
    }


def _dtype(tensor: Any) -> str:
    dtype = tensor.dtype
    return str(getattr(dtype, "name", dtype))


def write(model: Any, dialect: str, family: str, manifest: dict[str, Any]) -> None:
    relative = f"{WRITERS[dialect]}/{family}.json"
    path = CORPUS / relative
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(json.loads(model.to_json()), indent=1) + "\n")
    manifest[relative] = describe(model, dialect)


def write_yaml(model: Any, family: str, manifest: dict[str, Any]) -> None:
    """What tf.keras' ``to_yaml()`` wrote (TF 2.0-2.5): ``yaml.dump`` of the updated config."""
    import yaml

    relative = f"yaml/tf_keras2_{family}.yaml"
    (CORPUS / "yaml").mkdir(exist_ok=True)
    (CORPUS / relative).write_text(yaml.dump(model._updated_config()))
    manifest[relative] = describe(model, "tf.keras2")


def main() -> int:
    import keras
    import tf_keras

    manifest: dict[str, Any] = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for family, make in FAMILIES.items():
        for library, dialect in ((keras, "keras3"), (tf_keras, "tf.keras2")):
            library.backend.clear_session()  # layer names count from 1 in every file
            write(make(library), dialect, family, manifest)
    for family in ("multi_io", "conv2d"):
        tf_keras.backend.clear_session()
        write_yaml(FAMILIES[family](tf_keras), family, manifest)
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    print(f"wrote {len(FAMILIES) * 2 + 2} models; manifest has {len(manifest)} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
