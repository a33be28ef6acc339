"""Credentials inside URLs: which parts of a URL are secret, how a URL is shown without them,
and how an option of type "url" is stored (its secret parts encrypted, the rest searchable).

**The rule.** A URL's user info (`user:password@`, both parts) is secret, and so is the value of
every query parameter whose name looks like a credential: its name, lowercased with everything
but letters and digits removed, contains one of `SECRET_NAME_PARTS` (token, secret, passw, pwd,
auth, apikey, accesskey, signature, credential, session, jwt, hmac, private, hash) or ends with
one of `SECRET_NAME_ENDINGS` (key, sig, sign, pass, pw, code). So `token`, `api_key`, `apiKey`,
`access_token`, `access_key_id`, `client_secret`, `password`, `pass`, `sig`, `signature`,
`auth`, `X-Amz-Signature`, `key`, `jwt`, `hmac`, `private`, `hash`, `code` and `auth_code` are
secret, and `page` or `format` are not. The rule errs on the side of hiding: a parameter it hides by mistake
(`sort_key`) still reaches the receiver, it is only shown as `********`.

**Storage.** For an option declared `type="url"`, the plain options keep the URL with each
secret part replaced by `MASK` (`https://********:********@hooks.example.com/in?token=********&
x=1`), and the secret options keep the whole URL under the same key, encrypted at rest.
`ConnectorOptionsMixin.connector_options()` lays the secret options over the plain ones, so a
connector receives the whole URL and nothing else needs to know. A URL without secret parts is
stored as is, and no secret copy is kept.

**Editing.** The masked URL is what the API and the admin show, and it re-applies cleanly: a
submitted URL whose secret parts are still `MASK` gets them back from the stored URL (by
position for the user info, by name and order for query parameters), but only while the scheme,
host and port stay the same, so a masked credential can never be redirected to another host.

**Secrets bound to a URL.** A connector may bind other secret options to a URL option
(`url_bound_secrets = {"url": ("authorization", "secret")}` on the webhook app): they are sent
to that URL's host. An update that moves the URL to another scheme, host or port while keeping
such a secret from before (not given again in the same update) is refused
(`moved_url_errors`), so a stored credential never follows the URL to a new host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, unquote_plus, urlsplit, urlunsplit

MASK = "********"
SECRET_NAME_PARTS = (
    "token",
    "secret",
    "passw",
    "pwd",
    "auth",
    "apikey",
    "accesskey",
    "signature",
    "credential",
    "session",
    "jwt",
    "hmac",
    "private",
    "hash",
)
SECRET_NAME_ENDINGS = ("key", "sig", "sign", "pass", "pw", "code")
URL_OPTION_TYPE = "url"
DEFAULT_PORTS = {"http": 80, "https": 443}


def secret_parameter(name: str) -> bool:
    """True when a query parameter of this (decoded) name holds a credential (see the rule)."""
    folded = re.sub(r"[^a-z0-9]", "", name.lower())
    return any(part in folded for part in SECRET_NAME_PARTS) or folded.endswith(SECRET_NAME_ENDINGS)


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts


def _userinfo(parts: SplitResult) -> tuple[str | None, str | None, str]:
    """(user, password, host[:port]) of the netloc, raw (percent-encoded as written)."""
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return None, None, parts.netloc
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), hostport


def _netloc(user: str | None, password: str | None, hostport: str) -> str:
    if user is None and password is None:
        return hostport
    return f"{user or ''}{'' if password is None else ':' + password}@{hostport}"


def _pairs(query: str) -> list[tuple[str, str | None]]:
    """The query's raw `name=value` pieces as (name, value); value None for a bare `name`."""
    out: list[tuple[str, str | None]] = []
    for piece in query.split("&") if query else []:
        name, eq, value = piece.partition("=")
        out.append((name, value if eq else None))
    return out


def _query(pairs: Iterable[tuple[str, str | None]]) -> str:
    return "&".join(name if value is None else f"{name}={value}" for name, value in pairs)


def _secret_pair(name: str, value: str | None) -> bool:
    return bool(value) and secret_parameter(unquote_plus(name))


def mask_url(url: str) -> str:
    """The URL with its user info and credential query values replaced by MASK (a value that
    is not a URL is returned unchanged)."""
    parts = _split(url) if isinstance(url, str) else None
    if parts is None or not parts.scheme:
        return url
    user, password, hostport = _userinfo(parts)
    netloc = _netloc(MASK if user else user, MASK if password else password, hostport)
    query = _query((n, MASK if _secret_pair(n, v) else v) for n, v in _pairs(parts.query))
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_secrets(url: str) -> list[str]:
    """Every secret value in the URL, as written and percent-decoded, longest first."""
    parts = _split(url) if isinstance(url, str) else None
    if parts is None:
        return []
    user, password, _ = _userinfo(parts)
    raw = [v for v in (user, password) if v]
    raw += [v for n, v in _pairs(parts.query) if v and _secret_pair(n, v)]
    found = {form for value in raw for form in (value, unquote(value), unquote_plus(value)) if form}
    return sorted(found - {MASK}, key=lambda v: (-len(v), v))


def has_masked_parts(url: str) -> bool:
    """True when a secret part of the URL is the MASK placeholder (its credential is missing)."""
    parts = _split(url) if isinstance(url, str) else None
    if parts is None:
        return False
    user, password, _ = _userinfo(parts)
    return MASK in (user, password) or any(
        v == MASK and _secret_pair(n, v) for n, v in _pairs(parts.query)
    )


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def restore_url(url: str, stored: str | None) -> str:
    """`url` with each MASK put back from `stored` (the whole URL stored before).

    Raises ValueError, with a message safe to show, when a MASK has nothing to stand for or
    the stored URL was for another scheme, host or port."""
    if not has_masked_parts(url):
        return url
    parts, old = _split(url), _split(stored) if isinstance(stored, str) else None
    assert parts is not None
    if old is None:
        raise ValueError(
            f"The URL's masked parts ({MASK}) stand for stored credentials, and this app has none "
            "yet: type the credentials again."
        )
    if _origin(parts) != _origin(old):
        raise ValueError(
            f"The URL's masked parts ({MASK}) keep the stored credentials only for the same "
            "scheme, host and port: type the credentials again for the new address."
        )
    missing = ValueError(
        f"The URL's masked parts ({MASK}) stand for a credential the stored URL does not have: "
        "type the credentials again."
    )
    user, password, hostport = _userinfo(parts)
    old_user, old_password, _ = _userinfo(old)
    if (user == MASK and not old_user) or (password == MASK and not old_password):
        raise missing
    user = old_user if user == MASK else user
    password = old_password if password == MASK else password
    previous: dict[str, list[str | None]] = {}
    for name, value in _pairs(old.query):
        previous.setdefault(name, []).append(value)
    seen: dict[str, int] = {}
    pairs = []
    for name, value in _pairs(parts.query):
        index = seen[name] = seen.get(name, -1) + 1
        if value == MASK and _secret_pair(name, value):
            candidates = previous.get(name, [])
            if index >= len(candidates) or not candidates[index]:
                raise missing
            value = candidates[index]
        pairs.append((name, value))
    restored = urlunsplit(
        parts._replace(netloc=_netloc(user, password, hostport), query=_query(pairs))
    )
    return restored


def moved_url_errors(
    bound: Mapping[str, Iterable[str]],
    options: Mapping[str, Any],
    secrets: Mapping[str, Any],
    stored: Mapping[str, Any],
    given: Iterable[str],
) -> dict[str, str]:
    """{URL option key: error} for each URL option in `bound` whose new value (in `options`)
    points at another scheme, host or port than the stored one while a secret bound to it is
    set (in `secrets`, the secrets after the update) without being in `given` (the secret keys
    this update gives a value for).

    stored: the object's options before the update, plain overlaid with secret ones (the whole
    stored URL under each key); empty for a new object, which nothing is kept from."""
    errors: dict[str, str] = {}
    given = set(given)
    for key, secret_keys in bound.items():
        before, after = stored.get(key), options.get(key)
        old = _split(before) if isinstance(before, str) else None
        new = _split(after) if isinstance(after, str) else None
        if old is None or new is None or not old.netloc or _origin(old) == _origin(new):
            continue
        kept = [k for k in secret_keys if secrets.get(k) not in (None, "") and k not in given]
        if kept:
            errors[key] = (
                f"The URL now points at another host: give {' and '.join(kept)} again, as "
                f"{'they were' if len(kept) > 1 else 'it was'} set for the old one."
            )
    return errors


def url_option_keys(declared: Iterable[Any]) -> list[str]:
    """Keys of the options declared with type "url"."""
    return [o.key for o in declared if getattr(o, "type", "") == URL_OPTION_TYPE]


def split_url_options(
    declared: Iterable[Any],
    options: Mapping[str, Any],
    secrets: Mapping[str, Any],
    stored: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Store each url-type option as the module docstring says.

    options: the plain options as submitted (a URL whole, or masked as the API and admin show it).
    secrets: the secret options (a secret copy of a url option in it is recomputed).
    stored: what the object holds now, plain options overlaid with secret ones (so the whole
      stored URL under each key), to put masked parts back.
    Returns (plain options, secret options, {option key: error}). Pure; idempotent."""
    plain, hidden = dict(options), dict(secrets)
    errors: dict[str, str] = {}
    for key in url_option_keys(declared):
        hidden.pop(key, None)
        value = plain.get(key)
        if not isinstance(value, str) or not value:
            continue
        try:
            whole = restore_url(value, (stored or {}).get(key))
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        masked = mask_url(whole)
        plain[key] = masked
        if masked != whole:
            hidden[key] = whole
    return plain, hidden, errors


def mask_url_options(declared: Iterable[Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with each url-type option masked (for display; rows stored before the split
    still hold whole URLs in their plain options)."""
    out = dict(options)
    for key in url_option_keys(declared):
        if isinstance(out.get(key), str):
            out[key] = mask_url(out[key])
    return out
