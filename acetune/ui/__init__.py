"""`acetune ui`: a local web app over acetune's public API and the training loop's events (imports gradio).

Pages: Songs, Preprocess, Train, Generate, Adapters, Jobs. Long work runs as `acetune …` child
processes (`jobs.JobQueue`), followed through their output and a run's events.jsonl.
"""

from acetune.ui.access import DEFAULT_HOST, DEFAULT_PORT, TokenLogin, bind_warning, login_of, parse_auth
from acetune.ui.roots import OutsideRootsError, Roots

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "OutsideRootsError", "Roots", "TokenLogin", "bind_warning", "login_of",
           "parse_auth"]
