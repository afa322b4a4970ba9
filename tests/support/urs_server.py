"""A fake Earthdata Login (URS): exchanges a username and password for a bearer token."""

from __future__ import annotations

import base64

from titiler_cmr_compatibility.sample.server import LocalHTTPServer, Request, Response


class FakeURS(LocalHTTPServer):
    """`POST /api/users/find_or_create_token` with HTTP basic auth, as earthaccess uses it."""

    def __init__(self, username: str, password: str, token: str, html: bool = False) -> None:
        super().__init__()
        self._expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.token = token
        self.html = html  # answer a good login with a web page, as a misrouted URS would

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/api/users/find_or_create_token":
            return Response.json({"error": "not found"}, status=404)
        if request.headers.get("Authorization") != self._expected:
            return Response.json({"error": "invalid_credentials"}, status=401)
        if self.html:
            return Response.text("<html><body>Earthdata Login</body></html>", content_type="text/html")
        return Response.json({"access_token": self.token, "token_type": "Bearer", "expiration_date": "1/1/2099"})
