#!/usr/bin/env python3
"""A local HTTP file server for the download tests: serves ROOT on 127.0.0.1, optionally behaving
badly the ways real servers and proxies do.

usage: download_server.py ROOT --port-file F --log F [--no-range] [--rate BYTES_PER_S]
       [--truncate-at N] [--short-length N] [--html] [--redirect]

  --no-range       ignore Range headers (answer 200 with the whole file), as many servers do
  --rate R         send at most R bytes per second (so a test can kill a client halfway)
  --truncate-at N  announce the whole length but close the connection after N bytes
  --short-length N announce N bytes fewer than the file has (and send only that many)
  --html           answer every request with an HTML error page and status 200
  --redirect       answer /PATH with 302 to /signed/PATH?token=x (as NGC redirects to signed storage)
The chosen port is written to --port-file; every request line (method, path, Range) is appended to
--log, so a test can prove that no request was made.
"""
import argparse
import http.server
import os
import re
import socketserver
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--truncate-at", type=int, default=-1)
    ap.add_argument("--short-length", type=int, default=0)
    ap.add_argument("--html", action="store_true")
    ap.add_argument("--redirect", action="store_true")
    a = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            rng = self.headers.get("Range", "")
            with open(a.log, "a") as f:
                f.write("GET %s range=%s\n" % (self.path, rng or "-"))
            if a.html:
                body = b"<!DOCTYPE html><html><body><h1>Please sign in</h1></body></html>\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            rel = self.path.lstrip("/").split("?")[0]
            if a.redirect:
                if not rel.startswith("signed/"):
                    self.send_response(302)
                    self.send_header("Location", "/signed/%s?token=x" % rel)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                rel = rel[len("signed/"):]
            path = os.path.normpath(os.path.join(a.root, rel))
            if not path.startswith(os.path.abspath(a.root)) or not os.path.isfile(path):
                body = b"not found\n"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            size = os.path.getsize(path)
            start = 0
            m = re.match(r"bytes=(\d+)-$", rng)
            if m and not a.no_range:
                start = int(m.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
            else:
                self.send_response(200)
                self.send_header("Accept-Ranges", "none" if a.no_range else "bytes")
            n = size - start - a.short_length
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            limit = n if a.truncate_at < 0 else min(n, a.truncate_at)
            with open(path, "rb") as f:
                f.seek(start)
                sent = 0
                t0 = time.monotonic()
                while sent < limit:
                    chunk = f.read(min(65536, limit - sent))
                    if not chunk:
                        break
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    sent += len(chunk)
                    if a.rate:
                        ahead = sent / a.rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
