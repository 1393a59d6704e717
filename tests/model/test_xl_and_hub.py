"""XL specifics on a tiny XL config, and Hub repo ids (downloads mocked: this machine is offline)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from acetune.errors import ModelLoadError
from acetune.model import build_tiny_model, load_model
from acetune.model import hub


def condition_inputs(text_dim: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return dict(
        text_hidden_states=torch.randn(2, 5, text_dim, generator=g), text_attention_mask=torch.ones(2, 5),
        lyric_hidden_states=torch.randn(2, 6, text_dim, generator=g), lyric_attention_mask=torch.ones(2, 6),
        refer_audio_acoustic_hidden_states_packed=torch.randn(2, 10, 64, generator=g),
        refer_audio_order_mask=torch.tensor([0, 1]),
    )


def test_xl_timbre_encoder_reads_its_special_token_and_2b_does_not():
    for name, uses_token in (("tiny-xl", True), ("tiny", False)):
        model = build_tiny_model(name).eval()
        with torch.no_grad():
            before, _ = model.encoder(*condition_inputs().values())
            model.encoder.timbre_encoder.special_token.add_(1.0)
            after, _ = model.encoder(*condition_inputs().values())
        assert (not torch.equal(before, after)) == uses_token, name


def test_xl_decoder_runs_on_condition_width_states():
    model = build_tiny_model("tiny-xl").eval()
    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(1, 21, 64, generator=g), torch.randn(1, 21, 128, generator=g)
    enc = torch.randn(1, 9, 64, generator=g)  # condition side is 64 wide, the decoder 96
    t = torch.tensor([0.5])
    with torch.no_grad():
        out = model.decoder(x, t, t, enc, ctx)
    assert out.shape == (1, 21, 64) and torch.isfinite(out).all()


def test_repo_id_downloads_only_weights_and_configs(tiny_checkpoint, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no local ACE-Step/ folder here
    calls = {}
    snapshot = tmp_path / "snapshot"
    shutil.copytree(tiny_checkpoint, snapshot / "acestep-v15-turbo")

    def fake_snapshot_download(repo_id, allow_patterns=None, **_):
        calls.update(repo_id=repo_id, allow_patterns=allow_patterns)
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    loaded = load_model("ACE-Step/Ace-Step1.5")
    assert calls["repo_id"] == "ACE-Step/Ace-Step1.5"
    assert all(p.startswith("acestep-v15-turbo/") for p in calls["allow_patterns"])
    assert not any(p.endswith(".py") for p in calls["allow_patterns"])
    assert loaded.folder == snapshot / "acestep-v15-turbo"


def test_offline_download_fails_with_a_plain_message(monkeypatch, tmp_path):
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.chdir(tmp_path)

    def offline(*_, **__):
        raise LocalEntryNotFoundError("Got: ConnectError: [Errno -2] Name or service not known")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(ModelLoadError, match="could not download ACE-Step/acestep-v15-base from the Hugging Face Hub") as err:
        load_model("ACE-Step/acestep-v15-base")
    assert "internet connection" in str(err.value)


@pytest.fixture()
def no_download(monkeypatch):
    """The Hub must not be asked: any download attempt fails the test."""
    monkeypatch.setattr("huggingface_hub.snapshot_download",
                        lambda repo_id, **_: pytest.fail(f"{repo_id} was sent to the Hugging Face Hub"))


@pytest.mark.parametrize("text, repo_id, subfolder", [
    ("ACE-Step/Ace-Step1.5", "ACE-Step/Ace-Step1.5", "acestep-v15-turbo"),
    ("ACE-Step/Ace-Step1.5/acestep-v15-base", "ACE-Step/Ace-Step1.5", "acestep-v15-base"),
    ("ACE-Step/acestep-v15-base", "ACE-Step/acestep-v15-base", ""),
    ("hf://someone/bundle/turbo", "someone/bundle", "turbo"),
])
def test_hub_ids_are_owner_slash_name(text, repo_id, subfolder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = hub.locate_checkpoint(text)
    assert (where.repo_id, where.subfolder) == (repo_id, subfolder)
    assert where.describe().endswith("from the Hugging Face Hub")


@pytest.mark.parametrize("text", ["./ckpt/turbo", "~/ckpt", "/abs/path", "a/b/c", "single", "C:/x", "a\\b",
                                  "owner/not a repo", "owner//name"])
def test_path_like_arguments_are_local_and_never_downloaded(text, tmp_path, monkeypatch, no_download):
    monkeypatch.chdir(tmp_path)
    assert hub.locate_checkpoint(text).repo_id is None
    with pytest.raises(ModelLoadError, match="no such file or folder"):
        load_model(text)


def test_a_misspelt_local_folder_is_a_named_error_not_a_download(tmp_path, monkeypatch, no_download, tiny_checkpoint):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_checkpoint, tmp_path / "checkpoints" / "acestep-v15-turbo")
    with pytest.raises(ModelLoadError, match="no such file or folder") as err:
        load_model("checkpoints/acestep-v15-turb")  # parent exists: a local path with a typo
    assert "checkpoints/acestep-v15-turbo" in err.value.fix  # the closest name is suggested
    assert load_model("checkpoints/acestep-v15-turbo").folder == Path("checkpoints/acestep-v15-turbo")


def test_a_local_folder_named_like_a_repo_wins_over_the_hub(tmp_path, monkeypatch, no_download, tiny_checkpoint):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_checkpoint, tmp_path / "ACE-Step" / "Ace-Step1.5")
    where = hub.locate_checkpoint("ACE-Step/Ace-Step1.5")
    assert where.repo_id is None and where.describe() == "local folder ACE-Step/Ace-Step1.5"
    assert load_model("ACE-Step/Ace-Step1.5").folder == Path("ACE-Step/Ace-Step1.5")
    # its owner folder exists here, so a sibling name is a local typo too
    assert hub.locate_checkpoint("ACE-Step/acestep-v15-base").repo_id is None


def test_a_path_object_is_always_local(no_download):
    assert hub.locate_checkpoint(Path("ACE-Step/Ace-Step1.5")).repo_id is None


def test_a_malformed_hub_form_is_named():
    with pytest.raises(ModelLoadError, match="is not a Hub repo id"):
        hub.locate_checkpoint("hf://just-a-name")
