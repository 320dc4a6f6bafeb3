"""HTTP routes: the course catalogue for integrators (open), one clinician's state for
operators (needs a service token, ibest.backbone.service_auth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from ibest.backbone.service_auth import UNAUTHORISED, service_token
from services.enrolment.application import EnrolmentService
from shared.catalogue import Catalogue


@dataclass(frozen=True)
class EnrolmentApi:
    """What the routes reach as `request.app.state.service`."""

    catalogue: Catalogue
    service: EnrolmentService


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["enrolment"])

    @router.get("/courses", summary="Every course version with its required modules, in order")
    async def courses(request: Request) -> dict[str, Any]:
        api: EnrolmentApi = request.app.state.service
        return api.catalogue.as_json()

    guarded = [Depends(service_token("enrolment"))]

    @router.get(
        "/clinicians/{clinician_ref}",
        dependencies=guarded,
        responses=UNAUTHORISED,
        summary="One clinician's training state (never their contact email)",
    )
    async def clinician(clinician_ref: str, request: Request) -> dict[str, Any]:
        api: EnrolmentApi = request.app.state.service
        state = await api.service.clinician(clinician_ref)
        if state is None:
            raise HTTPException(404, f"no clinician {clinician_ref!r} here")
        return state.model_dump(mode="json")

    return router
