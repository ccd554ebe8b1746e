"""TLS options: a CA file and a client certificate load into the client's SSL context;
unreadable files are refused at construction."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sessync import Client, errors
from sessync._base import ssl_context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=sessync-test", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return d


def test_ca_and_client_certificate_load(pki: Path) -> None:
    ctx = ssl_context(pki / "cert.pem", pki / "cert.pem", pki / "key.pem")
    assert ctx is not None
    assert any(c.get("subject") for c in ctx.get_ca_certs())
    with Client(["https://127.0.0.1:7101"], "k", ca_file=pki / "cert.pem") as c:
        assert c.endpoints == ["https://127.0.0.1:7101"]


def test_bad_tls_files_are_refused(tmp_path: Path) -> None:
    assert ssl_context() is None
    with pytest.raises(errors.InvalidArgument):
        ssl_context(tmp_path / "missing.pem")
    with pytest.raises(errors.InvalidArgument):
        ssl_context(client_key=tmp_path / "key.pem")
