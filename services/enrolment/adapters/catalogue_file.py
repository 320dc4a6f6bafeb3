"""Reading the reviewed catalogue file; a broken file stops start-up rather than miscount."""

from __future__ import annotations

from pathlib import Path

from services.enrolment.domain.catalogue import Catalogue
from services.enrolment.settings import DEFAULT_CATALOGUE


def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> Catalogue:
    return Catalogue.model_validate_json(path.read_bytes())
