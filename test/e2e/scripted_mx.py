"""Misbehaving MX hosts for delivery tests, scripted with plain sockets and
threads (stdlib only): aiosmtpd cannot be made to fail a TLS handshake the
way a broken OpenSMTPD does, nor to hang up in the middle of a pipelined
batch.

    mx = ScriptedMx("127.0.0.11", port, "broken_tls", certdir)

Behaviours:
  ok               plain SMTP with PIPELINING, no STARTTLS
  good_tls         plain SMTP with a working STARTTLS (self-signed certificate)
  broken_tls       offers STARTTLS and answers 220, then does a TLS 1.2
                   handshake that sends its self-signed certificate, demands
                   a client certificate and aborts with a handshake_failure
                   alert when none comes (OpenSMTPD 6.8 on OpenSSL 3 aborts
                   the same way, after its certificate); plain SMTP otherwise
  rcpt_421         250 to MAIL, "421 4.7.0 ..." to the first RCPT of the
                   pipelined batch, then hangs up (after reading the batch,
                   so the close is a FIN, not a reset)
  drop_after_mail  250 to MAIL, then hangs up without answering RCPT
Every accepted message is kept in .messages as a dict (tls, mail, rcpts,
data); .starttls counts STARTTLS commands, .connections connections.
"""
import socket
import ssl
import threading


class _Lines:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line


class ScriptedMx:
    def __init__(self, ip, port, behaviour, certdir):
        self.ip = ip
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.messages = []
        self.starttls = 0
        self.connections = 0
        self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.tls_ctx.load_cert_chain(f"{certdir}/cert.pem", f"{certdir}/key.pem")
        self.tls_ctx.verify_mode = ssl.CERT_REQUIRED  # ferry has no client certificate: abort
        self.tls_ctx.load_verify_locations(f"{certdir}/cert.pem")
        if behaviour == "good_tls":
            self.tls_ctx.verify_mode = ssl.CERT_NONE
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(128)
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped = True
        self.sock.close()

    def delivered(self, rcpt):
        with self.lock:
            return [m for m in self.messages if rcpt in m["rcpts"]]

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(30)
        current = [conn]  # the TLS socket replaces conn after STARTTLS
        try:
            self._session(conn, current)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                current[-1].close()
            except OSError:
                pass

    def _hang_up(self, sock, lines):
        # Read what the client pipelined up to DATA, so that closing sends
        # a FIN and the reply already written is not destroyed by a reset.
        sock.settimeout(2)
        try:
            while b"DATA\r\n" not in lines.buf.upper():
                chunk = sock.recv(65536)
                if not chunk:
                    break
                lines.buf += chunk
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _session(self, sock, current):
        lines = _Lines(sock)
        tls = False
        sock.sendall(b"220 %s ESMTP scripted\r\n" % self.ip.encode())
        mail, rcpts = None, []
        while True:
            line = lines.line()
            if line is None:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                caps = [b"250-scripted", b"250-PIPELINING", b"250-8BITMIME"]
                if self.behaviour in ("broken_tls", "good_tls") and not tls:
                    caps.append(b"250-STARTTLS")
                caps.append(b"250 SIZE 10000000")
                sock.sendall(b"\r\n".join(caps) + b"\r\n")
            elif verb == b"STAR":
                with self.lock:
                    self.starttls += 1
                sock.sendall(b"220 2.0.0 go ahead\r\n")
                tls_sock = self.tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                current.append(tls_sock)
                tls_sock.do_handshake()  # broken_tls raises: no client certificate → alert, close
                sock, tls, lines = tls_sock, True, _Lines(tls_sock)
            elif verb == b"MAIL":
                mail, rcpts = line[10:].decode(errors="replace").strip("<> "), []
                sock.sendall(b"250 2.1.0 ok\r\n")
                if self.behaviour == "drop_after_mail":
                    return self._hang_up(sock, lines)
            elif verb == b"RCPT":
                if self.behaviour == "rcpt_421":
                    sock.sendall(b"421 4.7.0 scripted-421 too busy, closing\r\n")
                    return self._hang_up(sock, lines)
                rcpts.append(line[8:].decode(errors="replace").split(">")[0].strip("<"))
                sock.sendall(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                sock.sendall(b"354 go on\r\n")
                data = []
                while True:
                    d = lines.line()
                    if d is None:
                        return
                    if d == b".":
                        break
                    data.append(d[1:] if d.startswith(b".") else d)
                with self.lock:
                    self.messages.append({"tls": tls, "mail": mail, "rcpts": rcpts,
                                          "data": b"\r\n".join(data)})
                sock.sendall(b"250 2.0.0 queued\r\n")
            elif verb in (b"RSET", b"NOOP"):
                mail, rcpts = (None, []) if verb == b"RSET" else (mail, rcpts)
                sock.sendall(b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                sock.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                sock.sendall(b"502 5.5.2 unknown\r\n")
