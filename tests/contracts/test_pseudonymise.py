"""The identifiers recipe: `ibest pseudonymise` (its reference implementation) makes
references the contract accepts, that never look like an NHS number, and the same as the
recipe written in docs/identifiers.md computes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibest.cli import main as ibest
from shared.envelope import BY_NAME, parse_event
from shared.examples import example
from shared.identifiers import is_nhs_number
from tests.strategies import valid_nhs_numbers

ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 40


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, *values: str) -> list[str]:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    assert ibest(["pseudonymise", kind, "--key-file", str(key_file), *values]) == 0
    return capsys.readouterr().out.splitlines()


def accepted_as(name: str, field: str, value: str) -> bool:
    raw = json.loads(example(BY_NAME[name]).to_json())
    raw["data"][field] = value
    kept: object = getattr(parse_event(None, json.dumps(raw).encode()).data, field)
    return kept == value


def recipe_in_the_docs() -> dict[str, object]:
    """The Python block of docs/identifiers.md, run as written."""
    text = (ROOT / "docs" / "identifiers.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert code is not None, "docs/identifiers.md shows the recipe in Python"
    scope: dict[str, object] = {}
    exec(code.group(1), scope)  # noqa: S102 - our own documentation's example
    return scope


LOCAL_IDS = st.one_of(
    st.text(min_size=1, max_size=30).filter(lambda s: re.search(r"[0-9A-Za-z]", s) is not None),
    valid_nhs_numbers(),
)


@settings(max_examples=200, deadline=None)
@given(LOCAL_IDS)
def test_patient_references_pass_the_contract_and_are_never_nhs_numbers(local_id: str) -> None:
    from ibest.pseudonymise import pseudonymise

    ref = pseudonymise("patient", KEY, local_id)
    assert re.fullmatch(r"[0-9a-f]{32}", ref)
    assert not is_nhs_number(ref)
    assert accepted_as("patient.assessed", "patient_ref", ref)


def test_the_command_matches_the_documented_recipe_and_normalises(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    patients = run(capsys, tmp_path, "patient", "rth-001 234", "RTH001234", "943 476 5919")
    assert patients[0] == patients[1] != patients[2]
    assert all(
        not is_nhs_number(p) and accepted_as("patient.assessed", "patient_ref", p) for p in patients
    )
    clinicians = run(capsys, tmp_path, "clinician", "ph 123456", "PH123456")
    assert clinicians[0] == clinicians[1]
    assert accepted_as("clinician.enrolled", "clinician_ref", clinicians[0])
    recipe = recipe_in_the_docs()
    patient_ref, clinician_ref = recipe["patient_ref"], recipe["clinician_ref"]
    assert callable(patient_ref) and callable(clinician_ref)
    assert patient_ref(KEY, "rth-001 234") == patients[0]
    assert clinician_ref(KEY, "ph 123456") == clinicians[0]
