"""A real HTTP server speaking the OpenAI chat-completions protocol, scripted per test.

Each request pops the next behaviour from ``script``:
    ("answer", dict)   a proposal: JSON in message.content, or a tool call when the request has tools
    ("text", str)      raw message content (e.g. malformed JSON)
    ("status", int)    an HTTP error with an OpenAI-style error body
    ("sleep", float)   wait that long before answering the next behaviour (for timeouts)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self):
        self.script: list[tuple] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with outer.lock:
                    outer.requests.append({"path": self.path, "body": body})
                    step = outer.script.pop(0) if outer.script else ("status", 503)
                if step[0] == "sleep":
                    time.sleep(step[1])
                    with outer.lock:
                        step = outer.script.pop(0) if outer.script else ("status", 503)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if step[0] == "status":  # ("status", code[, {header: value}])
                    return self._send(step[1], {"error": {"message": f"scripted {step[1]}", "type": "server_error"}},
                                      step[2] if len(step) > 2 else {})
                content = json.dumps(step[1]) if step[0] == "answer" else step[1]
                message = {"role": "assistant", "content": content}
                finish = "stop"
                if body.get("tools"):
                    name = body["tools"][0]["function"]["name"]
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": name, "arguments": content}}]}
                    finish = "tool_calls"
                self._send(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                                 "model": body.get("model", "test"), "choices": [
                                     {"index": 0, "message": message, "finish_reason": finish}],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

            def _send(self, code, obj, headers=None):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
