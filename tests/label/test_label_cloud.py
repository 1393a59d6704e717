"""`--with openai` and `--with gemini` through their official SDKs against local fakes of their HTTP APIs on
127.0.0.1: the audio goes up as WAV, a 429 is retried, the answer lands in song.json with its source, the
key is never printed or written, and the summary counts calls and tokens."""

from __future__ import annotations

import base64
import io
import json

import pytest
import soundfile as sf

from acetune.cli.app import main
from tests.label.conftest import write_songs
from tests.label.fake_api import fake_api

KEY = "sk-test-not-a-real-key-0123456789"
ANSWER = "caption: warm jazz trio with brushed drums\ngenre: jazz, swing"


def _openai_answer(body: dict) -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}}


def _gemini_answer(body: dict) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": ANSWER}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 12, "totalTokenCount": 52}}


def _label(tmp_path, kind: str, capsys) -> tuple[dict, str]:
    songs = tmp_path / "songs"
    path = write_songs(songs, {"a.wav": {"genre": "mine"}})["a.wav"]
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path), "--with", kind]) == 0
    out = capsys.readouterr()
    sidecar = path.with_suffix(".json").read_text()
    assert KEY not in out.out + out.err + sidecar
    return json.loads(sidecar), out.out


def _wav(data: str) -> None:
    wave, rate = sf.read(io.BytesIO(base64.b64decode(data, altchars=b"-_")))  # the genai SDK sends url-safe base64
    assert rate == 16000 and wave.ndim == 1 and abs(len(wave) - 1.5 * 16000) <= 1


def test_openai(tmp_path, monkeypatch, capsys):
    with fake_api(_openai_answer) as (url, seen):
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        data, out = _label(tmp_path, "openai", capsys)
    assert data["caption"] == "warm jazz trio with brushed drums" and data["genre"] == "mine"
    assert data["label_sources"] == {"caption": "openai:gpt-4o-audio-preview"}
    assert "openai calls 1, openai input tokens 40, openai output tokens 12" in out
    assert len(seen) == 2 and seen[1]["path"] == "/v1/chat/completions"  # the 429 was retried
    assert seen[1]["headers"]["authorization"] == f"Bearer {KEY}"
    [text, audio] = seen[1]["body"]["messages"][0]["content"]
    assert "caption:" in text["text"] and audio["input_audio"]["format"] == "wav"
    _wav(audio["input_audio"]["data"])


def test_gemini(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("acetune.label.gemini_captioner.RETRY_DELAY_S", 0.001)
    with fake_api(_gemini_answer) as (url, seen):
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)
        data, out = _label(tmp_path, "gemini", capsys)
    assert data["caption"] == "warm jazz trio with brushed drums"
    assert data["label_sources"] == {"caption": "gemini:gemini-2.5-flash"}
    assert "gemini calls 1, gemini input tokens 40, gemini output tokens 12" in out
    assert len(seen) == 2 and seen[1]["path"].endswith("/models/gemini-2.5-flash:generateContent")
    assert seen[1]["headers"]["x-goog-api-key"] == KEY
    parts = seen[1]["body"]["contents"][0]["parts"]
    assert "caption:" in parts[0]["text"] and parts[1]["inlineData"]["mime_type"] == "audio/wav"
    _wav(parts[1]["inlineData"]["data"])


@pytest.mark.parametrize(("kind", "variable"), [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")])
def test_missing_key_is_exit_2_with_a_fix(kind, variable, tmp_path, monkeypatch, capsys):
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path), "--with", kind]) == 2
    err = capsys.readouterr().err
    assert "needs an API key" in err and f"fix: export {variable}" in err
