"""The trained model for TensorFlow Serving: a SavedModel in a version folder, as a .tar.gz.

TensorFlow Serving loads ``<model_base_path>/<version>/saved_model.pb``; ``model.export()``
writes the SavedModel with a ``serving_default`` signature that takes the model's inputs by
name and returns its outputs, the same numbers ``model.predict`` gives. The archive holds
the folder ``1/``, so it unpacks straight under a model base path.
"""

from __future__ import annotations

import tarfile
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

SAVEDMODEL = "model.savedmodel.tar.gz"
VERSION = "1"
_exporting = threading.Lock()  # one export at a time: it traces the model, CPU and memory


def export_savedmodel(
    model_path: Path, writing: Callable[[], AbstractContextManager[Path]], scratch: Path
) -> None:
    """Export the ``.keras`` model at ``model_path`` as a SavedModel archive.

    Args:
        model_path: the job's whole-model file.
        writing: yields the temporary path to write the archive to, renamed into place
            once it is complete (``LocalStore.writing``).
        scratch: a folder on the store's filesystem for the SavedModel before it is packed.
    """
    import keras

    with _exporting:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            version = Path(folder) / VERSION
            model.export(str(version), format="tf_saved_model", verbose=False)
            with writing() as archive, tarfile.open(archive, "w:gz") as tar:
                tar.add(version, arcname=VERSION)
