"""Model inspection: what the server makes of a model JSON, before any job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from api.deps import SettingsDep
from api.examples import INSPECT_EXAMPLES
from api.schemas import InspectRequest
from models.keras.inspection import inspect_model
from models.model_text import parse_model_text

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post("/inspect")
def inspect(
    body: Annotated[InspectRequest, INSPECT_EXAMPLES], settings: SettingsDep
) -> dict[str, Any]:
    """Layers, shapes, parameter counts and `summary()` of a model JSON of any Keras dialect.

    Beyond this schema: the model must build in Keras from allowed layers within the server's
    bounds (a 422 names the layer and what is wrong).
    """
    model = parse_model_text(body.model) if isinstance(body.model, str) else body.model
    return inspect_model(model, settings)
