"""Who may reach the app: loopback only unless the user gives credentials for a wider bind.

Binding another address than loopback without a login (`--auth USER:PASS` or `--auth-token TOKEN`)
is refused; with one, a warning says that the app can be reached from the network. No share link is
ever made (Gradio's `share`).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from acetune.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class TokenLogin:
    """`--auth-token`: the login page takes any user name and the token as the password (Gradio calls this
    with what was typed); compared in constant time, and never shown in a repr or a log."""

    token: str = field(repr=False)
    message: str = "Any user name; the password is the token the app was started with (--auth-token)."

    def __call__(self, username: str, password: str) -> bool:
        return hmac.compare_digest(password.encode(), self.token.encode())


Login = tuple[str, str] | TokenLogin


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """`USER:PASS` as a pair; a value without both parts is a ConfigError (the password is never echoed)."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError("--auth must be USER:PASS with both parts given", fix="write e.g. --auth me:a-long-password")
    return user, password


def login_of(auth: str | None, token: str | None) -> Login | None:
    """The login `--auth USER:PASS` or `--auth-token TOKEN` asks for (not both; a short token is refused)."""
    if token is None:
        return parse_auth(auth)
    if auth is not None:
        raise ConfigError("both --auth and --auth-token were given", fix="keep one of them")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"--auth-token is shorter than {MIN_TOKEN_CHARS} characters, too easy to guess",
                          fix='make one with: python -c "import secrets; print(secrets.token_urlsafe())"')
    return TokenLogin(token)


def bind_warning(host: str, auth: Login | None) -> str | None:
    """None for loopback; a warning for another address with credentials; a ConfigError without them."""
    if is_loopback(host):
        return None
    if auth is None:
        raise ConfigError(f"--host {host} would let other machines reach the app, and no --auth was given",
                          fix="add --auth USER:PASS (or --auth-token TOKEN), or leave --host at 127.0.0.1 (this "
                              "machine only)")
    return (f"warning: the app listens on {host}: anyone who can reach this machine and knows the password (or "
            "token) can train, write and read files inside the --root folders")
