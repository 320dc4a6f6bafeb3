"""The one way a contact email leaves the service: core NATS request-reply for notifications.

Subject `ibest.rpc.enrolment.contact` (queue group `enrolment`, so one replica answers);
request `{"clinician_ref": "..."}`; reply `{"clinician_ref": "...", "contact_email": "..." or
null, "found": bool}`: `found` says whether the clinician is known here at all, and
`contact_email` is null when they gave none or it was erased. It is outside the events
stream, so the reply is never stored in a stream; NATS permissions (deploy/) let only the
notifications service publish to it.
Neither the request nor the reply is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.identifiers import Ref

log = logging.getLogger(__name__)

CONTACT_SUBJECT = "ibest.rpc.enrolment.contact"
CONTACT_QUEUE = "enrolment"


class ContactRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    clinician_ref: Ref


class ContactReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinician_ref: str
    contact_email: str | None
    found: bool
    error: str | None = None
    """Only on a malformed request (then `found` is false); omitted otherwise."""

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude={"error"} if self.error is None else None).encode()


Lookup = Callable[[str], Awaitable[tuple[bool, str | None]]]
"""(clinician known, contact email or None)"""


async def answer(data: bytes, lookup: Lookup) -> ContactReply:
    try:
        request = ContactRequest.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        return ContactReply(clinician_ref="", contact_email=None, found=False, error=problems)
    found, email = await lookup(request.clinician_ref)
    return ContactReply(clinician_ref=request.clinician_ref, contact_email=email, found=found)


def contact_responder(nc: NatsClient, lookup: Lookup) -> Callable[[], Awaitable[None]]:
    """A background loop answering contact requests until cancelled."""

    async def serve() -> None:
        async def on_request(msg: Msg) -> None:
            try:
                reply = await answer(msg.data, lookup)
            except Exception:
                log.exception("contact request failed; the requester will time out")
                return
            await msg.respond(reply.to_json())

        sub = await nc.subscribe(CONTACT_SUBJECT, queue=CONTACT_QUEUE, cb=on_request)
        try:
            await asyncio.Event().wait()
        finally:
            await sub.unsubscribe()

    return serve
