"""Clinician contact emails, asked of the enrolment service at send time (never stored)."""

from __future__ import annotations

import json

from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from services.notifications.ports import ContactUnavailable

CONTACT_SUBJECT = "ibest.rpc.enrolment.contact"


class NatsContactDirectory:
    """`ContactDirectory` by a NATS request to the enrolment service."""

    def __init__(self, nc: NatsClient, timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout

    async def email_of(self, clinician_ref: str) -> str | None:
        """The clinician's contact email, None when enrolment has none for them."""
        request = json.dumps({"clinician_ref": clinician_ref}).encode()
        try:
            reply = await self._nc.request(CONTACT_SUBJECT, request, timeout=self._timeout)
        except (NoRespondersError, NatsTimeout, TimeoutError) as exc:
            raise ContactUnavailable(f"enrolment contact lookup: {type(exc).__name__}") from None
        try:
            answer = json.loads(reply.data)
        except ValueError:
            raise ContactUnavailable("enrolment contact lookup: reply is not JSON") from None
        if not isinstance(answer, dict) or answer.get("clinician_ref") != clinician_ref:
            raise ContactUnavailable("enrolment contact lookup: reply for another clinician")
        email = answer.get("contact_email")
        if not answer.get("found") or not isinstance(email, str) or not email:
            return None
        return email
