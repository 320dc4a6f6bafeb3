"""The `backup` compose profile: a consistent mongodump and the events stream's snapshot on
a schedule, with retention, under least privilege. (What can run here, the snapshot,
restore and rebuild, is tests/platform/test_stream_backup.py; Docker cannot.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_backup_jobs_run_only_in_the_backup_profile_on_a_schedule_with_retention() -> None:
    services = compose()["services"]
    jobs = {n: s for n, s in services.items() if "backup" in s.get("profiles", [])}
    assert set(jobs) == {"backup-mongo", "backup-streams"}
    for name, job in jobs.items():
        script = ROOT / job["volumes"][0].split(":")[0]
        text = script.read_text()
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert "IBEST_BACKUP_INTERVAL_SECONDS" in text and "-mtime" in text, name
        assert job["environment"]["IBEST_BACKUP_KEEP_DAYS"].startswith("${"), name
    mongo = (ROOT / "deploy/backup/mongo.sh").read_text()
    assert "--oplog" in mongo and "--archive" in mongo  # one point in time
    assert "--password" not in mongo  # from a config file on tmpfs, not the command line
    assert (
        "ibest streams snapshot --stream IBEST_EVENTS"
        in (ROOT / "deploy/backup/streams.sh").read_text()
    )
    users = (ROOT / "deploy/mongo/create-users.js").read_text()
    assert '{ role: "backup", db: "admin" }' in users
    assert jobs["backup-mongo"]["secrets"] == ["mongo_password_backup"]
