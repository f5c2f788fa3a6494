"""rtm-host JWT authentication seen from python-socketio (the official Python client).

Starts a private single-tenant host with AUTH_HS256_SECRET on a free port, signs HS256
tokens here (hmac + sha256, no JWT library), and checks: a valid token connects and
joins without sending a userId (the token's `sub` is the user), a bad signature is a
connect error whose message is `unauthorized` and registers nothing.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import threading
import time
import unittest

import socketio

HOST_BIN = os.environ.get("RTM_HOST_BIN", "target/debug/rtm-host")
SECRET = secrets.token_hex(16)
TIMEOUT_S = 10


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub: str, secret: str = SECRET, ttl_s: int = 600) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "exp": int(time.time()) + ttl_s}).encode())
    signed = f"{header}.{claims}".encode()
    sig = b64(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return f"{header}.{claims}.{sig}"


def host_env(extra=None) -> dict:
    """The environment without any host setting of the shell (never a shared Redis)."""
    prefixes = ("REDIS_", "PRESENCE_", "PLUGIN_", "SOCKETIO_", "LIMIT_", "AUTH_")
    names = {"PORT", "TENANTS_FILE", "PLUGINS_DIR", "ADMIN_TOKEN", "API_KEY", "NODE_ID"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in names}
    env.update({"PORT": "0", "BIND_ADDR": "127.0.0.1", "RUST_LOG": "info"})
    env.update(extra if extra is not None else {"AUTH_HS256_SECRET": SECRET})
    return env


class Host:
    """A private rtm-host; `url` once it prints its listening line. `extra_env` replaces
    the default auth setting (AUTH_HS256_SECRET) with other settings."""

    def __init__(self, extra_env=None):
        self.proc = subprocess.Popen(
            [HOST_BIN], env=host_env(extra_env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.url = None
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                if line.startswith("rtm-host listening on "):
                    self.url = line.split(" on ", 1)[1].strip()
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30):
            self.proc.kill()
            raise RuntimeError(f"{HOST_BIN} did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class AuthWithPythonSocketio(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = Host()

    @classmethod
    def tearDownClass(cls):
        cls.host.stop()

    def client(self) -> socketio.Client:
        c = socketio.Client(reconnection=False)
        self.addCleanup(c.disconnect)
        return c

    def test_the_token_sub_is_the_user_of_a_join_without_user_id(self):
        c = self.client()
        c.connect(self.host.url, auth={"token": token("py-alice")}, transports=["websocket"], wait_timeout=TIMEOUT_S)
        ack = c.call("presence:join", {"roomId": "py-room"}, timeout=TIMEOUT_S)
        self.assertTrue(ack["ok"], ack)
        users = [m["userId"] for m in ack["snapshot"]]
        self.assertEqual(users, ["py-alice"], ack)
        other = c.call("presence:join", {"roomId": "py-room-2", "userId": "py-mallory"}, timeout=TIMEOUT_S)
        self.assertEqual(other["error"]["code"], "forbidden", other)

    def test_a_bad_signature_is_refused_unauthorized_and_registers_nothing(self):
        c = self.client()
        seen = []
        c.on("connect_error", lambda data: seen.append(data))
        with self.assertRaises(socketio.exceptions.ConnectionError):
            c.connect(
                self.host.url,
                auth={"token": token("py-bob", secret="not-the-secret")},
                transports=["websocket"],
                wait_timeout=TIMEOUT_S,
            )
        self.assertEqual(seen, [{"message": "unauthorized"}])
        watcher = self.client()
        watcher.connect(self.host.url, auth={"token": token("py-carol")}, transports=["websocket"], wait_timeout=TIMEOUT_S)
        snap = watcher.call("presence:snapshot", {"roomId": "py-room-bob"}, timeout=TIMEOUT_S)
        self.assertEqual(snap, {"ok": True, "snapshot": []})


if __name__ == "__main__":
    unittest.main()
