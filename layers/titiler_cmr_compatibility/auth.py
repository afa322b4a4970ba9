"""Earthdata credentials: a bearer token for https links, temporary S3 keys for s3:// links.

Sources, first that gives a value: `EARTHDATA_TOKEN`; `EARTHDATA_USERNAME`/`EARTHDATA_PASSWORD`
(exchanged once for a token at URS); SSM SecureString parameters named by the
`EARTHDATA_*_PARAMETER` settings (how Lambda workers get them, with their own role). Without any,
checks still run and protected data come out `forbidden`. Every secret is registered with
`result.register_secret`, so no log line, result or exception carries it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin, urlparse

import requests

from .result import register_secret, scrub
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

# Temporary S3 credentials live about an hour; renew this long before they expire.
_S3_CREDENTIALS_MARGIN_S = 300


class AuthError(Exception):
    """Credentials could not be obtained (the message holds no secrets)."""


class UnsafeHost(Exception):
    """A URL from a record names a host this tool must not contact."""


def may_receive_token(url: str, settings: Settings) -> bool:
    """The Earthdata token goes only to `token_hosts` (and their subdomains), and only over
    https, except loopback when the settings opt in to it (the tests' fake NASA)."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower().rstrip(".")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and _loopback_allowed(host, settings)):
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in settings.token_hosts)


def _loopback_allowed(host: str, settings: Settings) -> bool:
    if not settings.allow_loopback_hosts:
        return False
    try:
        return all(address.is_loopback for address in _addresses(host))
    except (OSError, UnicodeError):  # a host that does not resolve is not loopback
        return False


def refuse_unsafe_host(url: str, settings: Settings) -> None:
    """Raise `UnsafeHost` if the URL's host is, or resolves to, a link-local, private, loopback
    (unless allowed), multicast or unspecified address: a record must not make this tool probe
    the instance metadata service or the network it runs in."""
    host = urlparse(url).hostname
    if not host:
        raise UnsafeHost("the link names no host")
    try:
        addresses = _addresses(host)
    except (OSError, UnicodeError) as error:
        raise UnsafeHost(f"the host {host} does not resolve ({type(error).__name__})") from None
    for address in addresses:
        if address.is_loopback and settings.allow_loopback_hosts:
            continue
        if (address.is_link_local or address.is_private or address.is_loopback or address.is_multicast
                or address.is_unspecified or address.is_reserved):  # fmt: skip
            raise UnsafeHost(f"the host {host} is a {_kind(address)} address ({address}), which is never contacted")


# Earthdata's own chain is data host -> URS -> data host -> signed S3 URL; more is a loop.
MAX_REDIRECTS = 8


def walk_redirects(url: str, token: str | None, settings: Settings, timeout: float) -> bool:
    """Follow the redirects a request for `url` meets, as obstore will, before obstore does; return
    whether obstore may be given the token.

    obstore (reqwest) follows redirects to any host, and although it drops the token when a hop
    changes host, it puts it back on a hop that stays on the same host, even a foreign one: a
    chain that leaves the token's hosts and redirects again would hand the token over. So every
    hop must be a host this tool may contact (`UnsafeHost` otherwise), the walk sends the token
    only to hosts that may receive it, and a chain that redirects again after leaving them is
    read without the token. The walk uses HEAD requests (no data bytes); a host that answers
    HEAD without a redirect, or cannot be reached, is left for obstore to read and report.
    """
    trusted = True
    for _hop in range(MAX_REDIRECTS):
        refuse_unsafe_host(url, settings)
        headers = {"Authorization": f"Bearer {token}"} if token and may_receive_token(url, settings) else {}
        try:
            with requests.head(url, headers=headers, timeout=timeout, allow_redirects=False) as answer:
                location = answer.headers.get("Location") if answer.is_redirect else None
        except requests.RequestException:
            return trusted
        if location is None:
            return trusted
        if not may_receive_token(url, settings):
            trusted = False
        url = urljoin(url, location)
    return trusted


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        found = {host.strip("[]")}
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    addresses = [ipaddress.ip_address(address.split("%")[0]) for address in found]
    # ::ffff:169.254.169.254 is 169.254.169.254.
    return [getattr(address, "ipv4_mapped", None) or address for address in addresses]


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    for kind in ("link_local", "loopback", "multicast", "unspecified", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "forbidden"


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float  # epoch seconds

    def __repr__(self) -> str:  # never print the keys, even in a debugger or traceback
        return f"S3Credentials(expires_at={self.expires_at})"


class EarthdataAuth:
    """Resolves credentials lazily and caches them; safe to share between threads."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_resolved = False
        self._s3: dict[str, S3Credentials] = {}

    def __getstate__(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()  # a copy made in a forked child must not inherit a held lock

    def token(self) -> str | None:
        with self._lock:
            if not self._token_resolved:
                self._token = self._resolve_token()
                self._token_resolved = True
                register_secret(self._token)
            return self._token

    def _resolve_token(self) -> str | None:
        settings = self.settings
        if settings.earthdata_token:
            return settings.earthdata_token.get_secret_value()
        username = settings.earthdata_username
        password = settings.earthdata_password.get_secret_value() if settings.earthdata_password else None
        if settings.earthdata_token_parameter:
            token = _ssm_secret(settings.earthdata_token_parameter)
            if token:
                return token
        if not (username and password) and settings.earthdata_username_parameter:
            username = _ssm_secret(settings.earthdata_username_parameter)
            password = _ssm_secret(settings.earthdata_password_parameter) if settings.earthdata_password_parameter else None
        if username and password:
            register_secret(password)
            return self._token_from_login(username, password)
        return None

    def _token_from_login(self, username: str, password: str) -> str:
        """URS hands out (or creates) a bearer token for a username and password."""
        url = f"{self.settings.urs_url}/api/users/find_or_create_token"
        try:
            response = requests.post(url, auth=(username, password), timeout=self.settings.cmr_timeout)
        except requests.RequestException as error:
            raise AuthError(scrub(f"Earthdata login failed: {type(error).__name__}: {error}")) from None
        if response.status_code != 200:
            raise AuthError(f"Earthdata login failed: HTTP {response.status_code}")
        try:
            token = response.json().get("access_token")
        except (ValueError, AttributeError):
            raise AuthError("Earthdata login answered with something that is not a JSON token") from None
        if not token:
            raise AuthError("Earthdata login answered without an access token")
        return token

    @property
    def has_credentials(self) -> bool:
        return self.token() is not None

    def s3_credentials(self, endpoint: str, timeout: float) -> S3Credentials:
        """Temporary S3 keys from a DAAC's s3credentials endpoint, cached until near expiry."""
        with self._lock:
            cached = self._s3.get(endpoint)
            if cached and cached.expires_at - time.time() > _S3_CREDENTIALS_MARGIN_S:
                return cached
        if not may_receive_token(endpoint, self.settings):
            host = urlparse(endpoint).hostname
            raise AuthError(f"the s3credentials endpoint's host {host} is not an Earthdata host (token_hosts): "
                            "the token is not sent there")
        try:
            refuse_unsafe_host(endpoint, self.settings)
        except UnsafeHost as error:
            raise AuthError(str(error)) from None
        token = self.token()
        if token is None:
            raise AuthError("no Earthdata credentials: direct S3 access needs them")
        try:
            response = requests.get(
                endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
            )
        except requests.RequestException as error:
            raise AuthError(scrub(f"s3credentials request failed: {type(error).__name__}: {error}")) from None
        if response.status_code in (401, 403):
            raise AuthError(f"s3credentials endpoint refused the credentials (HTTP {response.status_code})")
        if response.status_code != 200:
            raise AuthError(f"s3credentials endpoint answered HTTP {response.status_code}")
        try:
            body = response.json()
            credentials = S3Credentials(
                access_key_id=body["accessKeyId"],
                secret_access_key=body["secretAccessKey"],
                session_token=body["sessionToken"],
                expires_at=_parse_expiration(body.get("expiration")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise AuthError(f"s3credentials endpoint answered an unexpected body ({type(error).__name__})") from None
        for secret in (credentials.access_key_id, credentials.secret_access_key, credentials.session_token):
            register_secret(secret)
        with self._lock:
            self._s3[endpoint] = credentials
        return credentials


    def s3_credentials_held(self) -> dict[str, S3Credentials]:
        with self._lock:
            return dict(self._s3)

    def remember_s3_credentials(self, held: dict[str, S3Credentials]) -> None:
        """Keys another copy of this object obtained (a check's child process)."""
        with self._lock:
            for endpoint, credentials in held.items():
                if endpoint not in self._s3 or self._s3[endpoint].expires_at < credentials.expires_at:
                    self._s3[endpoint] = credentials


def _parse_expiration(value: str | None) -> float:
    """s3credentials answers e.g. '2024-10-11 12:00:00+00:00'; assume an hour when absent."""
    if not value:
        return time.time() + 3600
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _ssm_secret(name: str) -> str | None:
    import boto3

    try:
        value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except Exception as error:  # any AWS failure: report the parameter name, never a value
        raise AuthError(f"could not read SSM parameter {name}: {type(error).__name__}") from None
    register_secret(value)
    return value or None
