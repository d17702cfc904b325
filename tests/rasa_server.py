"""A real Rasa server for the conversation tests: ``rasa run --enable-api`` plus the action server.

The Rasa runtime is the venv ``scripts/rasa-setup`` builds (under ``RASA_HOME``, named by the
lock file's hash) and the model the one ``scripts/rasa-train`` trained from the project's current
files (``models/pension-<fingerprint>[-eN].tar.gz``, or ``RASA_MODEL``). Both are made by
hand or by ``.ci/run``; the tests never install or train. ``scripts/rasa-serve`` starts the two
servers with the test database, Redis and photo folder, so the actions see what the tests see.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = ROOT / "nlu" / "rasa-requirements.lock"
STARTUP_SECONDS = (
    900  # loading TensorFlow and the model: a minute on a quiet machine, 6 on a busy one
)


class RasaNotAvailable(RuntimeError):
    """No Rasa venv, no model for the current project files, or the server did not come up."""


def rasa_home() -> Path:
    return Path(os.environ.get("RASA_HOME") or Path.home() / ".cache" / "pension-rasa")


def rasa_venv() -> Path:
    """Where scripts/rasa-setup installs Rasa for the current lock file."""
    return rasa_home() / hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:12]


def project_fingerprint() -> str:
    """What scripts/rasa-fingerprint prints: a hash of the files a model is trained from."""
    nlu = ROOT / "nlu"
    files = [nlu / "config.yml", *(nlu / "jieba").rglob("*.txt")]
    for folder in ("domain", "data"):
        files += (nlu / folder).rglob("*.yml")
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(ROOT).as_posix().encode()):
        digest.update(f"{path.relative_to(ROOT).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def find_model() -> Path:
    """``RASA_MODEL``, else the newest model trained from the project's current files."""
    if os.environ.get("RASA_MODEL"):
        return Path(os.environ["RASA_MODEL"])
    folder = Path(os.environ.get("RASA_MODELS") or ROOT / "models")
    found = [
        path
        for path in folder.glob(f"pension-{project_fingerprint()}*.tar.gz")
        if not path.name.endswith("-core.tar.gz")
    ]
    if not found:
        raise RasaNotAvailable(
            f"no model in {folder} trained from the current nlu/ files (run scripts/rasa-train)"
        )
    return max(found, key=lambda path: path.stat().st_mtime)


@dataclass
class RasaServer:
    url: str
    photo_dir: Path
    process: subprocess.Popen
    redis_prefix: str = ""  # the action server's Redis keys, shared by every test using it

    @classmethod
    def start(
        cls,
        *,
        database_url: str,
        redis_url: str,
        redis_prefix: str,
        photo_dir: Path,
        ports: tuple[int, int],
        frozen_clock: str,
    ) -> RasaServer:
        if not (rasa_venv() / ".installed").exists():
            raise RasaNotAvailable(f"Rasa is not installed in {rasa_venv()} (scripts/rasa-setup)")
        model = find_model()
        rasa_port, actions_port = ports
        env = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "PHOTO_DIR": str(photo_dir),
            "CLOCK": frozen_clock,  # the actions' today is the tests' today
            "RASA_PORT": str(rasa_port),
            "ACTIONS_PORT": str(actions_port),
        }
        log = open(photo_dir.parent / "rasa-serve.log", "wb")  # noqa: SIM115 — the server's
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "rasa-serve"), str(model)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends both servers
        )
        server = cls(f"http://127.0.0.1:{rasa_port}", photo_dir, process, redis_prefix)
        try:
            server._wait_until_ready(actions_port, Path(log.name))
        except RasaNotAvailable:
            server.stop()
            raise
        return server

    def _wait_until_ready(self, actions_port: int, log: Path) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RasaNotAvailable(f"scripts/rasa-serve stopped:\n{tail}")
            if _model_loaded(self.url) and _answers(f"http://127.0.0.1:{actions_port}/health"):
                return
            time.sleep(1)
        raise RasaNotAvailable(f"Rasa did not come up in {STARTUP_SECONDS} s (see {log})")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _model_loaded(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=2) as response:
            return bool(json.loads(response.read()).get("model_file"))
    except (OSError, ValueError):
        return False
