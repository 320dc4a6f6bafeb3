"""HTTP: opt-outs, the GOV.UK Notify delivery-status callback, a reminder's stored status.

Opt-outs and reminders need a service token (ibest.backbone.service_auth), and every opt-out
change is written to the audit log with the token's id; the callback has GOV.UK Notify's
own token; the scheduler's last pass is open.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict

from ibest.backbone.audit import Actor, AuditLog
from ibest.backbone.runtime import Clock
from ibest.backbone.service_auth import UNAUTHORISED, service_token
from ibest.backbone.tokens import Token
from services.notifications.adapters.repository import Repository
from services.notifications.scheduler import Scheduler
from services.notifications.settings import NotificationSettings
from shared.identifiers import REF_PATTERN


@dataclass
class NotificationsApi:
    repo: Repository
    scheduler: Scheduler
    settings: NotificationSettings
    clock: Clock
    audit: AuditLog

    async def set_opt_out(self, clinician_ref: str, opted_out: bool, actor: Actor) -> None:
        await set_opt_out(self.repo, clinician_ref, opted_out, self.clock, self.audit, actor)


async def set_opt_out(repo: Repository, clinician_ref: str, opted_out: bool,
                      clock: Clock, audit: AuditLog, actor: Actor) -> None:
    """Opt a clinician out of (or back into) their reminders; pending ones are cancelled at
    once and the sender checks again just before sending. The change is audited first, so
    none happens unrecorded."""
    await audit.record("opt_out" if opted_out else "opt_in", actor,
                       clinician_ref=clinician_ref)
    await repo.set_opt_out(clinician_ref, opted_out, clock())
    if opted_out:
        await repo.cancel_clinician_reminders(clinician_ref, ["training", "thanks"], "opted out")


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

    @router.post("/v1/opt-outs/{clinician_ref}", summary="Opt a clinician out of reminders",
                 responses=UNAUTHORISED)
    async def opt_out(clinician_ref: ClinicianRef, request: Request,
                      token: Token = Depends(guard)) -> dict[str, Any]:  # noqa: B008
        await _service(request).set_opt_out(clinician_ref, True, Actor("http", token.id))
        return {"clinician_ref": clinician_ref, "opted_out": True}

    @router.delete("/v1/opt-outs/{clinician_ref}", summary="Undo a clinician's opt-out",
                   responses=UNAUTHORISED)
    async def opt_in(clinician_ref: ClinicianRef, request: Request,
                     token: Token = Depends(guard)) -> dict[str, Any]:  # noqa: B008
        await _service(request).set_opt_out(clinician_ref, False, Actor("http", token.id))
        return {"clinician_ref": clinician_ref, "opted_out": False}

    @router.post("/v1/notify/callback", summary="GOV.UK Notify delivery-status callback")
    async def callback(
        body: DeliveryStatus, request: Request,
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

    @router.get("/v1/reminders/{reminder_id}", summary="One reminder's stored status",
                dependencies=[Depends(guard)], responses=UNAUTHORISED)
    async def reminder(reminder_id: str, request: Request) -> dict[str, Any]:
        doc = await _service(request).repo.reminder(reminder_id)
        if doc is None:
            raise HTTPException(404, "no such reminder")
        return {k: v for k, v in doc.items() if k not in ("owner", "lease_until")}

    return router
