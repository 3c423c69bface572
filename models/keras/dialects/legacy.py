"""Keras 2 layers that Keras 3 removed: their Keras 3 counterparts, or why there is none."""

from __future__ import annotations

from typing import Any

from models.errors import ForbiddenModel, InvalidModel
from models.keras.dialects.context import Context

# Keras 2 layers that Keras 3 has under another name; see `convert_legacy_layer`.
LEGACY_LAYERS = {"CuDNNLSTM", "CuDNNGRU", "ThresholdedReLU", "Merge"}
# Keras 2 layers with no Keras 3 counterpart: why, and what to use instead.
REMOVED_LAYERS = {
    "LocallyConnected1D": "Keras 3 removed it; use Conv1D, or a Dense per position",
    "LocallyConnected2D": "Keras 3 removed it; use Conv2D",
    "DenseFeatures": "it reads tf.feature_column objects, which Keras 3 does not support",
    "RandomHeight": "Keras 3 removed it; use Resizing or RandomZoom",
    "RandomWidth": "Keras 3 removed it; use Resizing or RandomZoom",
    "TFOpLambda": "it wraps a TensorFlow function that tf.keras recorded from an expression "
    "such as `x + y` or `tf.concat`; use the Keras layer for it (Add, Concatenate, ...)",
    "SlicingOpLambda": "it wraps tensor slicing (`x[:, 0]`); use a Keras layer such as Cropping1D",
    "InstanceMethod": "it wraps a TensorFlow tensor method; use a Keras layer instead",
    "InstanceProperty": "it wraps a TensorFlow tensor property; use a Keras layer instead",
    "ClassMethod": "it wraps a TensorFlow class method; use a Keras layer instead",
}
MERGE_MODES = {
    "sum": "Add",
    "mul": "Multiply",
    "ave": "Average",
    "max": "Maximum",
    "concat": "Concatenate",
    "dot": "Dot",
    "cos": "Dot",
}


def convert_legacy_layer(
    class_name: str, config: dict[str, Any], context: Context, label: str, path: str
) -> tuple[str, dict[str, Any]]:
    """A layer of ``LEGACY_LAYERS`` as the Keras 3 layer that computes the same.

    Raises:
        InvalidModel: a legacy ``Merge`` of whole models or of an unknown mode.
        ForbiddenModel: a legacy ``Merge`` whose mode or output shape is Python code.
    """
    if class_name == "ThresholdedReLU":
        theta = config.pop("theta", 1.0)
        context.warn(
            f"{label} became ReLU(threshold={theta!r:.20}): Keras 3 removed ThresholdedReLU; "
            "the two differ only at x == threshold."
        )
        return "ReLU", {**config, "threshold": theta, "negative_slope": 0.0, "max_value": None}
    if class_name == "CuDNNGRU":
        context.warn(
            f"{label} became GRU(reset_after=True, recurrent_activation='sigmoid'), the same "
            "computation with the same parameters; Keras 3 runs it on cuDNN where it can."
        )
        extra = {"activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True}
        return "GRU", {**config, **extra, "use_bias": True}
    if class_name == "CuDNNLSTM":
        units = config.get("units")
        context.warn(
            f"{label} became LSTM(recurrent_activation='sigmoid'), which Keras 3 runs on cuDNN "
            "where it can. It has 4 * units fewer parameters"
            f"{f' ({4 * units} fewer)' if isinstance(units, int) else ''}: cuDNN keeps two "
            "bias vectors, Keras 3's LSTM one."
        )
        extra = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}
        return "LSTM", {**config, **extra}
    return _merge(config, context, label, path)


def _merge(
    config: dict[str, Any], context: Context, label: str, path: str
) -> tuple[str, dict[str, Any]]:
    """Keras 2.0's legacy ``Merge(mode=...)`` as the merge layer of that mode."""
    mode = config.get("mode")
    for argument in ("mode", "output_shape", "output_mask"):
        kind = config.get(f"{argument}_type", "raw")
        if kind not in (None, "raw") and config.get(argument) is not None:
            raise ForbiddenModel(
                f"{label} gives `{argument}` as Python code (`{argument}_type`={kind!r:.20}); "
                "the server never runs code from a model. Use a Keras merge layer instead.",
                path=path,
            )
    if config.get("layers"):
        raise InvalidModel(
            f"{label} merges whole models (Keras 1's Merge of branches); rebuild it with the "
            "functional API and a merge layer such as Concatenate."
        )
    if mode not in MERGE_MODES:
        raise InvalidModel(
            f"{label} has `mode`={mode!r:.40}; expected one of {sorted(MERGE_MODES)}."
        )
    merged: dict[str, Any] = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
    if mode == "concat":
        merged["axis"] = config.get("concat_axis", -1)
    elif mode in ("dot", "cos"):
        merged["axes"] = config.get("dot_axes", -1)
        merged["normalize"] = mode == "cos"
    context.warn(f"{label} (Keras 2.0's legacy Merge, mode={mode!r}) became {MERGE_MODES[mode]}.")
    return MERGE_MODES[mode], merged
