#!/usr/bin/env python3
"""A forwarding HTTP proxy on 127.0.0.1 that logs what it forwards, for tend's tests.

Usage: http-proxy.py LOG_FILE
Prints the port it listens on, then serves until killed. Plain requests (an absolute URL in the
request line) are forwarded; CONNECT opens a tunnel. Each request's method and target is appended
to LOG_FILE, one line each, so a test can tell that a fetch went through the proxy.
"""
import http.server, select, socket, socketserver, sys, urllib.parse

log_path = sys.argv[1]


def note(line):
    with open(log_path, "a") as log:
        log.write(line + "\n")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_CONNECT(self):
        note(f"CONNECT {self.path}")
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                break
            for ready in readable:
                data = ready.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if ready is self.connection else self.connection).sendall(data)

    def forward(self):
        note(f"{self.command} {self.path}")
        url = urllib.parse.urlsplit(self.path)
        upstream = socket.create_connection((url.hostname, url.port or 80))
        path = url.path + ("?" + url.query if url.query else "")
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        headers = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection"))
        upstream.sendall(f"{self.command} {path} HTTP/1.0\r\n{headers}Connection: close\r\n\r\n".encode() + body)
        response = b""
        while True:
            chunk = upstream.recv(65536)
            if not chunk:
                break
            response += chunk
        upstream.close()
        head, _, payload = response.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        self.send_response(int(status[1]), status[2].decode() if len(status) > 2 else "")
        for line in lines[1:]:
            key, _, value = line.decode().partition(":")
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = forward
    do_POST = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
