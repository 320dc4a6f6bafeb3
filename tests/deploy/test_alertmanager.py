"""Alertmanager's configuration is valid and routes every alert to the operators' email
(amtool from Debian's prometheus-alertmanager); Prometheus sends its alerts there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy/alertmanager/alertmanager.yml"
RULES = ROOT / "deploy/prometheus/rules"


def _amtool(*argv: str) -> subprocess.CompletedProcess[str]:
    amtool = shutil.which("amtool")
    assert amtool, "amtool is not installed: `apt-get install -y prometheus-alertmanager`"
    return subprocess.run([amtool, *argv], capture_output=True, text=True, timeout=60, check=False)


def test_config_is_valid_and_has_an_email_receiver() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(CONFIG.read_text())
    [receiver] = config["receivers"]
    assert receiver["email_configs"][0]["to"]
    # the relay's password is a secret file, never in the configuration
    assert "smtp_auth_password" not in config["global"]
    assert config["global"]["smtp_auth_password_file"].startswith("/run/secrets/")


def test_every_alert_routes_to_the_operators_email() -> None:
    alerts = [
        (rule["alert"], rule["labels"]["severity"])
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert len(alerts) > 15
    for alert, severity in alerts:
        result = _amtool(
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            "--verify.receivers=operators-email",
            f"alertname={alert}",
            f"severity={severity}",
        )
        assert result.returncode == 0, (alert, result.stdout + result.stderr)


def test_prometheus_sends_alerts_to_alertmanager_and_scrapes_the_gateway() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [manager] = prometheus["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    services = jobs["ibest-services"]["static_configs"][0]["targets"]
    assert "gateway:8005" in services
    assert {"node", "blackbox-tcp", "blackbox-tls"} <= set(jobs)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"alertmanager", "node-exporter", "blackbox-exporter"} <= set(compose)


def test_the_proxy_routes_notifys_callback_and_nothing_else_of_notifications() -> None:
    caddy = (ROOT / "deploy/caddy/Caddyfile").read_text()
    block = caddy[caddy.index("@notify_callback {") :]
    block = block[: block.index("reverse_proxy notifications:8003")]
    assert "method POST" in block and "path /notify/callback" in block
    assert "rewrite * /v1/notify/callback" in block
    assert caddy.count("notifications:8003") == 1
