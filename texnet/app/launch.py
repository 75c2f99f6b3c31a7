"""Serving the app: ``python -m texnet.app [--port 7860] [--host 127.0.0.1] [--runs-dir runs] [--repo .]``.

Offline by design: analytics are off (texnet.app sets GRADIO_ANALYTICS_ENABLED before gradio loads), the theme
uses system fonts, and no share link is made.
"""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from texnet.app.layout import build_app

THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> str:
    """Serve `demo` locally with the offline theme and no share link; returns the local URL."""
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        theme=THEME,
        show_error=True,
        ssr_mode=False,
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=["api"],
    )
    return url


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m texnet.app", description="texnet's local web app: stylise, compare, train"
    )
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where trained models are found and new runs go"
    )
    parser.add_argument(
        "--visdom-url", default=None, help="Visdom server for live training plots, e.g. http://127.0.0.1:8097"
    )
    parser.add_argument(
        "--repo", type=Path, default=Path("."), help="texnet checkout whose train.py the Train tab runs (default: here)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up requests
    message = f"error: port {args.port} is in use: pick another with --port"
    if port_in_use(args.host, args.port):
        print(message, file=sys.stderr)
        return 2
    demo = build_app(args.runs_dir, args.visdom_url, args.repo)
    try:
        launch(demo, args.host, args.port)
    except OSError:  # taken between the check and the bind
        print(message, file=sys.stderr)
        return 2
    return 0
