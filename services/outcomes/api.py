"""HTTP read side: a patient's winners and outcomes, and their follow-up schedule.

Patients appear only under the trust's pseudonymous reference; a path that carries an
NHS number is refused rather than looked up. Every route needs a service token
(ibest.backbone.service_auth).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from ibest.backbone.service_auth import UNAUTHORISED, service_token
from services.outcomes.application import OutcomesService
from shared.identifiers import REF_PATTERN, TRUST_CODE_PATTERN, is_nhs_number

Trust = Path(pattern=TRUST_CODE_PATTERN, description="ODS code of the trust, e.g. RTH")
PatientRefPath = Path(pattern=REF_PATTERN, description="The trust's pseudonymous reference")


def _service(request: Request, patient_ref: str) -> OutcomesService:
    if is_nhs_number(patient_ref):
        raise HTTPException(
            422, "an NHS number is not a patient reference; use the trust's pseudonymous reference"
        )
    service: OutcomesService = request.app.state.service
    return service


def _found(view: dict[str, Any] | None) -> dict[str, Any]:
    if view is None:
        raise HTTPException(404, "no assessment of this patient has been received")
    return view


def routes() -> APIRouter:
    router = APIRouter(
        prefix="/v1/patients",
        tags=["patients"],
        responses=UNAUTHORISED,
        dependencies=[Depends(service_token("outcomes"))],
    )

    @router.get("/{trustcode}/{patient_ref}", summary="Winning assessments and outcomes")
    async def patient(
        request: Request, trustcode: str = Trust, patient_ref: str = PatientRefPath
    ) -> dict[str, Any]:
        return _found(await _service(request, patient_ref).patient(trustcode, patient_ref))

    @router.get(
        "/{trustcode}/{patient_ref}/followups",
        summary="Baseline date and the month 3 and month 12 follow-up windows",
    )
    async def followups(
        request: Request, trustcode: str = Trust, patient_ref: str = PatientRefPath
    ) -> dict[str, Any]:
        return _found(await _service(request, patient_ref).followups(trustcode, patient_ref))

    return router
