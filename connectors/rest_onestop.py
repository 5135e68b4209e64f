"""Source kind `rest_onestop`: the one-stop-shop REST API (department-systems.md §1).

OAuth client-credentials tokens fetched and refreshed on expiry or 401, cursor paging, and
incremental windows by `updated_at`. The field mapping lives in configuration, so another vendor's
dialect of the same API is a configuration change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests

from baocao.connectors.http import HttpClient, TransientFault, read_json
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.errors import FatalError
from baocao.core.sources import RestOneStopSource

log = logging.getLogger(__name__)

# Refresh a little before the token's stated expiry so that a page is not asked with a dying token.
TOKEN_MARGIN_SECONDS = 15


def rfc3339_local(moment: datetime) -> str:
    """A naive local time (UTC+7) as RFC 3339 with its offset."""
    aware = moment.replace(tzinfo=LOCAL_TIMEZONE) if moment.tzinfo is None else moment
    return aware.isoformat(timespec="seconds")


def _shown(cursor: str | None) -> str:
    """A cursor as an error message shows it: quoted, printable, and short (it is the server's text)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(cursor))
    return repr(text if len(text) <= 60 else text[:57] + "...")


class OneStopClient:
    def __init__(self, source: RestOneStopSource, http: HttpClient | None = None) -> None:
        self.source = source
        self.http = http or HttpClient(f"source {source.name}", source.retry)
        self._token: str | None = None
        self._token_expires = 0.0
        self.token_fetches = 0

    def _fetch_token(self) -> None:
        def read(response: requests.Response) -> Any:
            if response.status_code in (400, 401, 403):
                raise FatalError(
                    f"source {self.source.name}: token request refused (HTTP {response.status_code}); "
                    f"check the credentials in ${client_id.env_name}/${client_secret.env_name}"
                )
            if response.status_code != 200:
                raise FatalError(f"source {self.source.name}: token endpoint answered HTTP {response.status_code}")
            return read_json(response)

        client_id, client_secret = self.source.credentials()
        body = self.http.call(
            "POST",
            f"{self.source.base_url}/oauth/token",
            read,
            "token request",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id.value,
                "client_secret": client_secret.value,
            },
        )
        try:
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 300))
        except (KeyError, TypeError, ValueError):
            raise FatalError(f"source {self.source.name}: token response has no access_token") from None
        self._token_expires = time.monotonic() + lifetime - TOKEN_MARGIN_SECONDS
        self.token_fetches += 1

    def _authorised_get(self, path: str, params: dict[str, Any], what: str) -> Any:
        """GET with a valid token; one 401 (token expired early) triggers a new token and one more try."""
        for attempt in (1, 2):
            if self._token is None or time.monotonic() >= self._token_expires:
                self._fetch_token()
            token = self._token

            def read(response: requests.Response) -> Any:
                if response.status_code == 401:
                    return None
                if response.status_code != 200:
                    raise FatalError(f"source {self.source.name}: {what} answered HTTP {response.status_code}")
                body = read_json(response)
                if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                    raise TransientFault(f"{what}: response without a data list")
                return body

            body = self.http.call(
                "GET",
                f"{self.source.base_url}{path}",
                read,
                what,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            if body is not None:
                return body
            log.info("source %s: token rejected (try %d), fetching a new one", self.source.name, attempt)
            self._token = None
        raise FatalError(f"source {self.source.name}: {what} refused with a fresh token (HTTP 401)")

    def dossiers(self, updated_from: datetime | None, updated_to: datetime) -> Iterator[dict[str, Any]]:
        """Every dossier version changed in [updated_from, updated_to), page by page."""
        params: dict[str, Any] = {"updated_to": rfc3339_local(updated_to), "limit": self.source.page_size}
        if updated_from is not None:
            params["updated_from"] = rfc3339_local(updated_from)
        cursor: str | None = None
        # A server that hands back a cursor it gave before, or pages on past max_pages, would keep a
        # worker pulling forever: the pull stops, fatal (the system is wrong; retrying repeats it).
        seen: set[str] = set()
        pages = 0
        while True:
            if cursor:
                params["cursor"] = cursor
            if pages >= self.source.max_pages:
                raise FatalError(
                    f"source {self.source.name}: more than max_pages = {self.source.max_pages} pages in one pull "
                    f"(next cursor {_shown(cursor)}); the system pages without end, or max_pages is too low"
                )
            body = self._authorised_get("/api/v1/dossiers", params, f"dossiers page {pages + 1}")
            pages += 1
            yield from body["data"]
            cursor = body.get("next_cursor")
            if not cursor:
                break
            cursor = str(cursor)
            if cursor in seen:
                raise FatalError(
                    f"source {self.source.name}: page {pages} hands back cursor {_shown(cursor)}, "
                    "already followed in this pull: the system pages in a loop"
                )
            seen.add(cursor)
        log.info("source %s: %d page(s) read", self.source.name, pages)

    def procedures(self) -> list[dict[str, Any]]:
        body = self._authorised_get("/api/v1/procedures", {}, "procedures")
        return list(body["data"])
