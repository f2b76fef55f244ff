"""Where a consent webhook may go. Its payload carries a Global Administrator's Microsoft token, so a
redirectUrl is compared with the reseller's registered URLs as parsed URLs, never as strings:

- scheme, host and port equal to a registered URL's (host lower-cased and IDNA-encoded, default ports made
  explicit); no userinfo, no fragment, no backslash, no control characters or spaces, no percent-encoded host;
- the path is the registered path or lies under it, segment by segment (`/hooks` admits `/hooks/a`, not
  `/hooksevil`), with no `.`/`..` segments and no encoded `/`, `\\` or `.` that could move it elsewhere;
- plain http only for loopback hosts, and only where the deployment allows it (the embedded default).

The same check runs when the redirectUrl is accepted and again before each delivery attempt.
"""

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import idna

from teamsvoice.core.errors import ValidationFailed

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_MAX_LENGTH = 2048


@dataclass(frozen=True)
class WebhookUrl:
    scheme: str
    host: str  # lower-case ASCII (IDNA), IPv6 without brackets
    port: int
    path: str  # "" or "/..." without dot segments or encoded separators
    query: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}" + (f"?{self.query}" if self.query else "")

    def is_under(self, registered: "WebhookUrl") -> bool:
        if self.origin != registered.origin:
            return False
        base = registered.path.rstrip("/")
        return not base or self.path == base or self.path.startswith(base + "/")

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


def _host(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    try:
        return idna.encode(raw.rstrip("."), uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise ValueError(f"host is not a valid domain name ({exc})") from None


def _path(raw: str) -> str:
    for segment in raw.split("/")[1:]:
        decoded = unquote(segment)
        if decoded in (".", ".."):
            raise ValueError("the path must not contain '.' or '..' segments")
        if decoded != segment and any(c in decoded for c in "./\\%"):
            raise ValueError("the path must not contain encoded '.', '/', '\\' or '%'")
    return raw


def parse_webhook_url(url: object, field: str = "redirectUrl") -> WebhookUrl:
    """The URL as parsed and normalised, or ValidationFailed naming what is wrong (never echoing it whole)."""
    if not isinstance(url, str) or not url:
        raise ValidationFailed(f"{field}: must be an absolute URL")
    if len(url) > _MAX_LENGTH:
        raise ValidationFailed(f"{field}: longer than {_MAX_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise ValidationFailed(f"{field}: must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.netloc:
            raise ValueError("must be an absolute https URL")
        if "@" in parts.netloc:
            raise ValueError("must not carry user information (user@host)")
        if "%" in parts.netloc:
            raise ValueError("the host must not be percent-encoded")
        if parts.fragment or "#" in url:
            raise ValueError("must not have a fragment (#)")
        if not parts.hostname:
            raise ValueError("has no host")
        port = parts.port if parts.port is not None else _DEFAULT_PORTS[scheme]
        if port == 0:
            raise ValueError("port 0 is not a port to connect to")
        return WebhookUrl(scheme, _host(parts.hostname), port, _path(parts.path), parts.query)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}") from None


def registered_urls(raw: list[str] | None) -> list[WebhookUrl]:
    """The reseller's registered URLs that still parse (an entry stored before strict parsing may not)."""
    found = []
    for entry in raw or []:
        try:
            found.append(parse_webhook_url(entry))
        except ValidationFailed:
            continue
    return found


def check_redirect_url(url: object, registered: list[str] | None, *, allow_loopback: bool,
                       reseller_id: int | None = None) -> str:
    """The normalised URL a webhook may be delivered to, or ValidationFailed (naming the fix when the URL is
    merely not registered: the operator's `teamsvoice register-redirect-url` command)."""
    target = parse_webhook_url(url)
    if target.scheme == "http" and target.is_loopback and allow_loopback:
        return str(target)
    if target.scheme != "https":
        raise ValidationFailed("redirectUrl: must be an https URL")
    if not any(target.is_under(base) for base in registered_urls(registered)):
        # The reason does not echo the URL (it is the caller's text); it names the fix.
        reseller = reseller_id if reseller_id is not None else "RESELLER_ID"
        raise ValidationFailed(f"redirectUrl: not registered for this reseller; an operator of this teamsvoice registers "
                               f"it (or a prefix of it) with `teamsvoice register-redirect-url {reseller} URL`. A "
                               f"registered URL matches when the redirectUrl has its scheme, host and port, and a path "
                               f"at or below its path")
    return str(target)


def check_registration(url: str) -> str:
    """A URL an operator registers: https, no query; stored normalised."""
    parsed = parse_webhook_url(url, "redirect URL")
    if parsed.scheme != "https":
        raise ValidationFailed("redirect URL: must be an absolute https URL")
    if parsed.query:
        raise ValidationFailed("redirect URL: must not have a query")
    return str(parsed)
