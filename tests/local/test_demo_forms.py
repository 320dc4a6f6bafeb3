"""`ibest up --demo` on non-default ports, as a newcomer tries the forms: the printed
clinician survey link opens, and the links a site team makes (QR codes, letters) point at the
forms where this stack serves them (IBEST_FORMS_PORT), not at the default port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ibest.local.processes import free_port, wait_until
from ibest.local.stack import SERVICES
from tests.forms.conftest import hidden

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

SURVEY = re.compile(r"--demo: forms: a clinician's survey, open now: (\S+)")
SITE_KEY = re.compile(r"--demo: forms: site RTH08's key, sign in at (\S+)/site: (ibs_\S+)")
REF = re.compile(r"<strong>(FP-[A-Z0-9]+)</strong>")


def test_demo_prints_an_open_survey_link_and_forms_links_use_the_forms_port(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NATS_URL", "MONGODB_URL") and not k.startswith("IBEST_")
    }
    env.update(
        {
            "IBEST_NATS_PORT": str(free_port()),
            "IBEST_MONGODB_PORT": str(free_port()),
            **{f"IBEST_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        }
    )
    forms = f"http://127.0.0.1:{ports['forms']}"
    out = tmp_path / "up.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ibest.cli", "up", "--demo", "--data-dir", str(tmp_path / "d")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_until(lambda: "--demo: forms: site" in out.read_text(), 300, "the demo", proc)
            text = out.read_text()
            survey = SURVEY.search(text)
            assert survey, text
            assert survey.group(1).startswith(f"{forms}/c/")
            assert httpx.get(survey.group(1), timeout=10).status_code == 200

            site = SITE_KEY.search(text)
            assert site and site.group(1) == forms, text
            with httpx.Client(base_url=forms, timeout=10) as client:
                page = client.get("/site/sign-in")
                signed = client.post(
                    "/site/sign-in",
                    data={**hidden(page.text), "key": site.group(2)},
                    headers={"Cookie": f"ibest_forms_signin={page.cookies['ibest_forms_signin']}"},
                )
                assert signed.status_code == 303, signed.text
                auth = {"Cookie": signed.headers["set-cookie"].split(";")[0]}
                home = client.get("/site", headers=auth)
                added = client.post("/site/patients", data=hidden(home.text), headers=auth)
                ref = REF.search(added.text)
                assert ref, added.text
                form = hidden(client.get("/site/link", headers=auth).text)
                made = client.post(
                    "/site/link",
                    data={
                        **form,
                        "patient_ref": ref.group(1),
                        "timepoint": "baseline",
                        "measures": "pain_nrs",
                    },
                    headers=auth,
                )
                assert made.status_code == 200, made.text
                assert f"{forms}/p/" in made.text, made.text
            proc.send_signal(signal.SIGINT)
            assert proc.wait(120) == 0, out.read_text()
        finally:
            if proc.poll() is None:  # a failed assertion: stop the stack, its servers too
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
