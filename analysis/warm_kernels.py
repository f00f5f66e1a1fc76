"""Fresh Jupyter kernels without paying TensorFlow's import each time: kernels forked from a warm parent.

Importing TensorFlow and Keras costs ~7.5 CPU-seconds here, in every run's kernel (a default-study run trains for
~80 s). A study runner therefore keeps one *zygote* per environment: a process that has imported TensorFlow,
Keras, ganlib and ipykernel -- and done nothing else: no TensorFlow context, no thread pools, no model. Each run's
kernel is a `fork()` of it, so every run still gets a process of its own with pristine state (nothing a run does
can reach the next one), and the executed notebook per run stays papermill's.

    jupyter/papermill --starts--> `python -m analysis.warm_kernels launch SOCKET -f kernel.json`   (the launcher)
    launcher --asks over SOCKET, passing its stdin/stdout/stderr and environment--> zygote --forks--> kernel

The launcher stands in for the kernel towards jupyter_client: it forwards SIGINT/SIGTERM to the kernel and exits
with it; a kernel whose launcher is gone (killed, e.g. papermill's immediate shutdown) exits within a second.
When no zygote answers, the launcher simply becomes an ordinary ipykernel (exec), so nothing depends on it.
The zygote is started with the run's thread settings (OMP_NUM_THREADS, ... are read when libraries load), so
there is one per distinct environment; `ZygotePool` keeps them and stops them when the worker exits.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# ganlib first: it picks TensorFlow's CPU kernels, which TensorFlow reads when first imported.
PRELOAD = ("ganlib", "tensorflow", "keras", "ganlib.run", "ganlib.metrics", "ganlib.notebook_support",
           "ganlib.settings_form", "matplotlib.pyplot", "ipykernel.kernelapp", "papermill")
STARTUP_TIMEOUT = 180  # seconds for a zygote to import everything (7-10 s here; more on a loaded machine)


# ---------------------------------------------------------------------------------------------- zygote
def serve(socket_path: str) -> None:
    import importlib

    # What ipykernel sets before a kernel's first import; matplotlib reads it when imported (Keras imports pyplot).
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # optional ones (papermill is only injected-parameter tooling in the kernel)
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped automatically; launchers wait for them
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(8)
    server.settimeout(1.0)  # single-threaded (forks copy one thread): the parent check below is this loop's
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            if os.getppid() != parent:  # the worker that started us is gone (even by SIGKILL): so are we
                os._exit(0)
            continue
        conn.settimeout(None)
        fds = []
        try:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:  # the kernel
                server.close()
                conn.close()
                _become_kernel(request, fds)
            conn.sendall(json.dumps({"pid": pid}).encode())
        except Exception as e:  # a bad request must not take the zygote down
            try:
                conn.sendall(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())
            except OSError:
                pass
        finally:
            for fd in fds:
                os.close(fd)
            conn.close()


def _become_kernel(request: dict, fds) -> None:
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        launcher = request["launcher_pid"]

        def watch():  # the launcher is what jupyter_client knows: without it, this kernel has no owner
            while True:
                time.sleep(0.5)
                try:
                    os.kill(launcher, 0)
                except ProcessLookupError:
                    os._exit(1)

        threading.Thread(target=watch, daemon=True, name="launcher-watch").start()
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


# ---------------------------------------------------------------------------------------------- launcher
def launch(socket_path: str, argv) -> int:
    """Ask the zygote for a kernel and stand in for it; without a zygote, become an ordinary kernel."""
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(socket_path)
        request = {"argv": list(argv), "env": dict(os.environ), "cwd": os.getcwd(), "launcher_pid": os.getpid()}
        socket.send_fds(client, [json.dumps(request).encode()], [0, 1, 2])
        reply = json.loads(client.recv(1 << 16) or b"{}")
        client.close()
        pid = reply["pid"]
    except (OSError, ValueError, KeyError):
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])  # does not return

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        if signum == signal.SIGTERM:
            sys.exit(0)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(signum, forward)
    parent = os.getppid()
    while True:  # not our child: watch it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        if os.getppid() != parent:  # whoever started the kernel is gone (a killed runner): so is the kernel
            os.kill(pid, signal.SIGKILL)
            return 1
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------- pool
class ZygotePool:
    """One zygote per environment (thread settings, visible GPU), started on first use, stopped at exit."""

    def __init__(self):
        self._zygotes, self._lock = {}, threading.Lock()
        self._dir = tempfile.mkdtemp(prefix="ganlib-zygotes-")
        atexit.register(self.close)

    def kernel_command(self, env: dict):
        """The kernel command for a kernel of `env` (None when no zygote could be started: use a plain kernel)."""
        key = tuple(sorted(env.items()))
        with self._lock:
            entry = self._zygotes.get(key)
            if entry is not None and entry[0].poll() is not None:  # it died: start another
                entry = None
            if entry is None:
                entry = self._start(env)
                self._zygotes[key] = entry
        if entry[1] is None:
            return None
        return [sys.executable, "-m", "analysis.warm_kernels", "launch", entry[1], "-f", "{connection_file}"]

    def _start(self, env):
        path = os.path.join(self._dir, f"z{len(self._zygotes)}.sock")
        proc = subprocess.Popen([sys.executable, "-m", "analysis.warm_kernels", "serve", path], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True)
        ready = []
        reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT)
        if not ready or ready[0].strip() != "ready":
            proc.kill()
            return proc, None
        return proc, path

    def close(self):
        for proc, _ in self._zygotes.values():
            if proc.poll() is None:
                proc.terminate()
        self._zygotes.clear()


_POOL = None


def pool() -> ZygotePool:
    global _POOL
    if _POOL is None:
        _POOL = ZygotePool()
    return _POOL


def enabled() -> bool:
    """Warm kernels unless GANLIB_WARM_KERNELS=0 (then every run's kernel imports everything itself)."""
    return os.environ.get("GANLIB_WARM_KERNELS", "1") != "0" and hasattr(socket, "send_fds") and hasattr(os, "fork")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "launch":
        sys.exit(launch(sys.argv[2], sys.argv[3:]))
    else:
        sys.exit("usage: python -m analysis.warm_kernels serve SOCKET | launch SOCKET -f CONNECTION_FILE")
