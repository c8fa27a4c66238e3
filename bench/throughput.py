"""Requests per second of `/runs/` against a trivial logged-in view, under wrk and gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/throughput.py [--rounds 3] [--seconds 10] [--connections 16]

Run `bench/history.py` first; needs `wrk` (Debian's package). Serves the product with gunicorn
(3 workers, production settings plus `/bench/trivial/` from bench/urls.py), logs a user in, and
alternates wrk runs of the trivial view and of each page, `--rounds` times; prints each
round and the medians. A run with any non-2xx answer is reported as failed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ["DEBUG"] = "0"
# Plain HTTP on loopback, as behind a proxy that ends TLS.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

PAGES = ["/bench/trivial/", "/runs/", "/"]
RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(port: int, workers: int) -> Iterator[None]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "dashboard.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def answers_200(port: int, page: str, cookie: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", page, headers={"Cookie": f"sessionid={cookie}"})
    status = connection.getresponse().status
    if status != 200:
        raise SystemExit(f"{page} answered {status}, not 200: nothing to measure")


def wrk(url: str, cookie: str, *, seconds: int, connections: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            f"Cookie: sessionid={cookie}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url} answered errors under load:\n{out}")
    return float(RATE.search(out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    call_command("collectstatic", "--noinput", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    port = free_port()
    rates: dict[str, list[float]] = {page: [] for page in PAGES}
    print("| round | " + " | ".join(PAGES) + " | /runs/ ÷ trivial |")
    print("|---|" + "---:|" * (len(PAGES) + 1))
    with gunicorn(port, args.workers):
        for page in PAGES:
            answers_200(port, page, cookie)
        for round_ in range(1, args.rounds + 1):
            for page in PAGES:
                rate = wrk(
                    f"http://127.0.0.1:{port}{page}",
                    cookie,
                    seconds=args.seconds,
                    connections=args.connections,
                )
                rates[page].append(rate)
            row = [f"{rates[page][-1]:.0f}" for page in PAGES]
            ratio = rates["/runs/"][-1] / rates["/bench/trivial/"][-1]
            print(f"| {round_} | " + " | ".join(row) + f" | {ratio:.2f} |", flush=True)
    medians = {page: statistics.median(values) for page, values in rates.items()}
    row = [f"{medians[page]:.0f}" for page in PAGES]
    ratio = medians["/runs/"] / medians["/bench/trivial/"]
    print("| median | " + " | ".join(row) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
