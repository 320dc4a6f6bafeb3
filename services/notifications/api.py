"""HTTP: opt-outs, the GOV.UK Notify delivery-status callback, a reminder's stored status.

Opt-outs and reminders need a service token (ibest.backbone.service_auth), and every opt-out
change is written to the audit log with the token's id (by the use case,
application.NotificationsService.set_opt_out); the callback has GOV.UK Notify's
own token; the scheduler's last pass is open.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict

from ibest.backbone.audit import Actor
from ibest.backbone.clock import Clock
from ibest.backbone.service_auth import UNAUTHORISED, service_token
from ibest.backbone.tokens import Token
from services.notifications.application import NotificationsService
from services.notifications.ports import NotificationsRepository
from services.notifications.scheduler import Scheduler
from services.notifications.settings import NotificationSettings
from shared.identifiers import REF_PATTERN


@dataclass
class NotificationsApi:
    repo: NotificationsRepository
    service: NotificationsService
    scheduler: Scheduler
    settings: NotificationSettings
    clock: Clock

    async def set_opt_out(self, clinician_ref: str, opted_out: bool, actor: Actor) -> None:
        await self.service.set_opt_out(clinician_ref, opted_out, actor)


class DeliveryStatus(BaseModel):
    """A GOV.UK Notify delivery receipt (its callback body)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    reference: str | None = None
    to: str | None = None
    status: str
    created_at: str | None = None
    completed_at: str | None = None
    sent_at: str | None = None
    notification_type: str | None = None


ClinicianRef = Annotated[str, Path(pattern=REF_PATTERN, max_length=64)]


def _service(request: Request) -> NotificationsApi:
    service: NotificationsApi = request.app.state.service
    return service


def routes() -> APIRouter:
    router = APIRouter(tags=["notifications"])
    guard = service_token("notifications")

    @router.post(
        "/v1/opt-outs/{clinician_ref}",
        summary="Opt a clinician out of reminders",
        responses=UNAUTHORISED,
    )
    async def opt_out(
        clinician_ref: ClinicianRef,
        request: Request,
        token: Token = Depends(guard),  # noqa: B008
    ) -> dict[str, Any]:
        await _service(request).set_opt_out(clinician_ref, True, Actor("http", token.id))
        return {"clinician_ref": clinician_ref, "opted_out": True}

    @router.delete(
        "/v1/opt-outs/{clinician_ref}", summary="Undo a clinician's opt-out", responses=UNAUTHORISED
    )
    async def opt_in(
        clinician_ref: ClinicianRef,
        request: Request,
        token: Token = Depends(guard),  # noqa: B008
    ) -> dict[str, Any]:
        await _service(request).set_opt_out(clinician_ref, False, Actor("http", token.id))
        return {"clinician_ref": clinician_ref, "opted_out": False}

    @router.post("/v1/notify/callback", summary="GOV.UK Notify delivery-status callback")
    async def callback(
        body: DeliveryStatus,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        service = _service(request)
        token = service.settings.callback_token
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not token or not authorization or not hmac.compare_digest(given, token):
            raise HTTPException(401, "missing or wrong bearer token")
        status = body.model_dump(exclude={"to"})  # never keep the address
        matched = await service.repo.record_delivery(status, service.clock())
        return {"id": body.id, "reference": body.reference, "matched": matched}

    @router.get("/v1/scheduler", summary="When this instance last finished a pass")
    async def scheduler(request: Request) -> dict[str, Any]:
        last = _service(request).scheduler.last_pass
        return {"last_pass": last.isoformat() if last else None}

    @router.get(
        "/v1/reminders/{reminder_id}",
        summary="One reminder's stored status",
        dependencies=[Depends(guard)],
        responses=UNAUTHORISED,
    )
    async def reminder(reminder_id: str, request: Request) -> dict[str, Any]:
        doc = await _service(request).repo.reminder(reminder_id)
        if doc is None:
            raise HTTPException(404, "no such reminder")
        return {k: v for k, v in doc.items() if k not in ("owner", "lease_until", "outbox")}

    return router
