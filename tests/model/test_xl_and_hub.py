"""XL specifics on a tiny XL config, and Hub repo ids (downloads mocked: this machine is offline)."""

from __future__ import annotations

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
    calls = {}
    snapshot = tmp_path / "snapshot"
    import shutil

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


def test_offline_download_fails_with_a_plain_message(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*_, **__):
        raise LocalEntryNotFoundError("Got: ConnectError: [Errno -2] Name or service not known")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(ModelLoadError, match="could not download ACE-Step/acestep-v15-base from the Hugging Face Hub") as err:
        load_model("ACE-Step/acestep-v15-base")
    assert "internet connection" in str(err.value)


@pytest.mark.parametrize("text, expected", [
    ("ACE-Step/Ace-Step1.5", True), ("ACE-Step/Ace-Step1.5/acestep-v15-base", True),
    ("./ckpt/turbo", False), ("/abs/path", False), ("single", False), ("C:/x", False),
])
def test_repo_id_recognition(text, expected):
    assert hub.looks_like_repo_id(text) is expected
