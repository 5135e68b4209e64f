"""What a source kind is to a run: its settings, the connector that reads it, how what it reads is
stored, and its extract. Each kind's module declares one `SourceKind`; `baocao.run.sources` lists them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Generic, TypeVar

import pandas as pd
from sqlalchemy.engine import Engine

from baocao.core.errors import ConfigurationError
from baocao.core.settings import Config
from baocao.core.sources import SourceSettings
from baocao.storage import warehouse


class Storage(StrEnum):
    """How what a kind reads reaches the warehouse."""

    # Dossiers: staged by extract as a batch, then checked by the dossier suite and merged by validate_batch.
    STAGED = "staged"
    # Stored by extract whole (a catalogue, a year's scores), or refused whole with what was stored kept.
    STORED_WHOLE = "stored whole"
    # Stored by extract row by row, upserted by natural key; rows that break a rule are quarantined.
    UPSERTED = "upserted"

    @property
    def validated_by_batch(self) -> bool:
        """Whether validate_batch has dossiers to check and merge (otherwise extract stored everything)."""
        return self is Storage.STAGED


@dataclass(frozen=True)
class Extraction:
    """What a kind's extract is handed: the configuration, the warehouse, where batches are staged, the
    run's time (the end of a pull's window) and the period (for sources delivered per period)."""

    config: Config
    engine: Engine
    staging_dir: Path
    now: datetime
    period_id: str | None = None

    def batch_id(self, source: SourceSettings) -> str:
        return f"{source.name}-{self.now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"

    def stage(self, batch_id: str, frame: pd.DataFrame, pulled: int) -> int:
        """A batch's canonical dossiers to staging (the records read: `pulled`); returns the rows staged."""
        return warehouse.stage_dossiers(self.engine, batch_id, frame, pulled=pulled, staging_dir=self.staging_dir)


S = TypeVar("S", bound=SourceSettings)


@dataclass(frozen=True)
class SourceKind(Generic[S]):
    """One kind of department system, as the run reads it."""

    settings: type[S]  # its [[sources]] table, typed (baocao.core.sources)
    connector: ModuleType  # what reads the system: a module of baocao.connectors
    storage: Storage
    read_into_warehouse: Callable[[Extraction, S], str]  # extract: returns the batch id

    @property
    def name(self) -> str:
        return self.settings.kind_name()

    def extract(self, extraction: Extraction, source: SourceSettings) -> str:
        if not isinstance(source, self.settings):
            raise ConfigurationError(f"source {source.name}: kind {source.kind} is not read as {self.name}")
        return self.read_into_warehouse(extraction, source)
