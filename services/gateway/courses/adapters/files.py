"""A directory of one course run's exports, read as they stream (a 480,000-row step export
is never held whole in memory)."""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from services.gateway.courses.domain.exports import OVERFLOW, ExportError, ExportKind
from services.gateway.courses.domain.runs import RUN_FILE, CourseRun

csv.field_size_limit(1 << 20)  # a long free-text response must not stop the import


class ExportDirectory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def run(self) -> CourseRun:
        path = self.directory / RUN_FILE
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ExportError(
                f"{path}: cannot read the run's configuration ({exc.strerror}); "
                "docs/course-platform.md shows one"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ExportError(f"{path}: not TOML: {exc}") from None
        try:
            return CourseRun.model_validate(config)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
            )
            raise ExportError(f"{path}: {problems}") from None

    def _file(self, kind: ExportKind, name: str | None) -> Path | None:
        if name is not None:
            path = self.directory / name
            return path if path.is_file() else None
        found = sorted(self.directory.glob(f"*{kind.suffix}"))
        if len(found) > 1:
            raise ExportError(
                f"{len(found)} {kind.name} exports in {self.directory} "
                f"({', '.join(p.name for p in found)}): keep one run's exports per directory"
            )
        return found[0] if found else None

    def header(self, kind: ExportKind, name: str | None = None) -> tuple[str, list[str]] | None:
        path = self._file(kind, name)
        if path is None:
            return None
        with path.open(newline="", encoding="utf-8-sig") as f:
            return path.name, next(csv.reader(f), [])

    def rows(
        self, kind: ExportKind, name: str | None = None
    ) -> Iterator[tuple[int, dict[str, str]]]:
        path = self._file(kind, name)
        if path is None:
            return
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            width = len(header)
            for row in reader:
                if len(row) < width:
                    if not row:
                        continue
                    row += [""] * (width - len(row))
                cells = dict(zip(header, row, strict=False))
                if len(row) > width:
                    cells[OVERFLOW] = str(len(row))
                yield reader.line_num, cells
