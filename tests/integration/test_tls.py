"""hatobad on TCP with --tlsverify: the docker CLI with a client certificate gets in, without one it does not."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest
from conftest import DOCKER, HATOBA, HATOBAD

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certs(d: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=hatoba-test-ca", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.cnf"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "ext.cnf"), ("client", "client.cnf")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", ext, cwd=d)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tlsverify(tmp_path):
    d = str(tmp_path)
    _certs(d)
    port = _free_port()
    host = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([HATOBAD, "-H", host, "--tlsverify", "--tlscacert", f"{d}/ca.pem",
                             "--tlscert", f"{d}/server.pem", "--tlskey", f"{d}/server-key.pem",
                             "--data-root", f"{d}/data", "--exec-root", f"{d}/run", "--config-file", "/nonexistent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        ok = subprocess.run([DOCKER, "-H", host, "--tlsverify", "--tlscacert", f"{d}/ca.pem", "--tlscert",
                             f"{d}/client.pem", "--tlskey", f"{d}/client-key.pem", "version", "--format",
                             "{{.Server.APIVersion}}"], capture_output=True, env=env, timeout=30)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout == b"1.41\n"
        mine = subprocess.run([HATOBA, "-H", host, "--tlsverify", "--tlscacert", f"{d}/ca.pem", "--tlscert",
                               f"{d}/client.pem", "--tlskey", f"{d}/client-key.pem", "version", "--format",
                               "{{.Server.APIVersion}}"], capture_output=True, env=env, timeout=30)
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout == b"1.41\n"
        # no client certificate: the handshake is refused
        bad = subprocess.run([DOCKER, "-H", host, "--tlsverify", "--tlscacert", f"{d}/ca.pem", "version"],
                             capture_output=True, env=env, timeout=30)
        assert bad.returncode != 0
        # plain HTTP is not served either
        plain = subprocess.run([HATOBA, "-H", host, "ps"], capture_output=True, env=env, timeout=30)
        assert plain.returncode != 0
    finally:
        proc.terminate()
        proc.wait(15)
