#!/usr/bin/env python3
"""Scenario driver of scripts/lab (stdlib only; run as root by scripts/lab,
which builds the namespaces and removes them again).

One process plays every end of every connection: a socket belongs to the
network namespace it was created in, so the driver enters a namespace with
setns(2) only to create a socket and returns to its own namespace at once.
That lets one thread choreograph both ends of a connection step by step
(connect, accept, request, response, abort ...) without races.

  lab.py run --prefix P --ifprefix I --out DIR --tmp DIR [--short] [--count N]

Outputs in DIR: lab.pcap, labels.json, labels.tsv, signatures.md.
Every socket has a timeout, every loop is bounded in count and time.
"""

import argparse
import collections
import ctypes
import errno
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import samples as S  # noqa: E402  (payload, readline, recv_exact, pcap parsing, packet building)

# ----------------------------------------------------------------- addresses
CLI_IPS = ["10.0.1.2", "10.0.1.3"]
SRV = "10.0.2.10"           # server
SBY = "10.0.2.11"           # standby host (takes over VIP)
VIP = "10.0.2.100"          # service address that fails over from SRV to SBY
PORT = dict(clean=7001, refused=7002, middlebox_refused=7003, accept_overflow=7004,
            server_abort=7005, client_abort=7006, data_after_close=7007, after_fin=7008,
            stale_connection=7009, middlebox_injected=7010, out_of_window=7011,
            idle_timeout=7012, keepalive_timeout=7013, no_flow=7014, no_flow_raw=7015)
MARKER = b"X-Lab-Forbidden"  # the firewall resets connections carrying this string

CAUSES = ["refused", "middlebox_refused", "accept_overflow", "server_abort", "client_abort",
          "data_after_close", "after_fin", "stale_connection", "middlebox_injected",
          "out_of_window", "idle_timeout", "keepalive_timeout", "no_flow"]

# kernel / netfilter path that sends the RST, per scenario and variant (for the docs)
KERNEL_PATH = {
    "refused": "server kernel, no listener: tcp_v4_send_reset NO_SOCKET (RST+ACK seq 0)",
    "middlebox_refused": "firewall: iptables FORWARD REJECT --reject-with tcp-reset on the SYN (nf_send_reset)",
    "accept_overflow": "server kernel: TCP_DEFER_ACCEPT listener, accept queue full, "
                       "tcp_abort_on_overflow=1: tcp_check_req listen_overflow -> embryonic_reset (INVALID_SYN)",
    "server_abort/linger": "server app: SO_LINGER{1,0} close after reading the request (tcp_disconnect, TCP_STATE)",
    "server_abort/unread": "server app: close() with unread request bytes (TCP_ABORT_ON_CLOSE)",
    "server_abort/mid_response": "server app: SO_LINGER{1,0} close in the middle of the response (TCP_STATE)",
    "client_abort/cancel_stream": "client app: SO_LINGER{1,0} close while the server streams (TCP_STATE)",
    "client_abort/close_unread": "client app: close() with unread response bytes (TCP_ABORT_ON_CLOSE)",
    "client_abort/cancel_wait": "client app: SO_LINGER{1,0} close while its request is pending (TCP_STATE)",
    "data_after_close/close": "server kernel: idle keep-alive closed with close(); client data hits the "
                              "orphaned FIN_WAIT2 timewait socket (TIMEWAIT_SOCKET)",
    "data_after_close/shutdown_rdwr": "server kernel: shutdown(SHUT_RDWR) then client data in FIN_WAIT2 "
                                      "(TCP_ABORT_ON_DATA, tcp_v4_send_reset)",
    "after_fin/server_fin": "client app: server sent response+FIN, client closes with SO_LINGER{1,0} in "
                            "CLOSE_WAIT (TCP_STATE)",
    "after_fin/client_fin": "server app: client sent request+FIN, server answers then close() with unread "
                            "bytes in CLOSE_WAIT (TCP_ABORT_ON_CLOSE)",
    "stale_connection": "standby kernel after failover (VIP moved + gratuitous ARP): no socket, "
                        "tcp_v4_send_reset NO_SOCKET (bare RST seq = SEG.ACK)",
    "middlebox_injected": "firewall: iptables FORWARD -m string REJECT --reject-with tcp-reset on client data "
                          "(RST to the client, source = server)",
    "out_of_window/client_spoof": "raw socket (attacker beside the client): RST+ACK purporting to come from "
                                  "the client, seq = client snd_nxt + 2^30; the server ignores it",
    "out_of_window/server_spoof": "raw socket in the second router: RST+ACK purporting to come from the "
                                  "server, seq = server snd_nxt + 2^30; the client ignores it",
    "out_of_window/in_window": "raw socket beside the client: RST+ACK purporting to come from the client, "
                               "seq = client snd_nxt + 100 (in window, not exact); the server kernel "
                               "answers with an RFC 5961 challenge ACK and keeps the connection",
    "idle_timeout": "firewall: conntrack entry expired (short nf_conntrack_tcp_timeout_established, "
                    "tcp_loose=0), next client packet INVALID -> REJECT --reject-with tcp-reset",
    "keepalive_timeout": "client kernel: keepalive probes unanswered (server host drops silently) -> "
                         "tcp_keepalive_timer TCP_KEEPALIVE_TIMEOUT",
    "no_flow/backscatter": "client kernel: SYN-ACK (to a SYN spoofed with the client's address behind the "
                           "sensor) for no socket -> NO_SOCKET bare RST",
    "no_flow/raw_rst": "raw socket in the server host: RST+ACK for a connection nobody has",
}

EVENT_GAP = 1.0       # RSTs of one connection within 1 s = one event (as record-samples)
TIMEOUT = 5.0


def log(*a):
    print("[lab]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------ namespaces
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
_ROOT_FD = os.open("/proc/self/ns/net", os.O_RDONLY)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


class NS:
    """A named network namespace: `with ns:` creates sockets inside it."""

    def __init__(self, name):
        self.name = name
        self.fd = os.open("/run/netns/" + name, os.O_RDONLY)

    def __enter__(self):
        _setns(self.fd)
        return self

    def __exit__(self, *exc):
        _setns(_ROOT_FD)
        return False

    def sh(self, *cmd, check=True):
        r = subprocess.run(["ip", "netns", "exec", self.name] + [str(c) for c in cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s failed: %s" % (self.name, " ".join(map(str, cmd)),
                                                       r.stderr.decode().strip()))
        return r.stdout.decode()


def errname(e):
    # (a kernel ETIMEDOUT also raises TimeoutError = socket.timeout, but with its errno set)
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    if isinstance(e, socket.timeout):
        return "timeout"
    return type(e).__name__


def set_abortive(s):
    S.set_abortive(s)


# ------------------------------------------------------------------ the lab
class Lab:
    def __init__(self, a):
        self.a = a
        self.short = a.short
        self.count = a.count or (3 if a.short else 8)
        self.ct_timeout = 5 if a.short else 10          # conntrack established timeout (fw)
        self.idle_wait = self.ct_timeout + 2            # idle_timeout connections sit this long
        self.idle_threshold = self.ct_timeout           # the analyzer's --idle-threshold
        self.ka = dict(idle=1, intvl=1, cnt=2)          # keepalive (gap < idle threshold)
        p = a.prefix
        self.cli, self.fw, self.r2 = NS(p + "-cli"), NS(p + "-fw"), NS(p + "-r2")
        self.srv, self.sby, self.span = NS(p + "-srv"), NS(p + "-sby"), NS(p + "-span")
        self.ifp = a.ifprefix
        self.labels = []
        self.leftovers = []        # sockets closed only after the capture stopped
        self.listeners = {}
        self.cap_proc = None
        self.cli_rr = 0
        self.pcap = os.path.join(a.out, "lab.pcap")

    # ------------------------------------------------------------ helpers
    def client_ip(self):
        self.cli_rr += 1
        return CLI_IPS[self.cli_rr % len(CLI_IPS)]

    def connect(self, dst, port, src=None, timeout=TIMEOUT):
        with self.cli:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        # Each connection gets its own client port, below the kernel's ephemeral range: the
        # kernel may otherwise hand a reset connection's port to the next connect() to the
        # same server (legitimate port reuse, but it would make two labels share a 4-tuple).
        self.next_port = getattr(self, "next_port", 20000) + 1
        s.bind((src or self.client_ip(), self.next_port))
        s.connect((dst, port))
        return s

    def listen(self, ns, addr, port, backlog=64, defer=None):
        with ns:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if defer:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, defer)
        s.bind((addr, port))
        s.listen(backlog)
        s.settimeout(TIMEOUT)
        self.listeners[(addr, port)] = s
        return s

    def accept(self, addr, port):
        c, _ = self.listeners[(addr, port)].accept()
        c.settimeout(TIMEOUT)
        return c

    def label(self, scen, variant, cause, cli, srv, sender, origin, **kw):
        d = dict(id=len(self.labels) + 1, scenario=scen, variant=variant, cause=cause,
                 client_ip=cli[0], client_port=cli[1], server_ip=srv[0], server_port=srv[1],
                 sender=sender, origin=origin, status="ok", problems=[], socket={})
        d.update(kw)
        self.labels.append(d)
        return d

    def expect_err(self, lab, who, fn, want):
        """Run fn (a socket operation that should fail); record the error."""
        try:
            r = fn()
            got = "ok:%r" % (r[:16] if isinstance(r, bytes) else r)
        except Exception as e:  # noqa: BLE001
            got = errname(e)
        lab["socket"][who] = got
        if want and got not in want:
            lab["problems"].append("%s socket: %s, expected %s" % (who, got, "/".join(want)))
        return got

    def recv_until_error(self, s, limit=1 << 20):
        total = 0
        for _ in range(10000):
            chunk = s.recv(65536)
            if not chunk:
                return "EOF after %d" % total
            total += len(chunk)
            if total > limit:
                break
        return "data"

    # ------------------------------------------------------------- set-up
    def setup(self):
        fw = self.fw
        fw.sh("iptables", "-P", "FORWARD", "ACCEPT")
        fw.sh("iptables", "-A", "FORWARD", "-p", "tcp", "--syn", "-d", SRV, "--dport",
              PORT["middlebox_refused"], "-j", "REJECT", "--reject-with", "tcp-reset")
        fw.sh("iptables", "-A", "FORWARD", "-p", "tcp", "-d", SRV, "--dport", PORT["middlebox_injected"],
              "-m", "string", "--algo", "bm", "--string", MARKER.decode(),
              "-j", "REJECT", "--reject-with", "tcp-reset")
        fw.sh("iptables", "-A", "FORWARD", "-p", "tcp", "-d", SRV, "--dport", PORT["idle_timeout"],
              "-m", "conntrack", "--ctstate", "INVALID", "-j", "REJECT", "--reject-with", "tcp-reset")
        # conntrack: short established timeout; no mid-stream pick-up, so a packet of an expired
        # connection is INVALID (not NEW)
        fw.sh("sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_established=%d" % self.ct_timeout)
        fw.sh("sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0")
        # server host: abort on accept-queue overflow; no SYN cookies (deterministic queues)
        self.srv.sh("sysctl", "-qw", "net.ipv4.tcp_abort_on_overflow=1")
        self.srv.sh("sysctl", "-qw", "net.ipv4.tcp_syncookies=0")
        for name in ("clean", "middlebox_refused", "server_abort", "client_abort", "data_after_close",
                     "after_fin", "middlebox_injected", "out_of_window", "idle_timeout",
                     "keepalive_timeout", "no_flow"):
            self.listen(self.srv, SRV, PORT[name])
        self.listen(self.srv, SRV, PORT["accept_overflow"], backlog=1, defer=30)
        self.srv.sh("ip", "addr", "add", VIP + "/32", "dev", self.ifp + "s")
        self.listen(self.srv, VIP, PORT["stale_connection"])
        # reachability (before the capture): both hosts answer a closed port with RST
        for dst in (SRV, SBY):
            for attempt in range(20):
                try:
                    s = self.connect(dst, 9, timeout=1.0)
                    s.close()
                    raise RuntimeError("port 9 open on %s?" % dst)
                except ConnectionRefusedError:
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                raise RuntimeError("%s unreachable from the client namespace" % dst)
        self.mac = {}
        for ns, ifn in ((self.sby, self.ifp + "b"), (self.srv, self.ifp + "s"), (self.cli, self.ifp + "c")):
            info = json.loads(ns.sh("ip", "-j", "link", "show", ifn))
            self.mac[ns.name] = info[0]["address"]

    # ------------------------------------------------------------ capture
    def start_capture(self):
        err = open(os.path.join(self.a.tmp, "tcpdump.err"), "w")
        self.cap_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.span.name, "tcpdump", "-i", self.ifp + "sp", "-n", "-U",
             "--immediate-mode", "-Z", "root", "-s", "0", "-w", self.pcap, "ip"],
            stdout=subprocess.DEVNULL, stderr=err)
        for _ in range(100):
            if "listening on" in open(err.name).read():
                return
            if self.cap_proc.poll() is not None:
                raise RuntimeError("tcpdump failed: " + open(err.name).read())
            time.sleep(0.05)
        raise RuntimeError("tcpdump did not start within 5 s")

    def stop_capture(self):
        time.sleep(0.5)
        self.cap_proc.send_signal(signal.SIGTERM)
        try:
            self.cap_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.cap_proc.kill()
            self.cap_proc.wait(timeout=5)
            raise RuntimeError("tcpdump did not stop on SIGTERM")
        log(open(os.path.join(self.a.tmp, "tcpdump.err")).read().strip().replace("\n", "; "))

    # ---------------------------------------------------------- scenarios
    def sc_clean(self, n):
        for i in range(n):
            mode = ("cli_close", "srv_close")[i % 2]
            size = (300, 20000)[i % 2]
            c = self.connect(SRV, PORT["clean"])
            lab = self.label("clean", mode, None, c.getsockname(), (SRV, PORT["clean"]), None, None)
            a = self.accept(SRV, PORT["clean"])
            c.sendall(b"GET %d\n" % size)
            S.readline(a)
            a.sendall(S.payload(size))
            S.recv_exact(c, size)
            if mode == "cli_close":
                c.shutdown(socket.SHUT_WR)
                if S.recv_to_eof(a) != 0:
                    lab["problems"].append("server got extra data")
                a.close()
                if S.recv_to_eof(c) != 0:
                    lab["problems"].append("client got extra data")
            else:
                a.close()
                if S.recv_to_eof(c) != 0:
                    lab["problems"].append("client got extra data")
            c.close()
            time.sleep(0.05)

    def refused_connects(self, n, cause, mode, origin):
        """n connects to PORT[cause] that must fail with ECONNREFUSED: the server's own RST
        (a closed port) or one a firewall sends in its name (REJECT with tcp-reset)."""
        for _ in range(n):
            src = self.client_ip()
            with self.cli:
                s = socket.socket()
            s.settimeout(TIMEOUT)
            s.bind((src, 0))
            lab = self.label(cause, mode, cause, s.getsockname(), (SRV, PORT[cause]), "server", origin)
            self.expect_err(lab, "client", lambda: s.connect((SRV, PORT[cause])), ["ECONNREFUSED"])
            s.close()
            time.sleep(0.05)

    def sc_refused(self, n):
        self.refused_connects(n, "refused", "closed_port", "host")

    def sc_middlebox_refused(self, n):
        self.refused_connects(n, "middlebox_refused", "fw_reject_syn", "middlebox")

    def sc_accept_overflow(self, n):
        # backlog 1 + TCP_DEFER_ACCEPT: a handshake stays a request until the client's first data.
        # c1, c2 connect; c1 sends (accept queue 1); c3 connects; c2 sends (queue 2 = full);
        # c3 sends -> overflow -> RST.  c1 and c2 are then accepted and served: clean.
        port = PORT["accept_overflow"]
        for _ in range(n):
            c1 = self.connect(SRV, port)
            c2 = self.connect(SRV, port)
            c1.sendall(b"GET 200\n")
            time.sleep(0.05)
            c3 = self.connect(SRV, port)
            c2.sendall(b"GET 200\n")
            time.sleep(0.05)
            l1 = self.label("accept_overflow", "survivor", None, c1.getsockname(), (SRV, port), None, None)
            l2 = self.label("accept_overflow", "survivor", None, c2.getsockname(), (SRV, port), None, None)
            lab = self.label("accept_overflow", "defer_accept_backlog1", "accept_overflow",
                             c3.getsockname(), (SRV, port), "server", "host")
            c3.sendall(b"GET 200\n")
            self.expect_err(lab, "client", lambda: c3.recv(100), ["ECONNRESET"])
            c3.close()
            for c, lc in ((c1, l1), (c2, l2)):
                try:
                    a = self.accept(SRV, port)
                    S.readline(a)
                    a.sendall(S.payload(200))
                    S.recv_exact(c, 200)
                    c.shutdown(socket.SHUT_WR)
                    S.recv_to_eof(a)
                    a.close()
                    S.recv_to_eof(c)
                except Exception as e:  # noqa: BLE001
                    lc["problems"].append("survivor: %s" % errname(e))
                c.close()
            time.sleep(0.05)

    def sc_server_abort(self, n):
        port = PORT["server_abort"]
        for i in range(n):
            mode = ("linger", "unread", "mid_response")[i % 3]
            c = self.connect(SRV, port)
            lab = self.label("server_abort", mode, "server_abort", c.getsockname(), (SRV, port),
                             "server", "host")
            a = self.accept(SRV, port)
            if mode == "unread":
                c.sendall(b"POST 500\n" + S.payload(500))
                S.readline(a)
                time.sleep(0.05)
                a.close()                       # unread request body -> RST
            elif mode == "linger":
                c.sendall(b"GET 100\n")
                S.readline(a)
                time.sleep(0.05)
                set_abortive(a)
                a.close()
            else:
                c.sendall(b"GET 10000\n")
                S.readline(a)
                a.sendall(S.payload(3000))
                S.recv_exact(c, 3000)
                time.sleep(0.05)
                set_abortive(a)
                a.close()
            self.expect_err(lab, "client", lambda: self.recv_until_error(c), ["ECONNRESET"])
            c.close()
            time.sleep(0.05)

    def sc_client_abort(self, n):
        port = PORT["client_abort"]
        for i in range(n):
            mode = ("cancel_stream", "close_unread", "cancel_wait")[i % 3]
            c = self.connect(SRV, port)
            lab = self.label("client_abort", mode, "client_abort", c.getsockname(), (SRV, port),
                             "client", "host")
            a = self.accept(SRV, port)
            res = {}
            if mode == "cancel_stream":
                c.sendall(b"STREAM\n")
                S.readline(a)
                stop = threading.Event()

                def stream():
                    try:
                        for _ in range(500):    # <= 5 s
                            if stop.is_set():
                                return
                            a.sendall(S.payload(1000))
                            time.sleep(0.01)
                        res["server"] = "ok"
                    except Exception as e:  # noqa: BLE001
                        res["server"] = errname(e)
                t = threading.Thread(target=stream, daemon=True)
                t.start()
                S.recv_exact(c, 5000)
                set_abortive(c)
                c.close()
                t.join(6)
                stop.set()
                lab["socket"]["server"] = res.get("server", "running")
                if res.get("server") not in ("ECONNRESET", "EPIPE"):
                    lab["problems"].append("server stream ended with %s" % res.get("server"))
            elif mode == "close_unread":
                c.sendall(b"GET 5000\n")
                S.readline(a)
                a.sendall(S.payload(5000))
                S.recv_exact(c, 100)
                time.sleep(0.05)
                c.close()                       # 4900 unread bytes -> RST
                self.expect_err(lab, "server", lambda: self.recv_until_error(a), ["ECONNRESET"])
            else:
                c.sendall(b"GET 100 slow\n")
                S.readline(a)
                time.sleep(0.05)
                set_abortive(c)
                c.close()
                self.expect_err(lab, "server", lambda: self.recv_until_error(a), ["ECONNRESET"])
            a.close()
            time.sleep(0.05)

    def sc_data_after_close(self, n):
        port = PORT["data_after_close"]
        conns = []
        for i in range(n):
            mode = ("close", "shutdown_rdwr")[i % 2]
            c = self.connect(SRV, port)
            lab = self.label("data_after_close", mode, "data_after_close", c.getsockname(), (SRV, port),
                             "server", "host")
            a = self.accept(SRV, port)
            c.sendall(b"GET 500\n")
            S.readline(a)
            a.sendall(S.payload(500))
            S.recv_exact(c, 500)
            conns.append((mode, c, a, lab))
        time.sleep(0.3)                         # keep-alive idle on the server ...
        for mode, c, a, lab in conns:
            if mode == "close":
                a.close()                       # ... closes it: FIN (orphan -> timewait socket)
            else:
                a.shutdown(socket.SHUT_RDWR)    # ... FIN, socket kept, receive side shut
        time.sleep(0.5)                         # the client (pool) did not notice
        for mode, c, a, lab in conns:
            c.sendall(b"GET 500\n")             # reuse: data after the server's FIN
            time.sleep(0.05)
            self.expect_err(lab, "client", lambda: c.send(b"GET 1\n"), ["ECONNRESET", "EPIPE"])
            c.close()
            if mode != "close":
                self.leftovers.append(a)

    def sc_after_fin(self, n):
        port = PORT["after_fin"]
        for i in range(n):
            mode = ("server_fin", "client_fin")[i % 2]
            c = self.connect(SRV, port)
            sender = "client" if mode == "server_fin" else "server"
            lab = self.label("after_fin", mode, "after_fin", c.getsockname(), (SRV, port), sender, "host")
            a = self.accept(SRV, port)
            if mode == "server_fin":
                c.sendall(b"GET 2000\n")
                S.readline(a)
                a.sendall(S.payload(2000))
                a.shutdown(socket.SHUT_WR)      # response + FIN
                if S.recv_to_eof(c) != 2000:
                    lab["problems"].append("short response")
                time.sleep(0.05)
                set_abortive(c)
                c.close()                       # RST instead of the client's FIN
                self.expect_err(lab, "server", lambda: self.recv_until_error(a), ["ECONNRESET"])
                a.close()
            else:
                c.sendall(b"GET 2000\n" + S.payload(300))
                c.shutdown(socket.SHUT_WR)      # request + FIN (and a body the server ignores)
                S.readline(a)
                a.sendall(S.payload(2000))
                S.recv_exact(c, 2000)
                time.sleep(0.05)
                a.close()                       # unread body -> RST instead of the server's FIN
                self.expect_err(lab, "client", lambda: self.recv_until_error(c), ["ECONNRESET"])
                c.close()
            time.sleep(0.05)

    def sc_stale_connection(self, n):
        port = PORT["stale_connection"]
        conns = []
        for _ in range(n):
            c = self.connect(VIP, port)
            lab = self.label("stale_connection", "failover", "stale_connection", c.getsockname(),
                             (VIP, port), "server", "host")
            a = self.accept(VIP, port)
            c.sendall(b"GET 400\n")
            S.readline(a)
            a.sendall(S.payload(400))
            S.recv_exact(c, 400)
            conns.append((c, a, lab))
            self.leftovers.append(a)
        time.sleep(0.2)
        # failover: the server loses VIP (and must stay silent from it), the standby takes it
        # over without the connections and announces it with a gratuitous ARP
        self.srv.sh("iptables", "-A", "OUTPUT", "-s", VIP, "-j", "DROP")
        self.srv.sh("ip", "addr", "del", VIP + "/32", "dev", self.ifp + "s")
        self.sby.sh("ip", "addr", "add", VIP + "/32", "dev", self.ifp + "b")
        self.garp(self.sby, self.ifp + "b", self.mac[self.sby.name], VIP)
        moved = False
        for _ in range(20):
            out = self.r2.sh("ip", "neigh", "show", VIP)
            if self.mac[self.sby.name] in out:
                moved = True
                break
            time.sleep(0.05)
        if not moved:
            log("stale_connection: gratuitous ARP did not move %s on r2; flushing the entry" % VIP)
            self.r2.sh("ip", "neigh", "flush", "to", VIP, check=False)
        time.sleep(0.3)
        for c, a, lab in conns:
            lab["failover"] = "garp" if moved else "neigh_flush"
            c.sendall(b"GET 400\n")             # the client does not know: next request
            self.expect_err(lab, "client", lambda: self.recv_until_error(c), ["ECONNRESET"])
            c.close()
            time.sleep(0.05)

    def garp(self, ns, ifname, mac, ip):
        with ns:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        try:
            s.bind((ifname, 0))
            m = bytes.fromhex(mac.replace(":", ""))
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, m, socket.inet_aton(ip),
                              b"\0" * 6, socket.inet_aton(ip))
            s.send(b"\xff" * 6 + m + struct.pack("!H", 0x0806) + arp + b"\0" * 18)
        finally:
            s.close()

    def sc_middlebox_injected(self, n):
        port = PORT["middlebox_injected"]
        for i in range(n):
            mode = ("later_request", "first_request")[i % 2]
            c = self.connect(SRV, port)
            lab = self.label("middlebox_injected", mode, "middlebox_injected", c.getsockname(), (SRV, port),
                             "server", "middlebox")
            a = self.accept(SRV, port)
            if mode == "later_request":
                c.sendall(b"GET 800\n")
                S.readline(a)
                a.sendall(S.payload(800))
                S.recv_exact(c, 800)
                time.sleep(0.05)
            c.sendall(b"GET 800 " + MARKER + b"\n")   # the firewall drops it and resets the client
            self.expect_err(lab, "client", lambda: self.recv_until_error(c), ["ECONNRESET"])
            c.close()
            self.leftovers.append(a)            # the server never learns about it
            time.sleep(0.05)

    def sc_out_of_window(self, n):
        port = PORT["out_of_window"]
        ETH_P_ALL = 0x0003
        for i in range(n):
            # Far outside the window from either side, or in the window but not exact: then a
            # Linux receiver sends an RFC 5961 challenge ACK and ignores the RST.
            mode = ("client_spoof", "server_spoof", "in_window")[i % 3]
            with self.cli:
                sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            try:
                sniff.bind((self.ifp + "c", 0))
                sniff.setblocking(False)
                c = self.connect(SRV, port)
                lip, lport = c.getsockname()
                sender = "server" if mode == "server_spoof" else "client"
                lab = self.label("out_of_window", mode, "out_of_window", (lip, lport), (SRV, port), sender,
                                 "middlebox" if mode == "server_spoof" else None)
                a = self.accept(SRV, port)
                c.sendall(b"GET 1000\n")
                S.readline(a)
                a.sendall(S.payload(1000))
                S.recv_exact(c, 1000)
                time.sleep(0.1)
                cli_nxt = srv_nxt = macs = None
                for _ in range(10000):
                    try:
                        frame = sniff.recv(65535)
                    except BlockingIOError:
                        break
                    p = S.parse_eth_tcp(frame)
                    if not p:
                        continue
                    if (p["src"], p["sport"], p["dst"], p["dport"]) == (lip, lport, SRV, port):
                        cli_nxt = S.seq_end(p)
                        macs = (p["src_mac"], p["dst_mac"])
                    elif (p["src"], p["sport"], p["dst"], p["dport"]) == (SRV, port, lip, lport):
                        srv_nxt = S.seq_end(p)
                if cli_nxt is None or srv_nxt is None:
                    lab["problems"].append("did not see the connection's sequence numbers")
                else:
                    if mode in ("client_spoof", "in_window"):
                        off = (1 << 30) if mode == "client_spoof" else 100
                        sniff.send(S.build_rst(macs[0], macs[1], lip, SRV, lport, port,
                                               (cli_nxt + off) & 0xFFFFFFFF, srv_nxt))
                    else:
                        with self.r2:
                            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                        try:
                            raw.sendto(S.build_ip_tcp(SRV, lip, port, lport,
                                                      (srv_nxt + (1 << 30)) & 0xFFFFFFFF, cli_nxt,
                                                      0x14, ttl=64), (lip, 0))
                        finally:
                            raw.close()
                time.sleep(0.1)
                try:                            # the connection goes on and closes cleanly
                    for size in (2000, 500):
                        c.sendall(b"GET %d\n" % size)
                        S.readline(a)
                        a.sendall(S.payload(size))
                        S.recv_exact(c, size)
                    c.shutdown(socket.SHUT_WR)
                    S.recv_to_eof(a)
                    a.close()
                    S.recv_to_eof(c)
                    lab["socket"]["after"] = "continued, clean close"
                except Exception as e:  # noqa: BLE001
                    lab["problems"].append("connection did not survive: %s" % errname(e))
                c.close()
            finally:
                sniff.close()
            time.sleep(0.05)

    def start_idle(self, n):
        port = PORT["idle_timeout"]
        self.idle = []
        for _ in range(n):
            c = self.connect(SRV, port)
            lab = self.label("idle_timeout", "conntrack_expiry", "idle_timeout", c.getsockname(), (SRV, port),
                             "server", "middlebox", idle_s=self.idle_wait)
            a = self.accept(SRV, port)
            c.sendall(b"GET 300\n")
            S.readline(a)
            a.sendall(S.payload(300))
            S.recv_exact(c, 300)
            self.idle.append((c, a, lab))
            self.leftovers.append(a)
        self.idle_deadline = time.monotonic() + self.idle_wait

    def finish_idle(self):
        delay = self.idle_deadline - time.monotonic()
        if delay > 0:
            log("idle_timeout: waiting %.1f s more" % delay)
            time.sleep(delay)
        for c, a, lab in self.idle:
            c.sendall(b"GET 300\n")            # first packet after the idle gap
            self.expect_err(lab, "client", lambda: self.recv_until_error(c), ["ECONNRESET"])
            c.close()
            time.sleep(0.05)

    def start_keepalive(self, n):
        port = PORT["keepalive_timeout"]
        self.ka_conns = []
        for _ in range(n):
            c = self.connect(SRV, port)
            lab = self.label("keepalive_timeout", "probes_unanswered", "keepalive_timeout", c.getsockname(),
                             (SRV, port), "client", "host")
            a = self.accept(SRV, port)
            c.sendall(b"GET 300\n")
            S.readline(a)
            a.sendall(S.payload(300))
            S.recv_exact(c, 300)
            self.ka_conns.append((c, a, lab))
            self.leftovers.append(a)
        time.sleep(0.05)
        # the server host goes silent (hung host, dropping host firewall)
        self.srv.sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "DROP")
        for c, a, lab in self.ka_conns:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, self.ka["idle"])
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, self.ka["intvl"])
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, self.ka["cnt"])
        self.ka_deadline = time.monotonic() + self.ka["idle"] + self.ka["intvl"] * (self.ka["cnt"] + 1) + 3

    def finish_keepalive(self):
        for c, a, lab in self.ka_conns:
            c.settimeout(max(0.1, self.ka_deadline - time.monotonic()))
            self.expect_err(lab, "client", lambda: c.recv(100), ["ETIMEDOUT"])
            c.close()

    def sc_no_flow(self, n):
        for i in range(n):
            mode = ("backscatter", "raw_rst")[i % 2]
            cip = self.client_ip()
            cport = 61000 + random.randint(0, 3999)     # outside the ephemeral range: no socket
            if mode == "backscatter":
                # a SYN flood somewhere spoofs our client's address; the sensor sees only the
                # server's SYN-ACK and the client kernel's RST
                lab = self.label("no_flow", mode, "no_flow", (cip, cport), (SRV, PORT["no_flow"]),
                                 "client", "host")
                with self.r2:
                    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                try:
                    raw.sendto(S.build_ip_tcp(cip, SRV, cport, PORT["no_flow"], random.getrandbits(32), 0,
                                              0x02, win=64240), (SRV, 0))
                finally:
                    raw.close()
            else:
                lab = self.label("no_flow", mode, "no_flow", (cip, cport), (SRV, PORT["no_flow_raw"]),
                                 "server", "host")
                with self.srv:
                    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                try:
                    raw.sendto(S.build_ip_tcp(SRV, cip, PORT["no_flow_raw"], cport, random.getrandbits(32),
                                              random.getrandbits(32), 0x14, ttl=64), (cip, 0))
                finally:
                    raw.close()
            time.sleep(0.1)

    # ------------------------------------------------------------- run it
    def run(self):
        n = self.count
        self.setup()
        self.start_capture()
        t0 = time.monotonic()
        log("capture running; %d connections per cause, conntrack established timeout %d s, "
            "idle %d s" % (n, self.ct_timeout, self.idle_wait))
        self.start_idle(n)
        for name in ("clean", "refused", "middlebox_refused", "accept_overflow", "server_abort",
                     "client_abort", "data_after_close", "after_fin", "middlebox_injected",
                     "out_of_window", "no_flow", "stale_connection"):
            log("scenario %s" % name)
            getattr(self, "sc_" + name)(n)
            time.sleep(0.1)
        self.sc_clean(max(2, n // 2))           # clean connections after everything else
        log("scenario idle_timeout (trigger)")
        self.finish_idle()
        log("scenario keepalive_timeout")
        self.start_keepalive(n)
        self.finish_keepalive()
        time.sleep(0.5)
        self.stop_capture()
        log("capture stopped after %.1f s" % (time.monotonic() - t0))
        for s in self.leftovers + list(self.listeners.values()):
            try:
                set_abortive(s)
                s.close()
            except OSError:
                pass
        return self.verify()

    # ------------------------------------------------------------ verify
    def verify(self):
        pkts = [(ts, p) for ts, p in S.read_pcap(self.pcap)]
        nonip = sum(1 for _ts, p in pkts if p is None)
        index = {}
        for lab in self.labels:
            key = (lab["client_ip"], lab["client_port"], lab["server_ip"], lab["server_port"])
            if key in index:
                raise RuntimeError("duplicate 4-tuple in the labels: %r" % (key,))
            index[key] = lab
        per = collections.defaultdict(list)
        stray = collections.Counter()
        host_ttl = collections.defaultdict(collections.Counter)
        seen = collections.Counter()
        dups = 0
        for ts, p in pkts:
            if p is None:
                continue
            sig = (p["src"], p["sport"], p["dst"], p["dport"], p["seq"], p["ack"], p["flags"],
                   p["ip_id"], p["plen"])
            if seen[sig] and p["ip_id"] != 0:
                dups += 1
            seen[sig] += 1
            k1 = (p["src"], p["sport"], p["dst"], p["dport"])
            k2 = (p["dst"], p["dport"], p["src"], p["sport"])
            if k1 in index:
                per[k1].append((ts, "c2s", p))
            elif k2 in index:
                per[k2].append((ts, "s2c", p))
            else:
                stray[k1] += 1
            if not p["flags"] & 0x04:
                host_ttl[p["src"]][p["ttl"]] += 1
        base_ttl = {h: c.most_common(1)[0][0] for h, c in host_ttl.items()}
        self.base_ttl = base_ttl
        rst_tcpdump = S.tcpdump_count(self.pcap, "tcp[tcpflags] & tcp-rst != 0")
        rst_parsed = sum(1 for _ts, p in pkts if p and p["flags"] & 0x04)
        for key, lab in index.items():
            lst = per.get(key, [])
            try:
                self.check(lab, lst, base_ttl)
            except Exception as e:  # noqa: BLE001
                lab["problems"].append("check failed: %r" % (e,))
            if lab["cause"]:
                lab["wire"] = self.signature(lab, lst, base_ttl)
            if lab["problems"]:
                lab["status"] = "excluded"
        self.meta = dict(packets=len(pkts), non_tcp=nonip, rst_packets=rst_tcpdump,
                         rst_parsed=rst_parsed, duplicate_frames=dups,
                         stray_tuples=[dict(tuple=list(k), packets=v) for k, v in stray.items()],
                         host_ttl=base_ttl)
        if rst_parsed != rst_tcpdump:
            log("WARNING: RST count mismatch: parser %d, tcpdump %d" % (rst_parsed, rst_tcpdump))
        self.write()
        bad = [c for c in CAUSES if not any(lab["cause"] == c and lab["status"] == "ok"
                                           for lab in self.labels)]
        if bad:
            log("ERROR: no verified connection for: %s" % ", ".join(bad))
            return 2
        return 0

    def check(self, lab, lst, base_ttl):
        prob = lab["problems"]
        scen, var = lab["scenario"], lab["variant"]
        if not lst:
            prob.append("no packets in the capture")
            return
        rsts = [x for x in lst if x[2]["flags"] & 0x04]
        srv_ttl = base_ttl.get(SRV)
        fl = lambda x: x[2]["flags"]            # noqa: E731
        syn = [x for x in lst if fl(x) & 0x12 == 0x02 and x[1] == "c2s"]
        synack = [x for x in lst if fl(x) & 0x12 == 0x12 and x[1] == "s2c"]
        fins = [x for x in lst if fl(x) & 0x01]
        if lab["cause"] is None:
            if rsts:
                prob.append("unexpected RST")
            if not syn or not synack or {x[1] for x in fins} != {"c2s", "s2c"}:
                prob.append("expected a handshake and FINs both ways")
            return
        if not rsts:
            prob.append("no RST seen")
            return
        want = {"client": "c2s", "server": "s2c"}[lab["sender"]]
        if any(x[1] != want for x in rsts):
            prob.append("RST from the unexpected side")
        if rsts[-1][0] - rsts[0][0] > EVENT_GAP:
            prob.append("RSTs spread over more than one event")
        r_ts, _d, r = rsts[0]
        before = lst[:next(k for k, x in enumerate(lst) if x is rsts[0])]
        data_before = [x for x in before if x[2]["plen"] > 0]
        fin_before = {x[1] for x in before if fl(x) & 0x01}
        if scen in ("refused", "middlebox_refused"):
            if not syn or synack or not (fl(rsts[0]) & 0x10) or r["ack"] != S.seq_end(syn[0][2]) \
                    or r["seq"] != 0:
                prob.append("expected SYN then RST+ACK seq 0 ack SYN+1, no SYN-ACK")
            want_ttl = 64 if scen == "middlebox_refused" else srv_ttl
            if r["ttl"] != want_ttl:
                prob.append("RST TTL %d, expected %s" % (r["ttl"], want_ttl))
        elif scen == "no_flow":
            if syn:
                prob.append("a SYN of the no_flow connection was captured")
            if var == "backscatter" and (not synack or len(rsts) != 1 or r["seq"] != synack[0][2]["ack"]):
                prob.append("expected SYN-ACK then the client's RST seq = its ack")
            if var == "raw_rst" and len(lst) != 1:
                prob.append("expected exactly one packet")
        else:
            if not syn or not synack:
                prob.append("handshake missing")
            if not data_before:
                prob.append("no data before the RST")
            if scen == "accept_overflow":
                if any(x[1] == "s2c" and x[2]["plen"] for x in before) or fl(rsts[0]) != 0x04 or \
                        not synack or r["seq"] != (synack[0][2]["seq"] + 1) & 0xFFFFFFFF:
                    prob.append("expected a bare RST seq = server ISN+1 before any server data")
            if scen in ("server_abort", "client_abort", "stale_connection", "middlebox_injected",
                        "idle_timeout", "keepalive_timeout", "accept_overflow") and fin_before:
                prob.append("FIN before the RST")
            if scen == "data_after_close":
                sfin = [x for x in before if fl(x) & 0x01 and x[1] == "s2c"]
                if not sfin or not any(x[1] == "c2s" and x[2]["plen"] and x[0] > sfin[0][0] for x in before):
                    prob.append("expected server FIN, then client data, then the RST")
            if scen == "after_fin":
                need = "s2c" if var == "server_fin" else "c2s"
                if need not in fin_before:
                    prob.append("no %s FIN before the RST" % need)
            if scen in ("middlebox_injected", "idle_timeout"):
                if r["ttl"] != 64 or r["ttl"] == srv_ttl:
                    prob.append("RST TTL %d, expected the firewall's 64 (server %s)" % (r["ttl"], srv_ttl))
            if scen == "stale_connection" and r["ttl"] != srv_ttl:
                prob.append("RST TTL %d, expected the server segment's %s" % (r["ttl"], srv_ttl))
            if scen == "idle_timeout":
                trig = [x for x in before if x[1] == "c2s"][-1]
                prev = [x for x in before if x[0] < trig[0]]
                gap = trig[0] - prev[-1][0] if prev else 0
                lab["idle_gap_s"] = round(gap, 3)
                if gap < self.idle_threshold:
                    prob.append("idle gap %.1f s below the threshold" % gap)
            if scen == "keepalive_timeout":
                last_data = max(x[0] for x in data_before)
                probes = [x for x in before if x[0] > last_data and x[1] == "c2s" and x[2]["plen"] <= 1]
                answers = [x for x in before if x[0] > last_data and x[1] == "s2c"]
                lab["keepalive_probes"] = len(probes)
                if len(probes) < self.ka["cnt"] or answers:
                    prob.append("expected >= %d unanswered probes, saw %d (%d answers)"
                                % (self.ka["cnt"], len(probes), len(answers)))
            if scen == "out_of_window":
                after = [x for x in lst if x[0] > r_ts]
                if len(rsts) != 1 or not any(x[1] == "c2s" and x[2]["plen"] for x in after) or \
                        not any(x[1] == "s2c" and x[2]["plen"] for x in after) or \
                        {x[1] for x in after if fl(x) & 0x01} != {"c2s", "s2c"}:
                    prob.append("expected one ignored RST, then data both ways and FINs")
                rcv = [x for x in before if x[1] != want]
                if rcv:
                    last = rcv[-1][2]
                    sy = [x[2] for x in lst if fl(x) & 0x02 and x[1] != want]
                    ws = sy[0]["wscale"] if sy and sy[0]["wscale"] is not None else 0
                    inside = S.seq_in_window(r["seq"], last["ack"], last["win"] << ws)
                    if lab["variant"] == "in_window":
                        # RFC 5961: the receiver answers with a pure ACK at its RCV.NXT.
                        chal = [x for x in after if x[1] != want and not x[2]["plen"]
                                and fl(x) & 0x17 == 0x10]
                        lab["challenge_ack"] = bool(chal)
                        if not inside or not chal:
                            prob.append("expected an in-window RST answered by a challenge ACK")
                    elif inside:
                        prob.append("injected RST is inside the window")

    def signature(self, lab, lst, base_ttl):
        rsts = [x for x in lst if x[2]["flags"] & 0x04]
        if not rsts:
            return None
        r_ts, rd, r = rsts[0]
        i = next(k for k, x in enumerate(lst) if x is rsts[0])
        before = lst[:i]
        snd = [x for x in before if x[1] == rd]
        rcv = [x for x in before if x[1] != rd]
        flags = "".join(c for bit, c in ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "A"))
                        if r["flags"] & bit)
        def highest(xs):        # highest sequence number a direction has used (mod 2^32)
            return max((S.seq_end(x[2]) for x in xs),
                       key=lambda v: (v - xs[0][2]["seq"]) & 0xFFFFFFFF) if xs else None
        snd_nxt, rcv_nxt = highest(snd), highest(rcv)
        seq_rel = []
        if snd and r["seq"] == snd_nxt:
            seq_rel.append("exact (sender's next seq)")
        if rcv and rcv[-1][2]["flags"] & 0x10 and r["seq"] == rcv[-1][2]["ack"]:
            seq_rel.append("= trigger's ack")
        if r["seq"] == 0:
            seq_rel.append("0")
        if snd and not seq_rel:
            seq_rel.append("sender next %+d" % (((r["seq"] - snd_nxt + (1 << 31)) & 0xFFFFFFFF)
                                                - (1 << 31)))
        if not seq_rel:
            seq_rel.append("unrelated")
        if r["flags"] & 0x10:
            if rcv and r["ack"] == rcv_nxt:
                ack_rel = "receiver's next seq (exact)"
            elif rcv:
                ack_rel = "receiver next %+d" % (((r["ack"] - rcv_nxt + (1 << 31)) & 0xFFFFFFFF)
                                                 - (1 << 31))
            else:
                ack_rel = "nothing seen to ack"
        else:
            ack_rel = "no ACK flag (ack field %d)" % r["ack"]
        sender_ip = lab["client_ip"] if rd == "c2s" else lab["server_ip"]
        # keepalive probes of the RST's sender before it: zero/one-byte segments at snd_nxt - 1
        probes = []
        if snd:
            nxt = snd_nxt
            probes = [x for x in snd if x[2]["plen"] <= 1 and not x[2]["flags"] & 0x07 and
                      x[2]["seq"] == (nxt - 1) & 0xFFFFFFFF]
        trig = rcv[-1] if rcv else None
        prev = before[before.index(trig) - 1] if trig and before.index(trig) > 0 else None
        return dict(
            flags=flags, seq=", ".join(seq_rel), ack=ack_rel, ttl=r["ttl"],
            sender_baseline_ttl=base_ttl.get(sender_ip), ip_id=r["ip_id"], df=r["df"],
            timestamp_option=r["tsval"] is not None, window=r["win"], payload=r["plen"],
            rst_count=len(rsts),
            trigger=(("SYN" if trig[2]["flags"] & 0x02 and not trig[2]["flags"] & 0x10 else
                      "SYN-ACK" if trig[2]["flags"] & 0x02 else
                      "FIN" if trig[2]["flags"] & 0x01 else
                      "data" if trig[2]["plen"] > 1 else
                      "keepalive probe" if trig[2]["plen"] <= 1 and rd != trig[1] and
                      lab["scenario"] == "keepalive_timeout" else "ACK") if trig else None),
            after_trigger_ms=round((r_ts - trig[0]) * 1000, 3) if trig else None,
            after_previous_ms=round((r_ts - before[-1][0]) * 1000, 3) if before else None,
            idle_before_trigger_s=round(trig[0] - prev[0], 3) if trig and prev else None,
            sender_sent_before=len(snd), receiver_sent_before=len(rcv),
            sender_probes_before=len(probes),
            probe_interval_s=round(probes[-1][0] - probes[-2][0], 3) if len(probes) > 1 else None,
            after_own_previous_ms=round((r_ts - snd[-1][0]) * 1000, 3) if snd else None,
            packets_after=len(lst) - i - len(rsts),
        )

    # ------------------------------------------------------------- output
    def write(self):
        out = self.a.out
        params = dict(idle_threshold_s=self.idle_threshold, conntrack_established_timeout_s=self.ct_timeout,
                      idle_wait_s=self.idle_wait, keepalive=self.ka, count=self.count,
                      mode="short" if self.short else "full")
        doc = dict(
            generated_by="scripts/lab", kernel=os.uname().release, params=params,
            analyzer_options=["--idle-threshold", str(self.idle_threshold)],
            topology=dict(clients=CLI_IPS, firewall="10.0.1.1 / 10.0.12.1", router2="10.0.12.2 / 10.0.2.1",
                          server=SRV, standby=SBY, vip=VIP,
                          capture="tc mirred of the firewall's client-facing port (ingress+egress): "
                                  "each packet once"),
            ports=PORT, capture=self.meta, kernel_paths=KERNEL_PATH,
            connections=self.labels)
        with open(os.path.join(out, "labels.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        cols = ["id", "scenario", "variant", "cause", "client_ip", "client_port", "server_ip", "server_port",
                "sender", "origin", "status"]
        with open(os.path.join(out, "labels.tsv"), "w") as f:
            f.write("# idle_threshold_s=%d\n" % self.idle_threshold)
            f.write("\t".join(cols) + "\n")
            for lab in self.labels:
                f.write("\t".join("" if lab[c] is None else str(lab[c]) for c in cols) + "\n")
        # summary + signatures
        tally = collections.OrderedDict()
        for lab in self.labels:
            k = lab["cause"] or "clean"
            t = tally.setdefault(k, [0, 0])
            t[0 if lab["status"] == "ok" else 1] += 1
        log("labels: " + ", ".join("%s %d ok%s" % (k, v[0], " (%d excluded)" % v[1] if v[1] else "")
                                   for k, v in tally.items()))
        for lab in self.labels:
            if lab["problems"]:
                log("excluded #%d %s/%s %s:%d: %s" % (lab["id"], lab["scenario"], lab["variant"],
                                                      lab["client_ip"], lab["client_port"],
                                                      "; ".join(lab["problems"])))
        if self.meta["stray_tuples"]:
            log("packets outside labelled connections: %r" % self.meta["stray_tuples"][:5])
        log("capture: %d packets, %d RST, %d duplicate frames, host TTLs %s" % (
            self.meta["packets"], self.meta["rst_packets"], self.meta["duplicate_frames"],
            self.meta["host_ttl"]))
        with open(os.path.join(out, "signatures.md"), "w") as f:
            f.write(signatures_md(self.labels, self.base_ttl))


def signatures_md(labels, base_ttl):
    """One row per scenario/variant: the RST as captured (first RST of each connection)."""
    groups = collections.OrderedDict()
    for lab in labels:
        if lab["cause"] and lab["status"] == "ok" and lab.get("wire"):
            groups.setdefault((lab["scenario"], lab["variant"]), []).append(lab)
    lines = ["| scenario / variant | n | sender | flags | seq | ack | TTL (sender's usual) | IP-ID | DF | TS opt "
             "| trigger | RST after trigger (ms) | idle before trigger (s) | sender's probes before |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def rng(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "–"
        lo, hi = min(vals), max(vals)
        return ("%.3g" % lo) if lo == hi else ("%.3g–%.3g" % (lo, hi))

    for (scen, var), ls in groups.items():
        w = [lab["wire"] for lab in ls]

        def uniq(k):
            return " / ".join(sorted({str(x[k]) for x in w}))
        ipid = sorted({x["ip_id"] for x in w})
        ipid_s = "0" if ipid == [0] else ("non-zero (%d distinct)" % len(ipid) if 0 not in ipid else "mixed")
        lines.append("| %s / %s | %d | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s |" % (
            scen, var, len(ls), ls[0]["sender"], uniq("flags"), uniq("seq"), uniq("ack"), uniq("ttl"),
            uniq("sender_baseline_ttl"), ipid_s, uniq("df"), uniq("timestamp_option"), uniq("trigger"),
            rng([x["after_trigger_ms"] for x in w]), rng([x["idle_before_trigger_s"] for x in w]),
            rng([x["sender_probes_before"] for x in w])))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--prefix", required=True)
    p.add_argument("--ifprefix", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--short", action="store_true")
    p.add_argument("--count", type=int)
    a = ap.parse_args()
    if a.count is not None and not 1 <= a.count <= 50:
        ap.error("--count must be 1..50")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lab = Lab(a)
    try:
        return lab.run()
    finally:
        if lab.cap_proc and lab.cap_proc.poll() is None:
            lab.cap_proc.kill()
            lab.cap_proc.wait(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
