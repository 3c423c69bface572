"""Jobs that start from weights: an earlier job's, or an uploaded HDF5 weights file.

Two HDF5 layouts exist. Keras 3's ``.weights.h5`` (groups ``layers/<name>/vars``) loads by the
model's structure; the legacy Keras 2 layout (``layer_names`` attribute, also inside a whole
``model.h5`` under ``model_weights``) loads by layer order or, with ``by_name``, by layer name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
from sqlalchemy.orm import Session

from models.access import SERVICE, Principal
from models.data import catalog
from models.data.store import LocalStore
from models.errors import DatasetMismatch, InvalidSpec, NotFound, without_paths
from models.jobs import records
from models.keras.training import ARTIFACTS
from models.spec import InitialWeights

if TYPE_CHECKING:
    import keras


def is_keras3_layout(path: Path) -> bool:
    """Whether an HDF5 file holds Keras 3 ``.weights.h5`` weights (else the legacy layout)."""
    with h5py.File(path, "r") as file:
        return "layer_names" not in file.attrs and "model_weights" not in file and "layers" in file


def check_source(session: Session, source: InitialWeights, who: Principal) -> None:
    """Refuse, before queueing, weights that do not exist or are not an HDF5 file.

    Raises:
        InvalidSpec: the job has no weights, or the dataset is not an HDF5 file.
    """
    try:
        _check(session, source, who)
    except NotFound as error:
        raise InvalidSpec(f"`initial_weights`: {error.message}", received=error.extra) from None


def _check(session: Session, source: InitialWeights, who: Principal) -> None:
    if source.job is not None:
        job = records.get(session, source.job, who)
        if "weights" not in (job.artifacts or []):
            raise InvalidSpec(
                f"`initial_weights.job` {source.job} has no trained weights (it is "
                f"{job.status}). Start from a job that succeeded or was cancelled.",
                received=source.job,
            )
    else:
        assert source.dataset is not None
        dataset = catalog.get(session, source.dataset, who)
        if dataset.format != "h5":
            raise DatasetMismatch(
                f"`initial_weights.dataset` {source.dataset} is a .{dataset.format} file; "
                "weights come as HDF5, as `model.save_weights()` writes them. Upload the "
                "`.weights.h5` (Keras 3) or `.h5` (Keras 2) file.",
                received=source.dataset,
            )


def _path(session: Session, store: LocalStore, source: InitialWeights) -> Path:
    if source.job is not None:
        return store.path("jobs", source.job, ARTIFACTS["weights"])
    assert source.dataset is not None
    dataset = catalog.get(session, source.dataset, SERVICE)
    return store.path("datasets", dataset.id, catalog.data_file(dataset.format))


def load_into(
    model: keras.Model, session: Session, store: LocalStore, source: InitialWeights
) -> None:
    """Load the weights ``source`` names into a built model.

    Raises:
        InvalidSpec: the weights do not fit the model (Keras' own message included).
    """
    path = _path(session, store, source)
    if not path.is_file():
        raise InvalidSpec(
            "The initial weights are gone: their job or dataset was deleted after this job was "
            "queued. Submit the job again with weights that exist."
        )
    try:
        if is_keras3_layout(path):
            with tempfile.TemporaryDirectory(prefix="remotefit-weights-") as folder:
                # Keras 3 picks its loader by the file name's ending.
                link = Path(folder) / "initial.weights.h5"
                os.symlink(path, link)
                model.load_weights(link, skip_mismatch=source.skip_mismatch)
        else:
            model.load_weights(
                path, skip_mismatch=source.skip_mismatch, by_name=source.by_name or None
            )
    except (ValueError, KeyError, OSError) as error:
        said = without_paths(" ".join(str(error).split()))  # Keras names the file it read
        raise InvalidSpec(
            f"The initial weights do not fit this model: {said[:600]}. "
            "Start from weights of the same architecture, or set `by_name`/`skip_mismatch`."
        ) from None
