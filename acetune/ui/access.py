"""Who may reach the app: loopback only unless the user gives credentials for a wider bind.

Binding another address than loopback without `--auth USER:PASS` is refused; with it, a warning
says that the app can be reached from the network. No share link is ever made (Gradio's `share`).
"""

from __future__ import annotations

import ipaddress

from acetune.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


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


def bind_warning(host: str, auth: tuple[str, str] | None) -> str | None:
    """None for loopback; a warning for another address with credentials; a ConfigError without them."""
    if is_loopback(host):
        return None
    if auth is None:
        raise ConfigError(f"--host {host} would let other machines reach the app, and no --auth was given",
                          fix="add --auth USER:PASS, or leave --host at 127.0.0.1 (this machine only)")
    return (f"warning: the app listens on {host}: anyone who can reach this machine and knows the password can "
            "train, write and read files inside the --root folders")
