"""The admin CLI's HTTP edge: the hub's one HTTP client (``client.hub_http``) with the CLI's
name and defaults. Every failure leaves as an error of ``ledger.errors`` (see ``client.hub_http``
for the table); the message is the API's own, so the user sees what the server said, on one line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from client.hub_http import HubConflict, HubHttp, HubResponse, ServerSentEvent, error_for_status

__all__ = ["AdminApi", "ApiConflict", "ApiResponse", "ServerSentEvent", "error_from_response"]

ApiConflict = HubConflict
ApiResponse = HubResponse
error_from_response = error_for_status


class AdminApi(HubHttp):
    """``async with AdminApi(url, token) as api: await api.request("GET", "/api/v1/config/x")``."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(base_url, token=token, timeout=timeout, user_agent="config-ledger-cli", name="the API")

    async def events(  # type: ignore[override]
        self, path: str, *, last_event_id: str | None = None, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-Sent Events from ``path`` until the server closes the stream."""
        async for event in super().events(path, last_event_id=last_event_id, params=params):
            if event is not None:
                yield event
