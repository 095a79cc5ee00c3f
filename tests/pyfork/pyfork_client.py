# `python3 ARGS...` for the reference tests, through pyfork_server.py (see there): sends argv, the
# working folder, the environment and its stdin/stdout/stderr to the server, which runs the script
# in a fork that has torch imported already, and exits with the script's status (or dies by its
# signal). Anything it cannot hand over runs the real Python instead, unchanged:
#   - MEGATUNE_PYFORK=0, or no MEGATUNE_PYFORK_DIR (the folder for the socket);
#   - options before the script (`python3 -u x.py`): only `SCRIPT`, `-c CODE` and `-` are forwarded;
#   - a server that cannot be started or that drops the request before starting it.
# Run as `$MEGATUNE_PYFORK_PYTHON -I -S pyfork_client.py ARGS...` by the `python` wrapper beside it.
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

REAL = os.environ.get("MEGATUNE_PYFORK_PYTHON") or "/usr/bin/python3"
ARGS = sys.argv[1:]


def run_real():
    os.execv(REAL, [REAL] + ARGS)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return s
    except OSError:
        s.close()
        return None


def start_server(folder, path):
    """Starts the server unless another caller did, under a lock; the connected socket or None."""
    with open(os.path.join(folder, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = connect(path)
        if s:
            return s
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(folder, "server.log"), "ab") as log:
            proc = subprocess.Popen([REAL, os.path.join(here, "pyfork_server.py"), path], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True, close_fds=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s = connect(path)
            if s:
                return s
            if proc.poll() is not None:
                return None
            time.sleep(0.02)
        return None


def main():
    folder = os.environ.get("MEGATUNE_PYFORK_DIR", "")
    if os.environ.get("MEGATUNE_PYFORK", "1") == "0" or not folder or not ARGS:
        run_real()
    if ARGS[0] == "-c":
        if len(ARGS) < 2:
            run_real()
    elif ARGS[0] != "-" and (ARGS[0].startswith("-") or not os.path.isfile(ARGS[0])):
        run_real()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        run_real()
    path = os.path.join(os.path.abspath(folder), "sock")
    if len(path.encode()) >= 100:  # sun_path holds 108 bytes
        run_real()
    s = connect(path) or start_server(folder, path)
    if not s:
        run_real()
    body = json.dumps({"argv": ARGS, "cwd": os.getcwd(), "env": dict(os.environ)}).encode("utf-8", "surrogateescape")
    msg = struct.pack("!I", len(body)) + body
    try:
        sent = s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("3i", 0, 1, 2))])
        if sent < len(msg):
            s.sendall(msg[sent:])
        started = s.recv(1) == b"S"
    except OSError:
        started = False
    if not started:  # nothing ran: the server was going away or refused the request
        s.close()
        run_real()
    # From here the script is running; a signal that ends this process closes the socket, and the
    # server then stops the script (as a killed `python3` would stop).
    raw = b""
    while len(raw) < 4:
        chunk = s.recv(4 - len(raw))
        if not chunk:
            sys.stderr.write("pyfork: the server went away while running %s\n" % " ".join(ARGS[:2]))
            os._exit(1)
        raw += chunk
    (status,) = struct.unpack("!i", raw)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


main()
