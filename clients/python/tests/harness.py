"""Test harness: the real release binary on a fresh SQLite file, a fault-injecting proxy in
front of it, and a fake LLM provider speaking OpenAI's and Anthropic's JSON and SSE."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("LIMITRY_BIN", ROOT / "target" / "release" / "limitry"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LimitryServer:
    """One service process on a database file that outlives restarts."""

    def __init__(self, workdir: Path) -> None:
        if not BIN.exists():
            raise RuntimeError(f"{BIN} not found: cargo build --release --bin limitry")
        self.workdir = workdir
        self.database_url = f"sqlite://{workdir / 'limitry.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen] = None
        self.log = open(workdir / "server.log", "ab")

    def create_key(self, name: str = "test") -> str:
        out = subprocess.run(
            [str(BIN), "keys", "create", "--name", name, "--database-url", self.database_url],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--bind", f"127.0.0.1:{self.port}", "--database-url", self.database_url],
            stdout=self.log, stderr=self.log,
            # webhooks to the tests' own loopback receiver, delivered promptly
            env={**os.environ, "LIMITRY_WEBHOOK_ALLOW_PRIVATE": "true", "LIMITRY_WEBHOOK_POLL_MS": "50"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"limitry exited with {self.process.returncode}; see {self.workdir}/server.log")
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("limitry did not become healthy in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# A proxy that forwards to the service but can misbehave on chosen requests.

Action = str  # "pass" | "forward_then_503" | "forward_then_drop" | "503" | "429:SECONDS" | "sleep:SECONDS"


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.actions: List[Action] = []
        self.seen: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    action = proxy.actions.pop(0) if proxy.actions else "pass"
                    proxy.seen.append({"method": self.command, "path": self.path,
                                       "headers": dict(self.headers), "body": body, "action": action})
                if action.startswith("429:"):
                    return self._reply(429, {"error": {"code": "rate_limit_exceeded", "message": "slow down",
                                                       "status": 429}}, {"Retry-After": action[4:]})
                if action == "503":
                    return self._reply(503, {"error": {"code": "internal_error", "message": "unavailable", "status": 503}})
                if action.startswith("sleep:"):
                    time.sleep(float(action[6:]))
                try:
                    status, headers, payload = proxy.forward(self.command, self.path, dict(self.headers), body)
                except OSError:  # the service is gone by now (a delayed request after the test)
                    self.close_connection = True
                    return
                if action == "forward_then_503":
                    return self._reply(503, {"error": {"code": "internal_error", "message": "lost", "status": 503}})
                if action == "forward_then_drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _reply(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, method: str, path: str, headers: Dict[str, str], body: bytes):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, response.getheaders(), payload

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# A fake LLM provider: OpenAI chat completions and Anthropic messages, JSON and SSE.

class FakeProvider:
    def __init__(self, input_tokens: int = 11, output_tokens: int = 7) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.requests: List[Dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                provider.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                route = self.path.split("?")[0]
                if route.endswith("/chat/completions"):
                    if body.get("stream"):
                        return self._sse([(None, c) for c in provider.openai_chunks(body)] + [(None, "[DONE]")])
                    return self._json(provider.openai_completion(body))
                if route.endswith("/responses"):
                    if body.get("stream"):
                        return self._sse(provider.responses_events(body))
                    return self._json(provider.responses_response(body))
                if route.endswith("/messages"):
                    if body.get("stream"):
                        return self._sse(provider.anthropic_events(body))
                    return self._json(provider.anthropic_message(body))
                self._json({"error": {"message": "not found"}}, 404)

            def _json(self, payload: Any, status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: List[Any]) -> None:
                parts = []
                for name, data in events:
                    text = data if isinstance(data, str) else json.dumps(data)
                    parts.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
                payload = "".join(parts).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # OpenAI -------------------------------------------------------------------------------
    def _usage(self) -> Dict[str, int]:
        return {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens}

    def openai_completion(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "gpt-fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello from the fake provider."}}],
            "usage": self._usage(),
        }

    def openai_chunks(self, body: Dict[str, Any]) -> List[Dict[str, Any]]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "gpt-fake")}
        words = ["Hello", " from", " the", " stream."]
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": w},
                                        "finish_reason": None}], **({"usage": None} if include_usage else {})}
                  for w in words]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                       **({"usage": None} if include_usage else {})})
        if include_usage:
            chunks.append({**base, "choices": [], "usage": self._usage()})
        return chunks

    def responses_response(self, body: Dict[str, Any], status: str = "completed") -> Dict[str, Any]:
        done = status == "completed"
        return {
            "id": "resp_fake", "object": "response", "created_at": int(time.time()), "status": status,
            "model": body.get("model", "gpt-fake"), "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hello from the fake provider.",
                                     "annotations": []}]}] if done else [],
            "usage": {"input_tokens": self.input_tokens, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": self.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": self.input_tokens + self.output_tokens} if done else None,
        }

    def responses_events(self, body: Dict[str, Any]) -> List[Any]:
        events: List[Any] = [("response.created", {"type": "response.created", "sequence_number": 0,
                                                   "response": self.responses_response(body, "in_progress")})]
        for i, word in enumerate(["Hello", " from", " the", " stream."]):
            events.append(("response.output_text.delta", {
                "type": "response.output_text.delta", "item_id": "msg_fake", "output_index": 0,
                "content_index": 0, "delta": word, "sequence_number": i + 1}))
        events.append(("response.completed", {"type": "response.completed", "sequence_number": 5,
                                              "response": self.responses_response(body)}))
        return events

    # Anthropic ----------------------------------------------------------------------------
    def anthropic_message(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model", "claude-fake"),
            "content": [{"type": "text", "text": "Hello from the fake provider."}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }

    def anthropic_events(self, body: Dict[str, Any]) -> List[Any]:
        model = body.get("model", "claude-fake")
        return [
            ("message_start", {"type": "message_start", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "Hello"}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": " stream."}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": self.output_tokens}}),
            ("message_stop", {"type": "message_stop"}),
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver:
    """Collects webhook deliveries on loopback."""

    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": json.loads(body or b"{}")})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
