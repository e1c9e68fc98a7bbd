"""`compose studio`: the local web page (composer.studio) on uvicorn, the model loaded once."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import click

from composer.cli._common import ComposerCommand, fail


def _loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.x, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Stop with one line when ``host:port`` cannot be bound (taken, or no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e} (is another server using it? try --port {port + 1})")


@click.command("studio", cls=ComposerCommand)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; other than loopback, anyone on the network can use it.")
@click.option("--no-browser", is_flag=True, help="Do not open the page in the default browser.")
@click.option("--checkpoint", "-c", type=click.Path(dir_okay=False, path_type=Path), help="Model to sample [default: the model shipped with composer].")
def command(port: int, host: str, no_browser: bool, checkpoint: Path | None) -> None:
    """Open a local web page to generate, hear, see and download melodies.

    \b
    compose studio                     http://127.0.0.1:8000 in your browser
    compose studio --port 8080 --no-browser
    """
    if not _loopback(host):
        click.echo(f"warning: --host {host} is not a loopback address: anyone who can reach this machine "
                   "can use the studio (it has no login)", err=True)
    _check_port(host, port)

    import threading
    import webbrowser

    import uvicorn

    from composer.generate.api import Composer
    from composer.studio.app import create_app

    app = create_app(Composer.load(checkpoint))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    click.echo(f"composer studio at {url} (Ctrl-C stops it)")
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
