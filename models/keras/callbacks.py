"""Keras callbacks a job may ask for: only those that are safe on a shared server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.errors import InvalidSpec
from models.spec import CallbackSpec

if TYPE_CHECKING:
    import keras

ALLOWED = ("EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN")
REFUSED = {
    "ModelCheckpoint": "the service stores the trained model itself (GET /v1/jobs/{id}/model)",
    "BackupAndRestore": "the service checkpoints jobs itself",
    "CSVLogger": "the history is in the job (GET /v1/jobs/{id})",
    "TensorBoard": "it writes to a path on the server",
    "RemoteMonitor": "it sends requests from the server to any address",
    "LambdaCallback": "it runs arbitrary code",
    "LearningRateScheduler": "its schedule is Python code; use a serialized learning-rate "
    "schedule in the optimizer config instead",
}


def build_callbacks(specs: list[CallbackSpec]) -> list[keras.callbacks.Callback]:
    """Instantiate the requested callbacks, or InvalidSpec naming the problem."""
    import keras

    built = []
    for index, spec in enumerate(specs):
        where = f"fit.callbacks[{index}]"
        if spec.class_name in REFUSED:
            raise InvalidSpec(
                f"`{where}` asks for {spec.class_name}, which is not available here because "
                f"{REFUSED[spec.class_name]}. Allowed callbacks: {list(ALLOWED)}."
            )
        if spec.class_name not in ALLOWED:
            raise InvalidSpec(
                f"`{where}` asks for an unknown callback {spec.class_name!r}. "
                f"Allowed callbacks: {list(ALLOWED)}."
            )
        try:
            built.append(getattr(keras.callbacks, spec.class_name)(**spec.config))
        except (TypeError, ValueError) as error:
            raise InvalidSpec(
                f"`{where}` ({spec.class_name}) has an invalid config: {error}. "
                f"Received: {spec.config}."
            ) from None
    return built
