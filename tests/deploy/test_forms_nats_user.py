"""The forms service under its own NATS user (deploy/nats/nats.conf, as compose runs it):
it binds to its consumer, learns a completion and publishes the clinician's answer; the
user may publish only the events its forms make."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, ensure_streams
from ibest.registry import consumers
from services.forms import bootstrap
from services.forms.service import build_spec
from services.forms.settings import FormsSettings
from shared.links import ClinicianForm
from tests.deploy.secured_nats import SecuredNats
from tests.forms.conftest import hidden, path_of
from tests.harness import cloud_event, publish_raw, running_service, wait_for

REF = "0a0b0c0d0e0f00112233445566778899"


def secret(path: Path) -> Path:
    path.write_text(secrets.token_hex(32))
    return path


async def test_forms_publishes_its_answers_and_nothing_else(
    secured_nats: SecuredNats, mongodb_url: str, tmp_path: Path
) -> None:
    forms_settings = FormsSettings(
        IBEST_FORMS_LINK_SECRET_FILE=secret(tmp_path / "link"),
        IBEST_FORMS_ID_KEY_FILE=secret(tmp_path / "id"),
    )
    admin = await secured_nats.connect("admin")
    settings = Settings(
        MONGODB_URL=mongodb_url,
        IBEST_DB_PREFIX=f"formsperm{datetime.now(UTC).strftime('%H%M%S%f')}",
        IBEST_FETCH_TIMEOUT=0.2,
    )
    await ensure_streams(admin.jetstream(), settings, consumers())
    done = datetime.now(UTC) - timedelta(days=122)
    # training_completed is derived: enrolment's user publishes it (a trust may not).
    enrolment = await secured_nats.connect("enrolment")
    await publish_raw(
        enrolment.jetstream(),
        cloud_event(
            "clinician.training_completed",
            {"clinician_ref": REF, "course_version": "1", "completed_at": done.isoformat()},
            time=done,
        ),
    )
    try:
        own = secured_nats.settings_for("forms", settings)
        async with running_service(build_spec(forms_settings), own) as base:
            async with bootstrap.admin(settings, forms_settings) as (_, links):
                path = path_of(links.link(REF, ClinicianForm.DELIVERY_MONTH_4))
            async with httpx.AsyncClient(base_url=base) as client:

                async def opened() -> httpx.Response | None:
                    r = await client.get(path)
                    return r if r.status_code == 200 else None

                page = await wait_for(opened, 30, "forms consumes the completion")
                sent = await client.post(
                    path, data={**hidden(page.text), "delivering": "no", "groups": ""}
                )
                assert sent.status_code == 200, sent.text

            async def stored() -> bool:
                info = await admin.jetstream().stream_info(EVENTS_STREAM, subjects_filter=">")
                return (info.state.subjects or {}).get(
                    "ibest.v1.RTH.clinician.delivery_reported"
                ) == 1

            await wait_for(stored, 30, "the answer published under the forms' user")

        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        forms_user = await secured_nats.connect("forms", error_cb=on_error)
        await forms_user.publish("ibest.v1.RTH.clinician.enrolled", b"{}")
        await forms_user.publish("ibest.v1.RTH.outcome.recorded", b"{}")
        await forms_user.flush()

        async def refused() -> bool:
            return sum("permissions violation" in str(e).lower() for e in errors) >= 2

        await wait_for(refused, 10, "the forms' user refused other events")
        await forms_user.close()
    finally:
        for nc in (admin, enrolment):
            await nc.close()
