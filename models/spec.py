"""The job spec: what a user sends to ``POST /v1/jobs``, with the names of Keras itself.

Pydantic checks the form (types, ranges, unknown keys); ``models.jobs.validation`` checks the
content against the model and the datasets before the job is queued.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from models.errors import InvalidModel
from models.model_text import parse_model_text

# A reference to arrays: a name in the dataset, a list of names (one per model input/output),
# an object keyed by input/output layer name, or ``{"columns": [...]}`` to stack 1-D arrays (CSV
# columns) into one 2-D array. Without a dataset the same places hold inline JSON arrays.
ArrayRef = Any

KERAS2_COMPILE_ARGS = {
    "sample_weight_mode": (
        "Keras 3 removed `sample_weight_mode`; give per-sample weights as `sample_weight` in "
        "`data.train` instead (a 2-D array gives temporal weights)."
    ),
    "target_tensors": (
        "Keras 3 removed `target_tensors`; pass the targets as `y` in `data.train` instead."
    ),
    "distribute": "Keras 3 removed `distribute`; the worker chooses the device itself.",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompileSpec(BaseModel):
    """Arguments of ``Model.compile``."""

    model_config = ConfigDict(extra="allow")

    optimizer: str | dict[str, Any] = "rmsprop"
    loss: str | dict[str, Any] | list[Any] | None = None
    metrics: list[Any] | dict[str, Any] | None = None
    loss_weights: list[float] | dict[str, float] | None = None
    weighted_metrics: list[Any] | dict[str, Any] | None = None
    run_eagerly: Literal[False] = False
    # None: the worker chooses (models.keras.execution); 1 turns Keras' multi-step calls off.
    steps_per_execution: int | None = Field(default=None, ge=1, le=10_000)
    jit_compile: bool | Literal["auto"] = "auto"

    @model_serializer(mode="wrap")
    def _choice_left_open(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left to the worker, it is left out: the stored spec stays what `Model.compile` takes
        # (Keras refuses steps_per_execution=None).
        data: dict[str, Any] = handler(self)
        if data.get("steps_per_execution") is None:
            data.pop("steps_per_execution", None)
        return data

    @model_validator(mode="after")
    def _no_unknown_arguments(self) -> CompileSpec:
        for key in self.model_extra or {}:
            if key in KERAS2_COMPILE_ARGS:
                raise ValueError(KERAS2_COMPILE_ARGS[key])
            raise ValueError(
                f"`compile` has no argument {key!r}. Expected some of: optimizer, loss, metrics, "
                "loss_weights, weighted_metrics, steps_per_execution, jit_compile."
            )
        return self


class CallbackSpec(Strict):
    """A Keras callback from the server's allow-list, as ``{"class_name", "config"}``."""

    class_name: str
    config: dict[str, Any] = Field(default_factory=dict)


class FitSpec(Strict):
    """Arguments of ``Model.fit`` other than the data."""

    epochs: int = Field(default=1, ge=0)
    batch_size: int | None = Field(default=32, ge=1)
    validation_split: float = Field(default=0.0, ge=0.0, lt=1.0)
    shuffle: bool = True
    class_weight: dict[str, float] | None = None
    initial_epoch: int = Field(default=0, ge=0)
    steps_per_epoch: int | None = Field(default=None, ge=1)
    validation_steps: int | None = Field(default=None, ge=1)
    validation_freq: int = Field(default=1, ge=1)
    callbacks: list[CallbackSpec] = Field(default_factory=list)
    verbose: int | str | None = Field(default=None, description="Ignored; the service reports.")

    @model_validator(mode="after")
    def _initial_epoch_below_epochs(self) -> FitSpec:
        if self.epochs and self.initial_epoch >= self.epochs:
            raise ValueError(
                f"`initial_epoch` must be below `epochs`, or Keras trains nothing. "
                f"Received: initial_epoch={self.initial_epoch}, epochs={self.epochs}."
            )
        return self

    @field_validator("class_weight")
    @classmethod
    def _class_weight_keys_are_ints(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key in value or {}:
            if not key.lstrip("-").isdigit():
                raise ValueError(
                    '`class_weight` keys are class indices (JSON object keys such as "0", '
                    f'"1"). Received key: {key!r}.'
                )
        return value


class EvaluateSpec(Strict):
    """Arguments of ``Model.evaluate`` other than the data."""

    batch_size: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)


class InitialWeights(Strict):
    """Weights to start from: an earlier job's, or an uploaded HDF5 file (a dataset id)."""

    job: str | None = None
    dataset: str | None = None
    by_name: bool = Field(default=False, description="Legacy .h5 only: match layers by name.")
    skip_mismatch: bool = Field(default=False, description="Skip layers whose shapes differ.")

    @model_validator(mode="after")
    def _one_source(self) -> InitialWeights:
        if (self.job is None) == (self.dataset is None):
            raise ValueError(
                "`initial_weights` needs exactly one of `job` (an earlier job's id) or "
                "`dataset` (the id of an uploaded HDF5 weights file)."
            )
        return self


class DataSplit(Strict):
    """Arrays for one of train / validation / test.

    With ``dataset``, ``x``/``y``/``sample_weight`` name arrays of that dataset; without it they
    hold the arrays inline as (nested) JSON lists.
    """

    dataset: str | None = None
    x: ArrayRef
    y: ArrayRef = None
    sample_weight: ArrayRef = None


class DataSpec(Strict):
    train: DataSplit | None = None
    validation: DataSplit | None = None
    test: DataSplit | None = None


class JobCreate(Strict):
    """The job spec of ``POST /v1/jobs``."""

    name: str | None = Field(default=None, max_length=255)
    model: dict[str, Any] = Field(
        description="model.to_json(): its parsed object, or the JSON string as it is"
    )
    compile: CompileSpec = Field(default_factory=CompileSpec)
    data: DataSpec
    fit: FitSpec = Field(default_factory=FitSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    initial_weights: InitialWeights | None = None
    time_limit_s: int | None = Field(
        default=None, ge=1, description="Stop the job after this long (default: the server's)."
    )

    @field_validator("model", mode="before")
    @classmethod
    def _model_is_json(cls, value: Any) -> Any:
        # A string is model.to_json() as it is, or the YAML of Keras 2's to_yaml().
        if not isinstance(value, str):
            return value
        try:
            return parse_model_text(value)
        except InvalidModel as error:
            raise ValueError(error.message) from None

    @model_validator(mode="after")
    def _has_work(self) -> JobCreate:
        if self.fit.epochs > 0 and self.data.train is None:
            raise ValueError(
                "`data.train` is required to train (fit.epochs > 0). Give it, or set "
                "fit.epochs to 0 to only evaluate."
            )
        return self
