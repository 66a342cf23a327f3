"""Debian's nginx in front of daphne, as docs/deployment.md's recipe sets it up:
TLS and HTTP/2 to the browser, HTTP/1.1 to daphne, streams not buffered."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.processes import stop
from tests.system import require_program

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

STARTUP_TIMEOUT = 30.0
# The part of the recipe the test checks: what the streams' location needs.
STREAMS_LOCATION = """
        location /_reactive/ {
            proxy_pass http://django;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }
"""


def require_nginx() -> str:
    """nginx's path; skip without it on a laptop, fail without it in CI."""
    return require_program("nginx", "nginx-light", "/usr/sbin/nginx")


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def nginx(upstream: str, folder: Path) -> Iterator[str]:
    """nginx on a free loopback port proxying to ``upstream``; yields its https URL."""
    executable = require_nginx()
    cert, key = certificate(folder)
    port = free_port()
    user = "user root root;" if os.getuid() == 0 else ""
    config = folder / "nginx.conf"
    config.write_text(
        f"""
{user}
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream django {{ server {upstream.removeprefix("http://")}; }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {STREAMS_LOCATION}
        location / {{
            proxy_pass http://django;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [executable, "-c", str(config), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, folder)
        yield url
    finally:
        if process.poll() is None:
            stop(process)


def _wait_until_serving(
    url: str, process: subprocess.Popen[bytes], folder: Path
) -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (
                (folder / "error.log").read_text()
                if (folder / "error.log").exists()
                else ""
            )
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(url + "/", timeout=1, context=unverified):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)  # polling a condition with a deadline
    raise RuntimeError(f"nginx did not answer on {url} within {STARTUP_TIMEOUT}s")
