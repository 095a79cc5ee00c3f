# A fork server for the reference tests' Python: imports torch, numpy and yaml once, then runs each
# request (a script, `-c CODE` or `-` from stdin) in a fresh fork with the caller's argv, working
# folder, environment and stdin/stdout/stderr (passed as file descriptors), and hands back its wait
# status. A ctest run starts Python a few hundred times, and `import torch` is 1.5-2 s of CPU each
# time; a fork costs milliseconds. The script runs exactly as under `python3 SCRIPT`: same code, same
# torch, its own process; only the import is shared.
#
#   pyfork_server.py SOCKET     (started by pyfork_client.py on first use; exits after
#                                MEGATUNE_PYFORK_IDLE seconds, default 30, with no request running)
import io
import json
import os
import select
import signal
import socket
import struct
import sys
import traceback

for _mod in ("torch", "numpy", "yaml"):
    try:
        __import__(_mod)
    except Exception:  # a missing module fails in the script, as it would without the server
        pass

MAX_REQUEST = 16 << 20


def recv_request(conn):
    """(argv, cwd, env, fds) from one client message: a 4-byte length, JSON, and SCM_RIGHTS fds."""
    fds = []
    data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(3 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) // 4 * 4]))
    if len(data) < 4:
        raise ValueError("short request")
    (n,) = struct.unpack("!I", data[:4])
    if n > MAX_REQUEST:
        raise ValueError("request too large")
    body = data[4:]
    while len(body) < n:
        chunk = conn.recv(n - len(body))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    req = json.loads(body.decode("utf-8", "surrogateescape"))
    if len(fds) != 3:
        raise ValueError("expected stdin, stdout and stderr")
    return req["argv"], req["cwd"], req["env"], fds


def run_child(argv, cwd, env, fds):
    """In the forked child: become the caller's `python3 ARGV...` and never return."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group, so the handler can stop it and whatever it started
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        # The standard streams are rebuilt on the new descriptors, buffered as Python would
        # buffer them for this caller (line-buffered only on a terminal).
        sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.open(1, "wb", closefd=False), encoding="utf-8", line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(io.open(2, "wb", closefd=False), encoding="utf-8", errors="backslashreplace",
                                      line_buffering=True)
        threads = env.get("OMP_NUM_THREADS")
        if "torch" in sys.modules and threads and threads.isdigit() and int(threads) > 0:
            sys.modules["torch"].set_num_threads(int(threads))  # read by libgomp at the server's import
        # Random states a fresh interpreter would seed from the OS, rather than the server's copies.
        import random

        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        sys.argv = list(argv)
        if argv[0] in ("-c", "-"):
            import types

            main = types.ModuleType("__main__")
            main.__dict__["__builtins__"] = __builtins__
            sys.modules["__main__"] = main
            sys.path[0] = ""
            if argv[0] == "-c":
                sys.argv = ["-c"] + list(argv[2:])
                exec(compile(argv[1], "<string>", "exec"), main.__dict__)
            else:
                exec(compile(sys.stdin.read(), "<stdin>", "exec"), main.__dict__)
        else:
            import runpy

            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            try:
                print(e.code, file=sys.stderr)
            except Exception:
                pass
            code = 1
    except BaseException:
        try:
            traceback.print_exc()
        except Exception:
            pass
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def handle(conn):
    """In a per-request process: fork the child, stop it if the caller goes away, send its status."""
    try:
        argv, cwd, env, fds = recv_request(conn)
    except Exception:
        os._exit(1)  # the caller sees EOF before "S" and runs Python itself
    pid = os.fork()
    if pid == 0:
        conn.close()
        run_child(argv, cwd, env, fds)
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(b"S")
    except OSError:
        pass
    pidfd = os.pidfd_open(pid)
    while True:
        ready, _, _ = select.select([conn, pidfd], [], [])
        if pidfd in ready:
            break
        if conn in ready:
            try:
                gone = conn.recv(1) == b""
            except OSError:
                gone = True
            if gone:  # the caller was killed (a timeout, a test's trap): so is what it ran
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                break
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall(struct.pack("!i", status))
    except OSError:
        pass
    os._exit(0)


def main():
    path = sys.argv[1]
    idle = float(os.environ.get("MEGATUNE_PYFORK_IDLE", "30"))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = "%s.%d" % (path, os.getpid())
    srv.bind(tmp)
    srv.listen(64)
    os.rename(tmp, path)  # clients see a socket that already listens, or none
    srv.settimeout(idle)
    running = set()

    def reap():
        while running:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                running.clear()
                return
            if pid == 0:
                return
            running.discard(pid)

    while True:
        reap()
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            reap()
            if running:
                continue
            # Unlink first: a caller that still connects gets no "S" and runs Python itself.
            # No other server can have taken the path: one is started only after a connect fails.
            try:
                os.unlink(path)
            except OSError:
                pass
            srv.close()
            os._exit(0)  # no interpreter teardown: unloading torch takes seconds
        conn.settimeout(None)
        pid = os.fork()
        if pid == 0:
            srv.close()
            handle(conn)
        running.add(pid)
        conn.close()


if __name__ == "__main__":
    main()
