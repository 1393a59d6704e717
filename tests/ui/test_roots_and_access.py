"""Security of the web app: files only inside the roots, loopback unless credentials are given, login enforced."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from acetune.cli.app import main
from acetune.errors import AcetuneError, ConfigError
from acetune.ui import OutsideRootsError, Roots, bind_warning, login_of, parse_auth


def test_paths_inside_the_roots_resolve_and_others_are_refused(tmp_path):
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "songs").mkdir(parents=True)
    other.mkdir()
    (root / "escape").symlink_to(other)
    roots = Roots.of([root])
    assert roots.check("songs") == root / "songs"  # relative paths start at the first root
    assert roots.check(root / "songs" / ".." / "songs") == root / "songs"
    for outside in ("../other", str(other), "songs/../../other", "escape", "escape/file.wav", "/etc/passwd"):
        with pytest.raises(OutsideRootsError) as caught:
            roots.check(outside)
        assert "outside the folders" in str(caught.value) and "--root" in caught.value.fix
    with pytest.raises(OutsideRootsError, match="does not exist"):
        roots.check("missing", must_exist=True)


def test_a_root_must_be_an_existing_folder(tmp_path):
    with pytest.raises(Exception, match="not an existing folder"):
        Roots.of([tmp_path / "nope"])


def test_loopback_needs_nothing_and_other_addresses_need_credentials():
    assert bind_warning("127.0.0.1", None) is None and bind_warning("localhost", None) is None
    assert bind_warning("::1", None) is None
    with pytest.raises(ConfigError, match="--auth"):
        bind_warning("0.0.0.0", None)
    assert "0.0.0.0" in bind_warning("0.0.0.0", ("me", "secret"))
    assert "secret" not in bind_warning("0.0.0.0", ("me", "secret"))
    assert parse_auth("me:pa:ss") == ("me", "pa:ss")
    for bad in ("me", "me:", ":pass"):
        with pytest.raises(ConfigError) as caught:
            parse_auth(bad)
        assert "pass" not in str(caught.value).split("fix:")[0].replace("USER:PASS", "")


def test_the_command_refuses_a_wide_bind_without_auth(capsys):
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --host 0.0.0.0 would let other machines reach the app") and "fix: add --auth" in err


def test_the_default_bind_is_loopback():
    from acetune.cli.ui_cmd import ui_command
    from acetune.ui import DEFAULT_HOST

    assert inspect.signature(ui_command).parameters["host"].default.default == "127.0.0.1" == DEFAULT_HOST


def test_a_request_without_credentials_is_refused(tmp_path, port):
    from acetune.ui.app import launch
    from acetune.ui.context import UiContext

    ctx = UiContext.open(Roots.of([tmp_path]))
    app = launch(ctx, host="127.0.0.1", port=port, auth=("me", "secret"), block=False)
    try:
        assert app.server_name == "127.0.0.1" and not app.share
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config")
        assert caught.value.code == 401
        login = urllib.request.Request(f"http://127.0.0.1:{port}/login", method="POST",
                                       data=b"username=me&password=wrong")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(login)
        assert caught.value.code in (400, 401)
        with pytest.raises(urllib.error.HTTPError):  # no file outside the roots, with or without login
            urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/file=/etc/passwd")
    finally:
        app.close()
        ctx.queue.close()


def test_help_imports_neither_gradio_nor_torch():
    code = ("import sys\nfrom acetune.cli.app import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(['gradio' in sys.modules, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False]


def test_the_default_roots_are_the_current_folder_and_the_checkpoints_folder(tmp_path, monkeypatch):
    here, checkpoints = tmp_path / "here", tmp_path / "ckpt"
    here.mkdir()
    checkpoints.mkdir()
    monkeypatch.chdir(here)
    assert Roots.default(None, checkpoints).folders == (here, checkpoints)
    assert Roots.default([tmp_path / "ckpt"], None).folders == (checkpoints,)
    assert Roots.default(None, None).folders == (here,)
    roots = Roots.default(None, checkpoints)
    assert roots.check(str(checkpoints / "vae")) == checkpoints / "vae"  # the checkpoints are reachable
    with pytest.raises(AcetuneError, match="--checkpoint-dir is not an existing folder") as caught:
        Roots.default(None, tmp_path / "missing")
    assert caught.value.path == tmp_path / "missing"


def test_the_checkpoints_folder_prefills_every_checkpoints_field(tmp_path):
    from acetune.ui.app import build_app
    from acetune.ui.context import UiContext

    root, checkpoints = tmp_path / "root", tmp_path / "ckpt"
    root.mkdir()
    checkpoints.mkdir()
    ctx = UiContext.open(Roots.default([root], checkpoints), checkpoint_dir=checkpoints)
    try:
        values = {block.elem_id: getattr(block, "value", None) for block in build_app(ctx).blocks.values()
                  if getattr(block, "elem_id", None)}
    finally:
        ctx.queue.close()
    fields = ("label-checkpoints", "pre-checkpoints", "cfg-data-checkpoint_dir", "gen-checkpoints",
              "merge-checkpoints")
    assert {name: values[name] for name in fields} == dict.fromkeys(fields, str(checkpoints))


def test_a_token_login_takes_the_token_as_the_password_and_hides_it():
    token = "a-token-long-enough-1234"
    login = login_of(None, token)
    assert login("anyone", token) and login("me", token) and not login("me", token[:-1]) and not login("me", "")
    assert token not in repr(login) and token not in bind_warning("0.0.0.0", login)
    assert login_of("me:secret", None) == ("me", "secret") and login_of(None, None) is None
    with pytest.raises(ConfigError, match="both --auth and --auth-token"):
        login_of("me:secret", token)
    with pytest.raises(ConfigError, match="shorter than 16") as caught:
        login_of(None, "short")
    assert "short" not in str(caught.value).replace("shorter", "")


def test_the_app_lets_in_the_token_and_nobody_else(tmp_path, port):
    from http.cookiejar import CookieJar

    from acetune.ui.app import launch
    from acetune.ui.context import UiContext

    token = "a-token-long-enough-1234"
    ctx = UiContext.open(Roots.of([tmp_path]))
    app = launch(ctx, host="127.0.0.1", port=port, auth=login_of(None, token), block=False)
    base = f"http://127.0.0.1:{port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{base}/config")
        assert caught.value.code == 401
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with pytest.raises(urllib.error.HTTPError):
            browser.open(f"{base}/login", data=b"username=me&password=not-the-token")
        browser.open(f"{base}/login", data=f"username=anyone&password={token}".encode())
        assert browser.open(f"{base}/config").status == 200  # logged in: the app answers
    finally:
        app.close()
        ctx.queue.close()
