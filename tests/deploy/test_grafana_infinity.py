"""Every Infinity query of the generated dashboards, executed as Grafana would against a real
reporting service (real NATS, real database) loaded with a simulated rollout: the URL with
its variables filled in, its parameters and headers, and the provisioned read-scope token
read from its secret file. Each answers 200 with every field its panel reads, including the
funnel plot's limits, also for a trust whose figures are suppressed."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from deploy.grafana import infinity
from deploy.grafana.generate import OUT
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.simulate.model import SimulationOptions
from ibest.simulate.runner import run_simulation
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC
from tests.harness import running_service, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROVISIONED = ROOT / "deploy/grafana/provisioning/datasources/reporting.yml"
TOKEN = "grafana-read-token"


@pytest.fixture(autouse=True)
def grafana_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "grafana_reporting_token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", "raw-token:raw")
    monkeypatch.setenv("IBEST_REPORTING_READ_TOKEN_FILE", str(secret))


def test_the_reporting_datasource_is_provisioned_with_the_token_secret() -> None:
    source = yaml.safe_load(PROVISIONED.read_text())["datasources"][0]
    assert source["uid"] == infinity.REPORTING.uid
    assert source["type"] == infinity.REPORTING.type_val
    assert source["jsonData"]["auth_method"] == "bearerToken"
    assert (
        source["secureJsonData"]["bearerToken"] == "$__file{/run/secrets/grafana_reporting_token}"
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana, reporting = compose["services"]["grafana"], compose["services"]["reporting"]
    assert "yesoreyeram-infinity-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    assert "grafana_reporting_token" in grafana["secrets"]
    assert "grafana_reporting_token" in reporting["secrets"]
    assert (
        reporting["environment"]["IBEST_REPORTING_READ_TOKEN_FILE"]
        == "/run/secrets/grafana_reporting_token"
    )
    assert source["url"] == "http://reporting:8004"


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads((OUT / f"{name}.json").read_text()) for name in infinity.DASHBOARDS}


def variable_values(
    board: dict[str, Any], target: dict[str, Any], trusts: list[str]
) -> list[dict[str, str]]:
    """Every combination of the board's variables that `target` uses (trust: the given)."""
    used = json.dumps([target["url"], target["url_options"]])
    choices: dict[str, list[str]] = {}
    for v in board.get("templating", {}).get("list", []):
        if f"${v['name']}" in used:
            # A custom variable's options are `words : value`; the query gets the value.
            options = [o.rpartition(" : ")[2] for o in v["query"].split(",")]
            choices[v["name"]] = trusts if v["name"] == "trust" else options
    names = list(choices)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(choices[n] for n in names))
    ]


def fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace(f"${name}", value)
    assert "$" not in text, text
    return text


async def run(
    client: httpx.AsyncClient, target: dict[str, Any], values: dict[str, str]
) -> list[dict[str, Any]]:
    """Execute one Infinity query as the plugin does; return its rows."""
    options = target["url_options"]
    assert options["method"] == "GET"
    headers = {h["key"]: fill(h["value"], values) for h in options["headers"]}
    headers["Authorization"] = f"Bearer {TOKEN}"  # the datasource's bearerToken
    response = await client.get(
        fill(target["url"], values),
        headers=headers,
        params={p["key"]: fill(p["value"], values) for p in options["params"]},
    )
    assert response.status_code == 200, (target["url"], values, response.text[:300])
    rows: list[dict[str, Any]]
    if target["type"] == "csv":
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
    else:
        body: Any = response.json()
        for key in filter(None, target["root_selector"].split(".")):
            body = body[key]
        rows = body
        if rows == [] and target["root_selector"] == "limits":
            # No limits without a national proportion: nobody in the national denominator
            # (e.g. no improved_share for a measure this rollout never collected).
            assert response.json()["national"]["denominator"] == 0, values
            return rows
    assert isinstance(rows, list) and rows, (target["url"], values)
    for row in rows:
        for column in target["columns"]:
            assert column["selector"] in row, (target["url"], column["selector"])
            if column["type"] == "timestamp":
                assert re.fullmatch(r"\d{4}-\d{2}", row[column["selector"]])
    return rows


@pytest.mark.slow
async def test_every_infinity_query_answers_with_every_field_its_panel_reads(
    settings: Settings, js: JetStreamContext
) -> None:
    options = SimulationOptions(
        seed=18, trusts=6, clinicians=90, patients=70, months=24, invalid_rate=0.0, progress=False
    )
    await run_simulation(settings, options)
    # Outcomes runs too: it derives the outcome.recorded events the improved-share funnel
    # counts.
    async with (
        running_service(OUTCOMES, settings, lambda: options.end),
        running_service(SPEC, settings, lambda: options.end) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
    ):

        async def drained(consumer: str) -> bool:
            info: ConsumerInfo = await js.consumer_info(EVENTS_STREAM, consumer)
            return info.num_pending == 0 and info.num_ack_pending == 0

        async def applied() -> bool:
            if not (await drained("outcomes") and await drained("reporting")):
                return False
            national = await client.get(
                "/v1/national", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            # The derived outcomes counted too (published by outcomes after its input).
            return (
                national.status_code == 200
                and national.json()["figures"]["outcomes"]["rmdq"]["month_3"]["n"] > 0
            )

        await wait_for(applied, 60, "the simulated rollout applied")
        raw = {"Authorization": "Bearer raw-token"}
        trusts = [
            t["trustcode"]
            for t in (
                await client.get("/v1/trusts", headers={"Authorization": f"Bearer {TOKEN}"})
            ).json()["trusts"]
        ]
        # A trust with suppressed monthly figures: the panels must read "*", never 0.
        suppressed = []
        for trust in trusts:
            published = (
                await client.get(
                    f"/v1/trusts/{trust}/months", headers={"Authorization": f"Bearer {TOKEN}"}
                )
            ).json()
            exact = (await client.get(f"/v1/trusts/{trust}/months?raw=true", headers=raw)).json()
            for name, values in published["figures"].items():
                for shown, value in zip(values, exact["figures"][name], strict=True):
                    if isinstance(value, int) and 1 <= value <= 7:
                        assert shown == "*", (trust, name)
                        suppressed.append(trust)
        assert suppressed, "the simulated rollout should leave some figure suppressed"
        chosen = sorted({trusts[0], suppressed[0]})

        executed = plotted = 0
        for name, board in boards().items():
            targets = infinity.infinity_targets(board)
            assert targets, name
            assert all(
                t["datasource"]
                == {"type": infinity.REPORTING.type_val, "uid": infinity.REPORTING.uid}
                or "datasource" not in t
                for t in targets
            )
            for target in targets:
                for values in variable_values(board, target, chosen):
                    rows = await run(client, target, values)
                    executed += 1
                    if target["type"] == "csv" and values.get("trust") == suppressed[0]:
                        selectors = [c["selector"] for c in target["columns"]]
                        # Suppressed cells stay "*" (the table maps them to text; a chart
                        # reading a number leaves a gap), never "0".
                        assert all(
                            r[s] != ""
                            for r in rows
                            for s in selectors
                            if not s.startswith("followup_rate")
                        )
                    if target.get("root_selector") == "limits":
                        plotted += bool(rows)
                        for r in rows:
                            assert (
                                r["lower_99_8"]
                                <= r["lower_95"]
                                <= r["national"]
                                <= r["upper_95"]
                                <= r["upper_99_8"]
                            )
            # The panels read only fields their queries return.
            for panel in board["panels"]:
                # Grafana's matchers and filters name a field by its shown name (`text`).
                read = {c["text"] for t in panel.get("targets", []) for c in t["columns"]}
                for series in panel.get("options", {}).get("series", []):
                    assert {
                        series["x"]["matcher"]["options"],
                        series["y"]["matcher"]["options"],
                    } <= read
                for transformation in panel.get("transformations", []):
                    for f in transformation["options"].get("filters", []):
                        assert f["fieldName"] in read
        assert executed >= 30 and plotted >= 4
