"""Submit (``/submit``): a job from a pasted ``model.to_json()`` and a few Keras arguments.

The form posts to the page itself, which builds the same spec as ``POST /v1/jobs`` and goes
through the same checks, so it works without JavaScript and its errors are the API's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.errors import validation_message
from api.pages.rendering import page
from api.routes import jobs
from models.access import Principal
from models.data import catalog
from models.errors import ServiceError
from models.jobs.validation import check_job, referenced_datasets
from models.keras.inspection import inspect_model
from models.settings import Settings
from models.spec import JobCreate

router = APIRouter(include_in_schema=False)
# Keras' own defaults for what the form leaves as it is.
DEFAULTS = {
    "name": "",
    "model": "",
    "dataset": "",
    "x": "x_train",
    "y": "y_train",
    "optimizer": "rmsprop",
    "loss": "",
    "metrics": "",
    "epochs": "1",
    "batch_size": "32",
    "validation_split": "0.0",
}
SECTIONS = ("model", "compile", "data", "fit")


def _form(
    request: Request, session: Any, who: Principal, values: dict[str, str], **extra: Any
) -> HTMLResponse:
    status = extra.pop("status_code", 200)
    datasets = catalog.listing(session, 1000, 0, who)
    return page(request, "submit.html", status, values=values, datasets=datasets, **extra)


@router.get("/submit", response_class=HTMLResponse)
def submit_page(request: Request, session: SessionDep, who: CurrentUser) -> HTMLResponse:
    return _form(request, session, who, dict(DEFAULTS), errors={}, checked="")


def _spec(values: dict[str, str]) -> dict[str, Any]:
    metrics = [m.strip() for m in values["metrics"].split(",") if m.strip()]
    train: dict[str, Any] = {"dataset": values["dataset"], "x": values["x"], "y": values["y"]}
    return {
        "name": values["name"] or None,
        "model": values["model"],
        "compile": {"optimizer": values["optimizer"], "loss": values["loss"], "metrics": metrics},
        "data": {"train": train},
        "fit": {
            "epochs": _number(values["epochs"], int),
            "batch_size": _number(values["batch_size"], int),
            "validation_split": _number(values["validation_split"], float),
        },
    }


def _number(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # the spec's validation names the field and the value


@router.post("/submit", response_model=None)
async def submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: CurrentUser,
    action: Annotated[str, Form()] = "submit",
    model_file: Annotated[UploadFile | None, Form()] = None,
) -> Response:
    form = await request.form()
    values = {key: str(form.get(key, default)) for key, default in DEFAULTS.items()}
    if model_file is not None and model_file.filename and not values["model"].strip():
        text = await model_file.read(settings.max_request_bytes)
        values["model"] = text.decode("utf-8", "replace")
    # Validating builds the model (and the page reads the database): never on the event loop,
    # where one large model would hold up every other request of this process.
    return await run_in_threadpool(_submit, request, session, settings, who, action, values)


def _submit(
    request: Request,
    session: Session,
    settings: Settings,
    who: Principal,
    action: str,
    values: dict[str, str],
) -> Response:
    """Check or submit the form's job, as ``POST /v1/jobs`` would; the form again on errors."""
    errors: dict[str, str] = {}
    try:
        spec = JobCreate.model_validate(_spec(values))
        if action == "check":
            check_job(spec, catalog.shapes(session, referenced_datasets(spec), who), settings)
            summary = inspect_model(spec.model, settings)["summary"]
            return _form(
                request,
                session,
                who,
                values,
                errors={},
                checked="The job is valid.",
                summary=summary,
            )
        job = jobs.submit_job(spec, request, session, settings, who)
    except ValidationError as error:
        for problem in error.errors():
            section = str(problem["loc"][0]) if problem["loc"] else "model"
            section = section if section in SECTIONS else "model"
            errors[section] = errors.get(section, "") + validation_message([dict(problem)]) + " "
    except ServiceError as error:
        mentioned = [s for s in SECTIONS if f"{s}" in error.message.lower()]
        errors[mentioned[0] if mentioned else "model"] = error.message
    if errors:
        return _form(request, session, who, values, errors=errors, checked="", status_code=422)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
