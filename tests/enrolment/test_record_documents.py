"""Enrolment's record documents on the real database (issue 26): a fact is stored without
the clinician_ref its document's `_id` gives, `emitted` is no longer written, and a record
of the older shape (both stored) is read alike and rewritten in the new one."""

from __future__ import annotations

import json

from services.enrolment.adapters.repository import MongoClinicianRepository, to_doc
from services.enrolment.domain.record import apply_event
from services.enrolment.ports import Change
from shared.catalogue import catalogue
from shared.envelope import AnyEvent, parse_event
from tests.harness import ID_KEY, cloud_event, scratch_database


def event(name: str, data: dict[str, str]) -> AnyEvent:
    return parse_event(None, json.dumps(cloud_event(name, data)).encode())


async def test_a_record_stores_each_fact_once_and_reads_the_older_shape(mongodb_url: str) -> None:
    enrolled = event(
        "clinician.enrolled", {"clinician_ref": "c1", "profession": "nurse", "course_version": "1"}
    )
    module = event(
        "module.started", {"clinician_ref": "c1", "module_id": "m01-understanding-back-pain"}
    )
    first = apply_event(None, enrolled, catalogue(), id_key=ID_KEY)
    second = apply_event(first.record, module, catalogue(), id_key=ID_KEY)
    async with scratch_database(mongodb_url, "enrolment") as db:
        repo = MongoClinicianRepository(db)
        await repo.save_many([Change(second.record, second.state, None)])
        doc = await db["clinicians"].find_one({"_id": "c1"})
        assert doc is not None and "emitted" not in doc
        assert [f["data"] for f in doc["facts"]] == [
            {"profession": "nurse", "course_version": "1"},
            {"module_id": "m01-understanding-back-pain"},
        ]
        stored = (await repo.load_many(["c1"])).get("c1")
        assert stored is not None and stored.record == second.record

        # the older shape: facts with their clinician_ref, the bare list of emitted keys
        older = to_doc(first.record, first.state, 1)
        older["facts"] = [
            {**f, "data": {**f["data"], "clinician_ref": "c1"}} for f in older["facts"]
        ]
        older["emitted"] = [d["key"] for d in older["derived"]]
        await db["clinicians"].replace_one({"_id": "c1"}, older)
        [loaded] = (await repo.load_many(["c1"])).values()
        assert loaded.record == first.record
        again = apply_event(loaded.record, module, catalogue(), id_key=ID_KEY)
        await repo.save_many([Change(again.record, again.state, loaded.rev)])
        rewritten = await db["clinicians"].find_one({"_id": "c1"})
        assert rewritten is not None and "emitted" not in rewritten
        assert all("clinician_ref" not in f["data"] for f in rewritten["facts"])
        reread = (await repo.load_many(["c1"])).get("c1")
        assert reread is not None and reread.record == again.record and reread.rev == 2
