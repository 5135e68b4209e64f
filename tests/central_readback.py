"""Reading back what the central sandbox holds, as the province would (GET /submissions)."""

from __future__ import annotations

from typing import Any

import requests


def submissions(base_url: str, token: str, report_type: str, period_id: str) -> list[dict[str, Any]]:
    """The receipts the sandbox lists for one report and period (central-api.md's read-back endpoint)."""
    response = requests.get(
        f"{base_url}/submissions",
        params={"report_type": report_type, "period": period_id},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json())
