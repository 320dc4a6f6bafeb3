"""The patient references reporting keeps: the ids of each generation's patient entities
(`g<n>_patients`, `_id` `<trustcode>:<patient_ref>`), for `ibest purge-nhs-numbers`.

Reporting deletes none itself: its figures are mended by a rebuild through today's
contract, which refuses those events (services/reporting/cli.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.document import Document

PATIENTS = re.compile(r"g\d+_patients")


class GenerationPatientRefs:
    """`StoredRefs` (ibest/backbone/patient_refs.py) over every generation's patients."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def stored(self) -> AsyncIterator[tuple[str, Any, str]]:
        for name in sorted(await self._db.list_collection_names()):
            if PATIENTS.fullmatch(name):
                async for doc in self._db[name].find({}, {"_id": 1}):
                    if isinstance(doc["_id"], str):
                        yield name, doc["_id"], doc["_id"].split(":", 1)[-1]
