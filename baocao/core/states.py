"""The states a batch and a submission go through, as stored in `batches.state` and `submissions.state`.

StrEnums: a member equals the string stored for it, so rows written before these types existed read
back as the same states, and queries compare the column with a member directly.
"""

from __future__ import annotations

from enum import StrEnum


class BatchState(StrEnum):
    """A batch of dossiers is STAGED by extract and MERGED by the merge; a file stored whole (a
    catalogue, a score workbook, a petition export) ends STORED, REJECTED or FAILED instead.

    A batch its process left STAGED (killed, or stopped by an error, between start and merge) is taken
    up by the next extract of its source (`baocao.run.leftovers`): merged if its staged file is whole
    and nothing newer was merged since, else ABANDONED. Nothing is lost either way: the source's
    watermark moves only when a batch merges, so the next pull reads the abandoned batch's window again.
    """

    STAGED = "STAGED"  # pulled and staged, not yet merged
    MERGED = "MERGED"  # its valid dossiers are in `dossiers`, the source's watermark moved
    STORED = "STORED"  # a whole file stored in place of what its source stored before
    REJECTED = "REJECTED"  # the file was refused (reasons in quarantine); what was stored stays
    FAILED = "FAILED"  # the file could not be fetched: try again later
    ABANDONED = "ABANDONED"  # left STAGED by a run that died; retired by the next (its window is read again)


class SubmissionState(StrEnum):
    """A submission in the ledger: frozen before the first POST, then what the central answered."""

    FROZEN = "FROZEN"  # payload and key fixed; not yet acknowledged
    ACCEPTED = "ACCEPTED"  # receipt stored
    REJECTED = "REJECTED"  # central refused the content: a fixed payload may replace it
    FAILED = "FAILED"  # key reused or version conflict: a person must look
