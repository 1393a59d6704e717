"""`--with openai` through the official SDK against a local fake of the chat-completions API on 127.0.0.1:
the audio goes up as WAV, a 429 is retried, the answer lands in song.json with its source, the key is never
printed or written, and the summary counts calls and tokens."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import soundfile as sf

from acetune.cli.app import main
from tests.label.conftest import write_songs

pytest.importorskip("openai")  # an optional extra: acetune[openai]
KEY = "sk-test-not-a-real-key-0123456789"
ANSWER = "caption: warm jazz trio with brushed drums\ngenre: jazz, swing"


@pytest.fixture()
def fake_openai(monkeypatch):
    """A chat-completions server on 127.0.0.1: the first call is rate limited (429), the next ones answer."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
            if len(seen) == 1:
                self._reply(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after-ms": "1"})
                return
            self._reply(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": ANSWER}}],
                              "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}})

        def _reply(self, status, payload, headers=None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    yield seen
    server.shutdown()
    thread.join()


def test_openai_caption_is_written_with_source_and_usage(fake_openai, tmp_path, capsys):
    songs = tmp_path / "songs"
    path = write_songs(songs, {"a.wav": {"genre": "mine"}})["a.wav"]
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path), "--with", "openai"]) == 0
    out = capsys.readouterr()
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["caption"] == "warm jazz trio with brushed drums" and data["genre"] == "mine"
    assert data["label_sources"] == {"caption": "openai:gpt-4o-audio-preview"}
    assert "openai calls 1, openai input tokens 40, openai output tokens 12" in out.out
    assert KEY not in out.out + out.err + path.with_suffix(".json").read_text()
    assert len(fake_openai) == 2 and fake_openai[1]["path"] == "/v1/chat/completions"  # the 429 was retried
    assert fake_openai[1]["auth"] == f"Bearer {KEY}"
    [text, audio] = fake_openai[1]["body"]["messages"][0]["content"]
    assert text["type"] == "text" and "caption:" in text["text"]
    wave, rate = sf.read(io.BytesIO(base64.b64decode(audio["input_audio"]["data"])))
    assert audio["input_audio"]["format"] == "wav" and rate == 16000 and wave.ndim == 1
    assert abs(len(wave) - 1.5 * 16000) <= 1


def test_missing_key_is_exit_2_with_a_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path), "--with", "openai"]) == 2
    err = capsys.readouterr().err
    assert "needs an API key" in err and "fix: export OPENAI_API_KEY" in err
