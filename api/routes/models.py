"""Model inspection: what the server makes of a model JSON, before any job."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter

from api.deps import SettingsDep
from api.examples import INSPECT_EXAMPLES
from api.schemas import InspectRequest
from models.errors import InvalidModel
from models.inspection import inspect_model

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post("/inspect")
def inspect(
    body: Annotated[InspectRequest, INSPECT_EXAMPLES], settings: SettingsDep
) -> dict[str, Any]:
    """Layers, shapes, parameter counts and the `summary()` text of a model JSON."""
    model = body.model
    if isinstance(model, str):
        try:
            model = json.loads(model)
        except json.JSONDecodeError as error:
            raise InvalidModel(f"`model` is a string but not JSON: {error.msg}.") from None
        if not isinstance(model, dict):
            raise InvalidModel("`model` must be a JSON object as model.to_json() writes it.")
    return inspect_model(model, settings)
