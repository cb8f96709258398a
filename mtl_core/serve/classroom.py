"""One command for a class: several app processes behind nginx, one store, training workers shared out.

    python -m mtl_core serve --processes 2 --port 8501      # students open http://<this machine>:8501

Each app process is `python serve_app.py` (`streamlit run app.py`, warmed up first) on a port of its own on 127.0.0.1 (port + 1, port + 2, ...);
nginx (Debian's package) listens on `port` for the class and sends every browser to one process for good
(sticky): Streamlit keeps a session, its uploads and its media in the process that serves it. The first
answer to a browser sets a cookie `mtl_route` to a random value, and nginx picks the process by a
consistent hash of it, so a browser's page, websocket and uploads all reach the same process. If that
process dies, nginx sends the browser to another one and this command starts it again; what the student
made is in the store (store.py), which every process shares, so nothing is lost (only a live race starts
over). Every process gets the same `server.cookieSecret`.

Teachers get a process of their own: a browser that holds a class's teacher key (the cookie `mtl_teacher`, set
by the Class page; nginx routes only a cookie of the key's form) is sent to one more app process that no
student's browser reaches, so the projected dashboard redraws on time while the students' processes are busy
(its one training worker serves the teacher's own races). The Class page moves a teacher's browser there by
reloading once after the key opened its class. If that process is down, nginx sends the teacher to the
students' processes meanwhile (sticky, as any browser).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ..config import ConfigError
from .store import default_location, Store

SERVE_APP = Path(__file__).resolve().parents[2] / "serve_app.py"   # `streamlit run app.py`, warmed up first
RESTART_PAUSE = 3.0   # seconds before a dead app process is started again (nginx meanwhile sends its browsers elsewhere)

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    client_max_body_size 25m;                 # run and settings files (Streamlit's own cap is 20 MB)
    map $cookie_mtl_route $mtl_route {{ "" $request_id; default $cookie_mtl_route; }}
    map $cookie_mtl_teacher $mtl_upstream {{ "~^[A-Z0-9]{{6}}\.[A-Za-z0-9_-]{{32}}$" teachers; default app; }}
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    upstream app {{
        hash $mtl_route consistent;
{servers}
    }}
    upstream teachers {{
        server 127.0.0.1:{teacher_port};
    }}
    server {{
        listen {address}:{port};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;   # a student's address, for the class's join limit (pages/classes.py)
        proxy_read_timeout 1d;
        proxy_buffering off;
        add_header Set-Cookie "mtl_route=$mtl_route; Path=/; Max-Age=2592000; SameSite=Strict";
        add_header X-MTL-Process $upstream_addr;   # which process answered (tests, a teacher's curl)
        location / {{
            proxy_pass http://$mtl_upstream;
            error_page 502 504 = @students;   # the teachers' process is down: the students' processes, sticky as ever
        }}
        location @students {{
            proxy_pass http://app;
        }}
    }}
}}
"""


def nginx_conf(run: Path, address: str, port: int, app_ports: list[int], teacher_port: int) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in app_ports)
    return NGINX_CONF.format(run=run, address=address, port=port, servers=servers, teacher_port=teacher_port)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, tries: int = 120) -> bool:
    """Whether the app at `url` answers its health check, trying every half second (`tries` times)."""
    for _ in range(tries):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return True
        except OSError:
            time.sleep(0.5)
    return False


def app_command(port: int) -> list[str]:
    return [sys.executable, str(SERVE_APP), "--server.port", str(port), "--server.address", "127.0.0.1"]


class Classroom:
    """N app processes and the proxy in front of them; `supervise` keeps them running until stopped."""

    def __init__(self, processes: int, port: int, address: str = "0.0.0.0", log_dir: Path | None = None):
        if processes > 1 and not shutil.which("nginx"):
            raise ConfigError("Several app processes need nginx in front of them: apt-get install nginx (or use --processes 1).")
        Store(default_location()).close()   # a store that cannot be opened is said now, not by every page; creates its tables once
        self.processes, self.port, self.address = processes, port, address
        self.run = Path(tempfile.mkdtemp(prefix="mtl-class-"))
        self.log_dir = log_dir or self.run
        self.app_ports = [port + 1 + i for i in range(processes)] if processes > 1 else [port]
        self.teacher_port = port + 1 + processes if processes > 1 else None   # teachers' own process (behind nginx only)
        self.env = {**os.environ, "STREAMLIT_SERVER_COOKIE_SECRET": os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or secrets.token_hex(32)}
        if processes > 1:
            self.env.setdefault("MTL_WORKERS", str(max(1, (os.cpu_count() or 1) // processes)))
            self.env["MTL_APP_PROCESSES"] = str(processes)   # each page process's share of the cores (live/cadence.py)
            self.env["MTL_TEACHERS_APART"] = "1"   # the Class page moves a teacher's browser to the teachers' process
        self.apps: dict[int, subprocess.Popen] = {}
        self.proxy: subprocess.Popen | None = None

    def start(self) -> None:
        for p in self.app_ports + ([self.teacher_port] if self.teacher_port else []):
            self._start_app(p)
        if self.processes > 1:
            self.run.chmod(0o755)   # nginx started by root runs its workers as nobody: they write uploads under it
            conf = self.run / "nginx.conf"
            conf.write_text(nginx_conf(self.run, self.address, self.port, self.app_ports, self.teacher_port))
            self.proxy = subprocess.Popen(["nginx", "-p", str(self.run), "-c", str(conf)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _start_app(self, port: int) -> None:
        args = app_command(port)
        if self.processes == 1:
            args[-1] = self.address   # no proxy: the class reaches the one process itself
        env = {**self.env, "MTL_WORKERS": "1", "MTL_TEACHER_PROCESS": "1"} if port == self.teacher_port else self.env
        log = open(self.log_dir / f"app-{port}.log", "ab")
        self.apps[port] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def supervise(self, until=lambda: False) -> None:
        """Start again any app process that died (its browsers reconnect to another meanwhile)."""
        while not until():
            time.sleep(RESTART_PAUSE)
            for port, app in list(self.apps.items()):
                if app.poll() is not None:
                    print(f"app process on port {port} stopped (exit {app.returncode}); starting it again", flush=True)
                    self._start_app(port)
            if self.proxy is not None and self.proxy.poll() is not None:
                raise RuntimeError(f"nginx stopped (exit {self.proxy.returncode}); see {self.run / 'nginx-error.log'}")

    def stop(self) -> None:
        for app in [*self.apps.values(), self.proxy]:
            if app is not None and app.poll() is None:
                app.terminate()
        for app in [*self.apps.values(), self.proxy]:
            if app is not None:
                try:
                    app.wait(20)
                except subprocess.TimeoutExpired:
                    app.kill()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, default=1, choices=range(1, 65), metavar="N",
                        help="app processes (1..64); more than one starts nginx in front of them")
    parser.add_argument("--port", type=int, default=8501, help="the port students open (default 8501)")
    parser.add_argument("--address", default="0.0.0.0", help="the address to listen on (default: every interface)")


def serve(args: argparse.Namespace) -> int:
    """Run the class until Ctrl+C (or SIGTERM); ConfigError (no nginx, a store that cannot be opened) before anything starts."""
    room = Classroom(args.processes, args.port, args.address)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    room.start()
    teachers = " and one for teachers" if args.processes > 1 else ""
    print(f"MTL Playground: {args.processes} app process(es){teachers}; students open http://<this machine>:{args.port} "
          f"(logs in {room.log_dir}); Ctrl+C stops the class.", flush=True)
    try:
        room.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        room.stop()
    return 0
