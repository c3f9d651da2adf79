"""What the Dagster resources hide and refuse so that a secret is never shown or sent in clear text.

* :class:`MaskedSecrets`: ``repr()`` and ``str()`` of a resource show its secret fields as
  ``************`` (as the mParticle client's models do), however the value was bound; a field still
  bound to a ``dagster.EnvVar`` shows the variable's name instead, which is not secret.
* :func:`url_problem`: the mParticle token URL and API root must be ``https://`` (plain ``http://``
  only on a loopback host, where the local emulator listens), and must be absolute URLs.
"""

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import dagster as dg
from dagster_snowflake import SnowflakeResource

from wsync_dagster.mparticle import MASKED_SECRET

# The mParticle resource's URL fields, and the variables that set them in production.
URL_SETTINGS = {"api_root": "MPARTICLE_API_ROOT", "token_url": "MPARTICLE_TOKEN_URL"}


class _Shown:
    """A value as repr() should write it (pydantic's repr writes each field as ``name=repr(v)``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class MaskedSecrets:
    """Mixed into a pydantic model before it: ``secret_fields`` show masked in repr and str."""

    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        shown = super().__repr_args__  # pyright: ignore[reportAttributeAccessIssue]
        for name, value in shown():
            if name in self.secret_fields and value is not None:
                if isinstance(value, dg.EnvVar):
                    value = _Shown(f"EnvVar({value.env_var_name!r})")
                else:
                    value = MASKED_SECRET
            yield name, value


class MaskedSnowflakeResource(MaskedSecrets, SnowflakeResource):
    """dagster-snowflake's resource, with its password and private key masked when shown."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password", "private_key", "private_key_password")


UrlFault = Literal["not absolute", "clear text"]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_fault(url: str) -> UrlFault | None:
    """What makes ``url`` unfit to carry a secret, None when fine: ``"not absolute"`` (no http(s)
    scheme or no host), or ``"clear text"`` (plain http:// to a host that is not loopback:
    127.0.0.0/8, ::1, localhost). Callers word the message for the secret they would send."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        return "not absolute"
    if scheme == "http" and not _is_loopback(parts.hostname):
        return "clear text"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` must not receive the client secret or a token, with the fix; None when fine."""
    fault = url_fault(url)
    if fault == "not absolute":
        return (
            "is not an absolute URL: write it with its scheme and host, "
            "e.g. https://api.mparticle.com or https://sso.auth.mparticle.com/oauth/token"
        )
    if fault == "clear text":
        return (
            "uses http://, which would send the client secret and every token in clear text: "
            "use https:// (plain http:// is accepted only on a loopback host: 127.0.0.0/8, ::1, "
            "localhost)"
        )
    return None


def checked_url(value: Any, field: str) -> Any:
    """``value`` if it is a safe URL (or an unresolved EnvVar, checked once resolved), else raise."""
    resolved = isinstance(value, str) and not isinstance(value, dg.EnvVar)
    if resolved and (problem := url_problem(value)):
        raise ValueError(f"{field} ({URL_SETTINGS[field]}) {value!r} {problem}")
    return value


def url_setting_problems(environ: Mapping[str, str]) -> list[str]:
    """One line per URL variable of the production code location that is set to an unsafe value."""
    return [
        f"{name}={environ[name]!r} {problem}"
        for name in URL_SETTINGS.values()
        if environ.get(name) and (problem := url_problem(environ[name]))
    ]
