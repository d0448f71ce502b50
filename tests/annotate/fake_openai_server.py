"""A local OpenAI-compatible chat-completions server that injects faults (for tests only).

The test prompt template starts with ``FAULT: {title}``; each corpus title names the fault the
server injects for that passage:

    ok            valid answer at once
    429 / 500     HTTP error on the first attempt (429 carries Retry-After); always500: always
    timeout       the first attempt sleeps longer than the client timeout
    malformed     first answer is not JSON; envelope: the HTTP body itself is not JSON
    refuse        first answer is a refusal
    always_refuse / toolong   every answer invalid -> the item must end as a failure
    echo400       HTTP 400 whose body echoes the Authorization header (tests redaction)
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, key: str, delay: float = 0.0, timeout_sleep: float = 1.5):
        self.key = key
        self.delay = delay
        self.timeout_sleep = timeout_sleep
        self.attempts: Counter[str] = Counter()
        self.requests = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _answer(self, content: str) -> None:
                body = {"id": "x", "object": "chat.completion", "model": "fake",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 10,
                                  "total_tokens": 110}}
                self._send(200, json.dumps(body).encode())

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                req = json.loads(self.rfile.read(n))
                auth = self.headers.get("Authorization", "")
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                if auth != f"Bearer {fake.key}":
                    return self._send(401, json.dumps({"error": f"bad key {auth}"}).encode())
                prompt = req["messages"][0]["content"]
                fault = re.search(r"FAULT: (\S+)", prompt).group(1)
                passage = prompt.split("PASSAGE: ", 1)[1].split("\n", 1)[0]
                with fake.lock:
                    fake.requests += 1
                    fake.attempts[passage] += 1
                    attempt = fake.attempts[passage]
                if fake.delay:
                    time.sleep(fake.delay)
                first = attempt == 1
                good = json.dumps({"query": "what is " + " ".join(passage.split()[:4])})
                if fault == "429" and first:
                    return self._send(429, b'{"error": "rate"}', {"Retry-After": "0.05"})
                if (fault == "500" and first) or fault == "always500":
                    return self._send(500, b'{"error": "boom"}')
                if fault == "timeout" and first:
                    time.sleep(fake.timeout_sleep)
                    return self._answer(good)
                if fault == "malformed" and first:
                    return self._answer('{"query": "unterminated')
                if fault == "envelope" and first:
                    return self._send(200, b"<html>gateway</html>")
                if (fault == "refuse" and first) or fault == "always_refuse":
                    return self._answer('{"query": "I\'m sorry, but I can\'t help with that."}')
                if fault == "toolong":
                    return self._answer(json.dumps({"query": " ".join(["word"] * 100)}))
                if fault == "echo400":
                    return self._send(400, json.dumps({"error": f"bad request {auth}"}).encode())
                return self._answer("```json\n" + good + "\n```" if attempt % 2 else good)

        return Handler
