#!/usr/bin/env python3
"""A small HTTP server on 127.0.0.1 in front of `git http-backend`, for tend's tests.

Usage: git-http-server.py [--tls CERT KEY] PROJECT_ROOT [TOKEN_FILE]
Prints the port it listens on, then serves until killed. With TOKEN_FILE, every request must carry
HTTP basic authentication whose password is the token in that file (any user name). With --tls it
speaks HTTPS with that certificate and key.
"""
import base64, http.server, os, ssl, subprocess, sys

arguments = sys.argv[1:]
tls = None
if arguments[:1] == ["--tls"]:
    tls, arguments = (arguments[1], arguments[2]), arguments[3:]
root = os.path.abspath(arguments[0])
token = open(arguments[1]).read().strip() if len(arguments) > 1 else None


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def authorised(self):
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if password == token:
                return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def backend(self):
        if not self.authorised():
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_ADDR="127.0.0.1",
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)))
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = backend
    do_POST = backend


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if tls:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
