"""MONAI Label server hardening: authentication refuses unauthenticated writes, bad infer requests are 4xx.

The real server runs on a free loopback port with MONAI Label's authentication on. MONAI Label 0.8.5 checks bearer
tokens (JWT, RS256) against the public key of an OpenID Connect realm (Keycloak); here a tiny realm on 127.0.0.1
serves a key generated for the test, and the test signs its own tokens. Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from label_server import demo_studies, label_server, log_tail

from monai_singanseg.cli import main as cli_main  # noqa: E402
from monai_singanseg.cli.label import exposure_warning, is_loopback  # noqa: E402

DEMO = "TCGA-FG-6692"
UNLABELLED = "unlabelled"
ROLES = {"user": "monailabel-user", "annotator": "monailabel-annotator", "admin": "monailabel-admin"}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file of the datastore (but MONAI Label's own bookkeeping) and its hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.name != "datastore_v2.json"
    }


# --- label-serve's warning (no server is started: subprocess.call is replaced) -----------------------------------


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("myhost.example", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_exposure_warning_only_beyond_loopback_without_auth():
    assert exposure_warning("127.0.0.1", 8000, auth=False) is None
    assert exposure_warning("0.0.0.0", 8000, auth=True) is None
    warning = exposure_warning("0.0.0.0", 8123, auth=False)
    assert warning.startswith(
        "warning: --host 0.0.0.0 is not a loopback address and MONAI Label's authentication is off"
    )
    assert "port 8123" in warning and "MONAI_LABEL_AUTH_ENABLE=true" in warning


@pytest.fixture()
def fake_call(monkeypatch, tmp_path):
    """Record the command label-serve would run instead of starting a server."""
    calls: list[list[str]] = []
    monkeypatch.setattr("monai_singanseg.cli.label.subprocess.call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.chdir(tmp_path)  # MONAI Label also reads ./.env
    monkeypatch.delenv("MONAI_LABEL_AUTH_ENABLE", raising=False)
    (tmp_path / "studies").mkdir()
    return calls


def test_label_serve_warns_when_listening_beyond_loopback_without_auth(fake_call, tmp_path, capsys, monkeypatch):
    studies = str(tmp_path / "studies")
    assert cli_main(["label-serve", "--studies", studies, "--host", "0.0.0.0", "--port", "8123"]) == 0
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 is not a loopback address and MONAI Label's authentication is off" in err
    assert fake_call[-1][fake_call[-1].index("--host") + 1] == "0.0.0.0"
    for host in ("127.0.0.1", "localhost", "::1"):
        assert cli_main(["label-serve", "--studies", studies, "--host", host]) == 0
        assert "warning" not in capsys.readouterr().err
    monkeypatch.setenv("MONAI_LABEL_AUTH_ENABLE", "true")
    assert cli_main(["label-serve", "--studies", studies, "--host", "0.0.0.0"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert len(fake_call) == 5


def test_label_serve_bad_port_and_bad_auth_setting_are_clear_errors(fake_call, tmp_path, capsys, monkeypatch):
    studies = str(tmp_path / "studies")
    assert cli_main(["label-serve", "--studies", studies, "--port", "70000"]) == 1
    assert "error: --port 70000: a TCP port must be 1..65535" in capsys.readouterr().err
    monkeypatch.setenv("MONAI_LABEL_AUTH_ENABLE", "maybe")
    assert cli_main(["label-serve", "--studies", studies]) == 1
    err = capsys.readouterr().err
    assert "error: MONAI Label's settings (MONAI_LABEL_* environment variables or ./.env) are invalid" in err
    assert "MONAI_LABEL_AUTH_ENABLE" in err and "Traceback" not in err
    monkeypatch.delenv("MONAI_LABEL_AUTH_ENABLE")
    monkeypatch.setenv("MONAI_LABEL_CORS_ORIGINS", '["http://127.0.0.1:8000"]')
    assert cli_main(["label-serve", "--studies", studies]) == 1
    assert (
        "error: MONAI_LABEL_CORS_ORIGINS is set, and this MONAI Label version's start_server cannot start with it"
        in (capsys.readouterr().err)
    )
    assert fake_call == []  # nothing started


# --- the real server with authentication on --------------------------------------------------------------------------


class _Realm:
    """A minimal OpenID Connect realm on 127.0.0.1: ``GET <realm>`` gives its RSA public key, as Keycloak does."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        body = json.dumps({"realm": "monailabel", "public_key": base64.b64encode(der).decode()}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                ok = self.path.rstrip("/") == "/realms/monailabel"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if ok else b"{}")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}/realms/monailabel"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, *roles: str, key=None, expires_in: float = 600) -> str:
        payload = {
            "preferred_username": "tester",
            "email": "t@example.org",
            "name": "Tester",
            "realm_access": {"roles": [ROLES[r] for r in roles]},
            "exp": int(time.time() + expires_in),
        }
        return jwt.encode(payload, key or self.key, algorithm="RS256")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Server:
    url: str
    studies: Path
    log: Path
    realm: _Realm

    def log_tail(self) -> str:
        return log_tail(self.log)

    def headers(self, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.realm.token(*roles)}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("monailabel_auth")
    studies = demo_studies(root / "studies")
    shutil.copyfile(studies / f"{DEMO}.nii.gz", studies / f"{UNLABELLED}.nii.gz")
    realm = _Realm()
    env = {"MONAI_LABEL_AUTH_ENABLE": "true", "MONAI_LABEL_AUTH_REALM_URI": realm.uri, "MONAI_LABEL_AUTH_TIMEOUT": "5"}
    try:
        with label_server(studies, root, env=env, ready="/auth/") as (url, log):
            yield Server(url, studies, log, realm)
    finally:
        realm.close()


def _put_label(server: Server, image: str, headers: dict[str, str] | None = None) -> requests.Response:
    label = (server.studies / "labels" / "final" / f"{DEMO}.nii.gz").read_bytes()
    return requests.put(
        f"{server.url}/datastore/label",
        params={"image": image, "tag": "final"},
        files={"label": ("label.nii.gz", label, "application/gzip")},
        headers=headers or {},
        timeout=30,
    )


def test_auth_is_reported_on(server):
    info = requests.get(f"{server.url}/auth/", timeout=10).json()
    assert info["enabled"] is True and info["realm"] == server.realm.uri
    assert requests.get(f"{server.url}/info/", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/info/", headers=server.headers("user"), timeout=30).status_code == 200


def test_unauthenticated_label_upload_is_refused_and_nothing_is_written(server):
    before = _snapshot(server.studies)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attempts = {
        "no token": ({}, 401),
        "not a JWT": ({"Authorization": "Bearer not-a-token"}, 401),
        "signed by another key": ({"Authorization": f"Bearer {server.realm.token('annotator', key=other_key)}"}, 401),
        "expired": ({"Authorization": f"Bearer {server.realm.token('annotator', expires_in=-60)}"}, 401),
        "user role only": (server.headers("user"), 403),
    }
    for target in (UNLABELLED, DEMO):  # a new label, and over an existing final label
        for what, (headers, status) in attempts.items():
            r = _put_label(server, target, headers)
            assert r.status_code == status, (what, r.status_code, r.text)
    r = requests.put(
        f"{server.url}/datastore/image",
        params={"image": "intruder"},
        files={"file": ("intruder.nii.gz", b"x" * 100, "application/gzip")},
        timeout=30,
    )
    assert r.status_code == 401
    r = requests.delete(
        f"{server.url}/datastore/image", params={"id": DEMO}, headers=server.headers("annotator"), timeout=30
    )
    assert r.status_code == 403  # deleting needs the admin role
    assert requests.post(f"{server.url}/infer/singanseg", params={"image": DEMO}, timeout=30).status_code == 401
    assert requests.post(f"{server.url}/train/singanseg", json={}, timeout=30).status_code == 401
    assert _snapshot(server.studies) == before
    assert not (server.studies / "labels" / "final" / f"{UNLABELLED}.nii.gz").exists()

    # the same upload with the annotator role is accepted: the refusals above came from authentication
    ok = _put_label(server, UNLABELLED, server.headers("annotator"))
    assert ok.status_code == 200, ok.text
    assert (server.studies / "labels" / "final" / f"{UNLABELLED}.nii.gz").exists()


@pytest.mark.parametrize(
    "model, params, data, status, detail",
    [
        ("singanseg", {}, None, 422, "missing 'image': give a datastore image id, POST /infer/singanseg?image=<id>"),
        ("singanseg", {"image": ""}, None, 422, "missing 'image'"),
        (
            "singanseg",
            {"image": DEMO},
            {"params": "{seed: 7"},
            422,
            "form field 'params' is not valid JSON (line 1, column 2: Expecting property name enclosed in double "
            "quotes); "
            'give a JSON object, e.g. params={"seed": 7}',
        ),
        (
            "singanseg",
            {"image": DEMO},
            {"params": "[7]"},
            422,
            "form field 'params' must be a JSON object, e.g. params={\"seed\": 7}, not a JSON list",
        ),
        ("no-such-model", {"image": DEMO}, None, 404, "model 'no-such-model' is not served by this app; its models: "),
        ("no-such-model", {}, None, 404, "is not served by this app"),
    ],
)
def test_bad_infer_requests_are_client_errors(server, model, params, data, status, detail):
    before = _snapshot(server.studies)
    r = requests.post(
        f"{server.url}/infer/{model}", params=params, data=data, headers=server.headers("user"), timeout=60
    )
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert _snapshot(server.studies) == before
