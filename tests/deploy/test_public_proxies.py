"""What the public TLS proxies let through: never a service's /metrics (which trusts are
connected, their request and rejection counts; reporting's figures), and no server banner.
Checked on the committed Caddyfiles (no Caddy binary in the test environment)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def site_body(caddyfile: str, site: str) -> str:
    return caddyfile.split(f"\n{site} {{", 1)[1].split("\n}", 1)[0]


def test_the_gateway_proxy_answers_metrics_itself_and_hides_the_server() -> None:
    site = site_body((ROOT / "deploy/gateway/Caddyfile").read_text(), ":9443")
    matcher = re.search(r"@(\w+) path /metrics /metrics/\*", site)
    assert matcher, "a matcher for /metrics"
    assert f"respond @{matcher.group(1)} 404" in site
    assert "header -Server" in site


def test_the_people_proxy_never_forwards_reporting_metrics() -> None:
    site = site_body((ROOT / "deploy/caddy/Caddyfile").read_text(), ":8443")
    blocked = site.index("handle /reporting/metrics* {")
    assert "respond 404" in site[blocked : site.index("}", blocked)]
    assert blocked < site.index("handle_path /reporting/* {"), "the block comes first"
    assert "header -Server" in site


def test_the_gateway_believes_forwarded_addresses_only_from_the_compose_network() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gateway = compose["services"]["gateway"]
    assert "ports" not in gateway, "reachable only through gateway-tls"
    proxies = gateway["environment"]["IBEST_GATEWAY_TRUSTED_PROXIES"]
    assert "0.0.0.0/0" not in proxies and "172.16.0.0/12" in proxies
