"""`ibest forms ...` as an operator runs it (the parser and the command, on the test's real
database), and the `ibest up --demo` lines: a survey link open now and a site key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.cli import build_parser
from ibest.local.stack import forms_demo
from services.forms.settings import FormsSettings
from tests.forms.conftest import path_of
from tests.harness import cloud_event, publish_raw, wait_for

REF = "abcdefabcdef0123456789abcdef0123"


def use(monkeypatch: pytest.MonkeyPatch, own: FormsSettings) -> None:
    monkeypatch.setenv("IBEST_FORMS_LINK_SECRET_FILE", str(own.link_secret_file))
    monkeypatch.setenv("IBEST_FORMS_ID_KEY_FILE", str(own.id_key_file))


async def run(settings: Settings, *argv: str) -> int:
    """The command's exit code; what it printed is read with capsys."""
    args = build_parser().parse_args(list(argv))
    code: int = await args.func(args, settings)
    return code


async def test_link_keys_and_demo_commands(
    forms: str,
    js: JetStreamContext,
    settings: Settings,
    forms_settings: FormsSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(monkeypatch, forms_settings)
    monkeypatch.setenv("IBEST_FORMS_BASE_URL", forms)
    at = datetime.now(UTC) - timedelta(days=30)
    await publish_raw(
        js,
        cloud_event(
            "clinician.training_completed",
            {"clinician_ref": REF, "course_version": "1", "completed_at": at.isoformat()},
            time=at,
        ),
    )
    code = await run(settings, "forms", "link", "--clinician", REF, "--form", "intention")
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0 and link.startswith(f"{forms}/c/") and REF not in link
    async with httpx.AsyncClient(base_url=forms) as client:

        async def opens() -> bool:
            return (await client.get(path_of(link))).status_code == 200

        await wait_for(opens, what="the intention form opens")

    for _ in range(2):
        assert await run(settings, "forms", "keys", "create", "--site", "RTH08") == 0
        assert capsys.readouterr().out.strip().splitlines()[-1].startswith("ibs_")
    code = await run(settings, "forms", "keys", "create", "--site", "RTH08")
    assert code == 1 and "already has 2 active keys" in capsys.readouterr().out
    assert await run(settings, "forms", "keys", "create", "--site", "RTH8") == 1
    assert "not a 5-character ODS site code" in capsys.readouterr().out
    await run(settings, "forms", "keys", "list")
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 2 and all("RTH08" in line and "active" in line for line in listed)
    code = await run(settings, "forms", "keys", "revoke", listed[0].split()[0])
    assert code == 0 and "revoked key" in capsys.readouterr().out

    lines = await forms_demo(settings)  # a key slot is free again
    assert lines[0].startswith("forms: a clinician's survey, open now: ") and "/c/" in lines[0]
    assert lines[1].split()[-1].startswith("ibs_")


async def test_erase_patient_removes_the_record_and_its_links(
    forms: str,
    settings: Settings,
    forms_settings: FormsSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.forms.bootstrap import admins
    from services.forms.ports import Patient

    use(monkeypatch, forms_settings)
    async with admins(settings, forms_settings) as (_, _links, patients):
        await patients.patients.create(Patient("RTH", "RTH08", "FP-ERASEME23", None, {}))
        await patients.patients.set_activities("RTH", "FP-ERASEME23", ["Putting on socks"])
    code = await run(
        settings, "forms", "erase-patient", "--trust", "RTH", "--patient", "FP-ERASEME23"
    )
    assert code == 0 and "erased 1 patient record(s)" in capsys.readouterr().out
    async with admins(settings, forms_settings) as (_, _links, patients):
        assert await patients.patients.get("RTH", "FP-ERASEME23") is None
