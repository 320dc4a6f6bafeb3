"""How a stamped outbox stores its entries: each body compressed against a preset dictionary.

Enrolment's clinicians and outcomes' patients keep each derived event in their document
(`outbox.py`, stamped stores), so every derived event's body is written once per raw event
that causes it. A body is a CloudEvent of 330 to 650 bytes of JSON, most of it the same in
every body (attribute names, the spec version, the source, the type, the data's field
names, timepoints and measures); plain zlib cannot share that between bodies (about 335
bytes each here). A preset dictionary can (`zlib.compressobj(zdict=...)`): a fixed text of
what the bodies repeat, taken from the contract (`ibest/outbox_dictionary.py` builds it
from `shared/`), against which each body is compressed to about 120 bytes.

Stored shapes of one entry, all read (`read_entries`):
- `{id, z<N>}` (written now, N = `DICTIONARY`): raw deflate (no zlib header or checksum:
  MongoDB checksums what it stores, and the body is validated by the contract when it is
  published) against dictionary N, of the body with its id left empty (`"id":""`: the
  entry's `id` says it); the name is the body's type's (`name_of`).
- `{id, name, z}` (issue 26's first shape): zlib without a dictionary.
- `{id, name, body}`: the JSON itself (cleared stores, and documents written before).

A dictionary never changes once an entry may have been written with it: each version is
a committed file (`outbox_dictionary_<N>.json`, a list of strings joined), pinned by its
SHA-256 in tests; a contract change that the dictionary should follow is a new version,
and the old ones stay to read what was written with them.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ibest.backbone.document import Document
from ibest.backbone.outbox_values import OutboxEntry
from shared.envelope import TYPE_PREFIX

DICTIONARY = 1
"""The dictionary new entries are compressed against."""
_LEVEL, _WBITS, _MEMLEVEL = 9, -15, 9
"""Best compression, raw deflate with the largest window, the most memory (bodies are small)."""
_NAME = re.compile(rf'"type":"{re.escape(TYPE_PREFIX)}([a-z_.]+)\.v[0-9]+"')
_PACKED = re.compile(r"z([1-9][0-9]*)")


def dictionary_path(version: int) -> Path:
    return Path(__file__).with_name(f"outbox_dictionary_{version}.json")


@cache
def dictionary(version: int) -> bytes:
    """Dictionary `version` as compression uses it (its committed strings, joined)."""
    parts: list[str] = json.loads(dictionary_path(version).read_text(encoding="utf-8"))
    return "".join(parts).encode()


def name_of(body: str) -> str:
    """The event name a body's type says (`outcome.recorded`), or "" if it says none."""
    found = _NAME.search(body)
    return found.group(1) if found else ""


def stored_entries(entries: Iterable[OutboxEntry]) -> list[Document]:
    """What a stamped store's writers put in `outbox` (the module docstring's first shape;
    an entry whose body could not be restored exactly from it keeps the zlib shape)."""
    return [_packed(e) for e in entries]


def read_entries(stored: Iterable[Document]) -> tuple[OutboxEntry, ...]:
    """Stored entries in any of their shapes (the module docstring)."""
    return tuple(_entry(o) for o in stored)


def _packed(entry: OutboxEntry) -> Document:
    own_id = f'"id":"{entry.id}"'
    at = entry.body.find(own_id)
    emptied = entry.body.replace(own_id, '"id":""', 1)
    if at < 0 or emptied.find('"id":""') != at or name_of(entry.body) != entry.name:
        return {"id": entry.id, "name": entry.name, "z": zlib.compress(entry.body.encode())}
    packer = zlib.compressobj(
        _LEVEL, zlib.DEFLATED, _WBITS, _MEMLEVEL, zdict=dictionary(DICTIONARY)
    )
    return {
        "id": entry.id,
        f"z{DICTIONARY}": packer.compress(emptied.encode()) + packer.flush(),
    }


def _entry(stored: Document) -> OutboxEntry:
    for key, value in stored.items():
        version = _PACKED.fullmatch(key)
        if version is not None:
            unpacker = zlib.decompressobj(_WBITS, zdict=dictionary(int(version.group(1))))
            emptied = (unpacker.decompress(value) + unpacker.flush()).decode()
            body = emptied.replace('"id":""', f'"id":"{stored["id"]}"', 1)
            return OutboxEntry(id=stored["id"], name=name_of(body), body=body)
    if "z" in stored:
        body = zlib.decompress(stored["z"]).decode()
        return OutboxEntry(id=stored["id"], name=stored.get("name", ""), body=body)
    return OutboxEntry.model_validate(stored)
