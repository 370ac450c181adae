#!/usr/bin/env python3
"""Scenario driver for scripts/record-samples (stdlib only).

Sub-commands (each one is run by record-samples inside a network namespace):

  server  --addr A --ready-file F --stop-file F
          listens on every scenario port except the "refused" one and plays
          the server side of each scenario until the stop file appears
          (or a hard deadline passes).
  client  SCENARIO --server A [--iface IF] [--ready-file F --go-file F]
          plays the client side of one scenario.
  verify  --data-dir D --kernel K
          reads the recorded pcaps back, checks that every scenario really
          produced what it claims (who sent each RST, no stray RSTs, ...)
          and writes D/expected.json.
  table   EXPECTED_JSON
          prints the ground-truth table of tests/data/README.md.
  plan    prints "scenario port" lines (used by record-samples).

Every socket has a timeout and every loop is bounded in count and time.
"""

import argparse
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcapio  # noqa: E402
from pcapio import csum  # noqa: E402

# --------------------------------------------------------------------------
# The plan: one entry per scenario.  This is the single source of truth for
# ports, connection counts and the ground-truth cause / RST sender.
# --------------------------------------------------------------------------
CAUSES = ["refused", "middlebox_refused", "accept_overflow", "server_abort",
          "client_abort", "data_after_close", "after_fin", "stale_connection",
          "middlebox_injected", "out_of_window", "idle_timeout", "keepalive_timeout",
          "no_flow", "unclassified"]

PLAN = {
    # name:          port, connections, reset events, cause, rst sender
    "clean":         dict(port=7001, conns=3, events=0, cause=None,            sender=None),
    "refused":       dict(port=7002, conns=3, events=3, cause="refused",       sender="server"),
    "client_abort":  dict(port=7003, conns=2, events=2, cause="client_abort",  sender="client"),
    "server_abort":  dict(port=7004, conns=2, events=2, cause="server_abort",  sender="server"),
    "after_fin":     dict(port=7005, conns=2, events=2, cause="after_fin",     sender="client"),
    "out_of_window": dict(port=7006, conns=1, events=1, cause="out_of_window", sender="client"),
    "no_flow":       dict(port=7007, conns=2, events=2, cause="no_flow",       sender="client"),
}
ORDER = ["clean", "refused", "client_abort", "server_abort", "after_fin",
         "out_of_window", "no_flow"]
PORT2SCEN = {v["port"]: k for k, v in PLAN.items()}

SOCK_TIMEOUT = 5.0
EVENT_GAP = 1.0          # RSTs on one connection within 1 s = one event


def log(*a):
    print("[samples]", *a, file=sys.stderr, flush=True)


def touch(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def wait_file(path, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def readline(s, limit=256):
    """Read one '\n'-terminated line byte by byte (so nothing after it is
    consumed from the receive queue).  Returns b'' on EOF."""
    buf = b""
    for _ in range(limit):
        ch = s.recv(1)
        if not ch:
            return buf
        buf += ch
        if ch == b"\n":
            return buf
    raise RuntimeError("request line too long")


def recv_exact(s, n):
    buf = b""
    for _ in range(100000):
        if len(buf) >= n:
            break
        chunk = s.recv(min(65536, n - len(buf)))
        if not chunk:
            raise RuntimeError("unexpected EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_to_eof(s, limit=1 << 22):
    total = 0
    for _ in range(100000):
        chunk = s.recv(65536)
        if not chunk:
            return total
        total += len(chunk)
        if total > limit:
            raise RuntimeError("peer sent too much")
    raise RuntimeError("recv_to_eof: loop bound hit")


def set_abortive(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def payload(n):
    pat = b"rstscope-sample-data-"
    return (pat * (n // len(pat) + 1))[:n]


# --------------------------------------------------------------------------
# Server side
# --------------------------------------------------------------------------
def srv_clean(c):
    # request: "GET <n> <cliclose|srvclose>\n"
    parts = readline(c).split()
    n, mode = int(parts[1]), parts[2].decode()
    c.sendall(payload(n))
    if mode == "srvclose":
        c.close()                       # we close first (HTTP/1.0 style)
        return
    recv_to_eof(c)                      # client closes first
    c.close()


def srv_client_abort(c):
    # request: "STREAM\n" -> stream 1000-byte chunks until the client resets
    readline(c)
    for _ in range(1000):               # <= 10 s
        try:
            c.sendall(payload(1000))
        except OSError:
            break
        time.sleep(0.01)
    c.close()


def srv_server_abort(c):
    # request: "ABORT linger\n" or "ABORT unread\n" (+ more bytes we never read)
    parts = readline(c).split()
    mode = parts[1].decode() if len(parts) > 1 else "linger"
    if mode == "unread":
        time.sleep(0.3)                 # let the trailing bytes arrive
        c.close()                       # close with unread data -> RST
    else:
        time.sleep(0.05)
        set_abortive(c)
        c.close()                       # SO_LINGER{1,0} -> RST


def srv_after_fin(c):
    # request: "GET <n>\n" -> response, then FIN; then wait for the peer
    parts = readline(c).split()
    c.sendall(payload(int(parts[1])))
    c.shutdown(socket.SHUT_WR)
    try:
        recv_to_eof(c)
    except OSError:
        pass                            # ECONNRESET expected
    c.close()


def srv_request_loop(c):
    # used by out_of_window and no_flow: "GET <n>\n" repeated until EOF
    c.settimeout(60.0)                  # no_flow idles a while
    for _ in range(100):
        try:
            line = readline(c)
        except OSError:
            break                       # reset by the client (no_flow)
        if not line:
            break
        c.sendall(payload(int(line.split()[1])))
    c.close()


SERVER_HANDLERS = {
    7001: srv_clean,
    7003: srv_client_abort,
    7004: srv_server_abort,
    7005: srv_after_fin,
    7006: srv_request_loop,
    7007: srv_request_loop,
}


def cmd_server(args):
    listeners = {}
    for port in SERVER_HANDLERS:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((args.addr, port))
        s.listen(16)
        s.setblocking(False)
        listeners[s.fileno()] = (s, port)
    touch(args.ready_file)
    log("server listening on", args.addr, sorted(SERVER_HANDLERS))

    def run(handler, c, port):
        try:
            handler(c)
        except Exception as e:  # noqa: BLE001 - log and carry on
            log("server handler %d: %r" % (port, e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        r, _, _ = select.select([v[0] for v in listeners.values()], [], [], 0.2)
        for ls in r:
            try:
                c, _peer = ls.accept()
            except BlockingIOError:
                continue
            port = listeners[ls.fileno()][1]
            c.setblocking(True)
            c.settimeout(SOCK_TIMEOUT)
            threading.Thread(target=run, args=(SERVER_HANDLERS[port], c, port),
                             daemon=True).start()
    log("server stopping")
    return 0


# --------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------
def connect(server, port, timeout=SOCK_TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((server, port))
    return s


def cli_clean(a):
    port = PLAN["clean"]["port"]
    variants = [(200, "cliclose"), (20000, "srvclose"), (1500, "cliclose")]
    for n, mode in variants[:PLAN["clean"]["conns"]]:
        s = connect(a.server, port)
        s.sendall(b"GET %d %s\n" % (n, mode.encode()))
        if mode == "srvclose":
            got = recv_to_eof(s)        # read everything incl. the FIN
            if got != n:
                raise RuntimeError("clean: got %d of %d" % (got, n))
        else:
            recv_exact(s, n)
            s.shutdown(socket.SHUT_WR)  # our FIN ...
            if recv_to_eof(s) != 0:     # ... wait for theirs
                raise RuntimeError("clean: unexpected extra data")
        s.close()
        time.sleep(0.1)


def cli_refused(a):
    port = PLAN["refused"]["port"]
    for _ in range(PLAN["refused"]["conns"]):
        try:
            s = connect(a.server, port)
        except ConnectionRefusedError:
            pass
        else:
            s.close()
            raise RuntimeError("refused: connect to %d unexpectedly succeeded" % port)
        time.sleep(0.1)


def cli_client_abort(a):
    port = PLAN["client_abort"]["port"]
    for _ in range(PLAN["client_abort"]["conns"]):
        s = connect(a.server, port)
        s.sendall(b"STREAM\n")
        recv_exact(s, 8000)             # mid-transfer ...
        set_abortive(s)
        s.close()                       # ... abort: RST from the client
        time.sleep(0.3)


def cli_server_abort(a):
    port = PLAN["server_abort"]["port"]
    modes = ["linger", "unread"]
    for i in range(PLAN["server_abort"]["conns"]):
        mode = modes[i % 2]
        s = connect(a.server, port)
        s.sendall(b"ABORT %s\n" % mode.encode())
        if mode == "unread":
            time.sleep(0.05)
            s.sendall(payload(500))     # the server never reads this
        try:
            data = s.recv(1024)
            log("server_abort: recv returned %r (expected a reset)" % data[:20])
        except ConnectionResetError:
            pass
        s.close()                       # socket already reset: nothing sent
        time.sleep(0.2)


def cli_after_fin(a):
    port = PLAN["after_fin"]["port"]
    for _ in range(PLAN["after_fin"]["conns"]):
        s = connect(a.server, port)
        s.sendall(b"GET 3000\n")
        got = recv_to_eof(s)            # response + server FIN
        if got != 3000:
            raise RuntimeError("after_fin: got %d bytes" % got)
        time.sleep(0.05)
        set_abortive(s)
        s.close()                       # RST after the FIN exchange started
        time.sleep(0.2)


def cli_no_flow(a):
    port = PLAN["no_flow"]["port"]
    socks = []
    for _ in range(PLAN["no_flow"]["conns"]):
        s = connect(a.server, port)
        s.sendall(b"GET 100\n")
        recv_exact(s, 100)
        socks.append(s)
    if a.ready_file:
        time.sleep(0.2)                 # let the last ACKs go out
        touch(a.ready_file)
    if a.go_file and not wait_file(a.go_file, 30):
        raise RuntimeError("no_flow: go file never appeared")
    for s in socks:
        set_abortive(s)
        s.close()
        time.sleep(0.1)


# ---- out_of_window: raw-socket RST injection -------------------------------
ETH_P_ALL = 0x0003


def parse_eth_tcp(frame):
    """Return dict for an Ethernet/IPv4/TCP frame or None."""
    if len(frame) < 14 + 20 + 20:
        return None
    if struct.unpack("!H", frame[12:14])[0] != 0x0800:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6:
        return None
    tot = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:tot]
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", tcp[:16])
    doff = (off >> 4) * 4
    wscale = tsval = None
    opts, i = tcp[20:doff], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if kind == 3 and opts[i + 1] == 3:
            wscale = opts[i + 2]
        if kind == 8 and opts[i + 1] == 10 and i + 10 <= len(opts):
            tsval = struct.unpack("!I", opts[i + 2:i + 6])[0]
        i += opts[i + 1]
    ip_id, frag = struct.unpack("!HH", ip[4:8])
    return dict(wscale=wscale, dst_mac=frame[0:6], src_mac=frame[6:12],
                src=socket.inet_ntoa(ip[12:16]), dst=socket.inet_ntoa(ip[16:20]),
                sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win,
                plen=len(tcp) - doff, ttl=ip[8], ip_id=ip_id, df=bool(frag & 0x4000),
                tsval=tsval)


def build_ip_tcp(src, dst, sport, dport, seq, ack, flags, win=0, ttl=64, ip_id=None):
    """An IPv4/TCP packet without options or payload, checksums filled in."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, win, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    if ip_id is None:
        ip_id = random.randint(1, 65535)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id,
                     0x4000, ttl, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


def build_rst(src_mac, dst_mac, src, dst, sport, dport, seq, ack, flags=0x04 | 0x10, ttl=64):
    """An Ethernet frame carrying a RST (RST|ACK unless told otherwise)."""
    return dst_mac + src_mac + struct.pack("!H", 0x0800) + \
        build_ip_tcp(src, dst, sport, dport, seq, ack, flags, ttl=ttl)


def seq_end(p):
    n = p["plen"] + (1 if p["flags"] & 0x02 else 0) + (1 if p["flags"] & 0x01 else 0)
    return (p["seq"] + n) & 0xFFFFFFFF


def cli_out_of_window(a):
    if not a.iface:
        raise RuntimeError("out_of_window needs --iface")
    port = PLAN["out_of_window"]["port"]
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((a.iface, 0))
    sniff.setblocking(False)
    try:
        s = connect(a.server, port)
        lip, lport = s.getsockname()
        s.sendall(b"GET 1000\n")
        recv_exact(s, 1000)
        time.sleep(0.3)                 # let the delayed ACK go out too

        # learn both directions' next sequence numbers from what went by
        cli_nxt = srv_nxt = None
        macs = None
        for _ in range(10000):
            try:
                frame = sniff.recv(65535)
            except BlockingIOError:
                break
            p = parse_eth_tcp(frame)
            if not p:
                continue
            if (p["src"], p["sport"], p["dst"], p["dport"]) == (lip, lport, a.server, port):
                cli_nxt = seq_end(p)
                macs = (p["src_mac"], p["dst_mac"])
            elif (p["src"], p["sport"], p["dst"], p["dport"]) == (a.server, port, lip, lport):
                srv_nxt = seq_end(p)
        if cli_nxt is None or srv_nxt is None or macs is None:
            raise RuntimeError("out_of_window: did not see the connection on %s" % a.iface)

        bad_seq = (cli_nxt + (1 << 30)) & 0xFFFFFFFF
        frame = build_rst(macs[0], macs[1], lip, a.server, lport, port, bad_seq, srv_nxt)
        sniff.send(frame)
        log("out_of_window: injected RST seq=%u (expected %u + 2^30) ack=%u"
            % (bad_seq, cli_nxt, srv_nxt))
        time.sleep(0.3)

        # the connection must be alive: more data both ways, then clean close
        for n in (2000, 500):
            s.sendall(b"GET %d\n" % n)
            recv_exact(s, n)
            time.sleep(0.1)
        s.shutdown(socket.SHUT_WR)
        if recv_to_eof(s) != 0:
            raise RuntimeError("out_of_window: unexpected extra data")
        s.close()
    finally:
        sniff.close()


CLIENTS = {
    "clean": cli_clean,
    "refused": cli_refused,
    "client_abort": cli_client_abort,
    "server_abort": cli_server_abort,
    "after_fin": cli_after_fin,
    "out_of_window": cli_out_of_window,
    "no_flow": cli_no_flow,
}


def cmd_client(args):
    CLIENTS[args.scenario](args)
    log("client %s done" % args.scenario)
    return 0


# --------------------------------------------------------------------------
# Verification: read pcaps back, check them, write expected.json
# --------------------------------------------------------------------------
def read_pcap(path):
    """Classic pcap, Ethernet link type.  Returns [(ts, parsed-or-None)]."""
    try:
        linktype, recs = pcapio.read_pcap(path)
    except ValueError as e:
        raise RuntimeError(str(e))
    if linktype != 1:
        raise RuntimeError("%s: link type %d, expected 1 (Ethernet)" % (path, linktype))
    return [(sec + usec / 1e6, parse_eth_tcp(data)) for sec, usec, data, _ in recs[:10 ** 6]]


def tcpdump_count(path, filt):
    r = subprocess.run(["tcpdump", "-nr", path] + ([filt] if filt else []),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       check=True, timeout=30)
    return len([ln for ln in r.stdout.decode().splitlines() if ln.strip()])


class Fail(Exception):
    pass


def seq_in_window(seq, rcv_nxt, wnd):
    return ((seq - rcv_nxt) & 0xFFFFFFFF) < max(wnd, 1)


def analyse(path, scenarios):
    """Check one pcap against the plan of the given scenarios and return its
    ground-truth record."""
    pkts = read_pcap(path)
    conns = {}    # (cip, cport, sip, sport) -> list of (ts, dir, p)
    for ts, p in pkts:
        if p is None:
            continue
        if p["dport"] in PORT2SCEN:
            key, d = (p["src"], p["sport"], p["dst"], p["dport"]), "c2s"
        elif p["sport"] in PORT2SCEN:
            key, d = (p["dst"], p["dport"], p["src"], p["sport"]), "s2c"
        else:
            raise Fail("%s: TCP packet not on a scenario port: %r" % (path, p))
        conns.setdefault(key, []).append((ts, d, p))

    events = []
    per_scen_conns = {}
    for key, lst in sorted(conns.items(), key=lambda kv: kv[1][0][0]):
        scen = PORT2SCEN[key[3]]
        if scen not in scenarios:
            raise Fail("%s: traffic for scenario %s not expected here" % (path, scen))
        plan = PLAN[scen]
        per_scen_conns[scen] = per_scen_conns.get(scen, 0) + 1
        rsts = [(ts, d, p) for ts, d, p in lst if p["flags"] & 0x04]
        syns = [x for x in lst if x[2]["flags"] & 0x02]
        fins = [x for x in lst if x[2]["flags"] & 0x01]
        where = "%s: %s conn %s:%d->%s:%d" % (path, scen, *key)
        want_sender = {"client": "c2s", "server": "s2c"}.get(plan["sender"])

        if plan["cause"] is None:
            if rsts:
                raise Fail(where + ": unexpected RST")
            if len(syns) != 2 or {x[1] for x in fins} != {"c2s", "s2c"}:
                raise Fail(where + ": expected handshake and FINs both ways")
            continue
        if not rsts:
            raise Fail(where + ": no RST seen")
        bad = [x for x in rsts if x[1] != want_sender]
        if bad:
            raise Fail(where + ": RST from unexpected side: %r" % (bad,))
        first = rsts[0][0]
        if scen == "refused":
            if len(lst) != 2 or not (lst[0][2]["flags"] == 0x02 and lst[1][2]["flags"] == 0x14):
                raise Fail(where + ": expected exactly SYN then RST+ACK")
        elif scen == "no_flow":
            if any(not (p["flags"] & 0x04) for _ts, _d, p in lst):
                raise Fail(where + ": capture holds non-RST packets of the no_flow connection")
        else:
            if len(syns) != 2:
                raise Fail(where + ": handshake missing")
            data_before = [x for x in lst if x[0] <= first and x[2]["plen"] > 0]
            if not data_before:
                raise Fail(where + ": no data before the RST")
            fins_before = [x for x in fins if x[0] <= first]
            if scen == "after_fin" and not fins_before:
                raise Fail(where + ": no FIN before the RST")
            if scen in ("client_abort", "server_abort") and fins_before:
                raise Fail(where + ": FIN before RST (would be after_fin)")
        if scen == "out_of_window":
            if len(rsts) != 1:
                raise Fail(where + ": expected exactly one RST, saw %d" % len(rsts))
            ts_r, _d, r = rsts[0]
            # receiver's (server's) rcv_nxt/window from the last s2c segment before
            prev = [p for ts, d, p in lst if d == "s2c" and ts < ts_r and p["flags"] & 0x10]
            last = prev[-1]
            ws = [p["wscale"] for ts, d, p in lst if d == "c2s" and p["flags"] & 0x02]
            ws2 = [p["wscale"] for ts, d, p in lst if d == "s2c" and p["flags"] & 0x02]
            shift = ws2[0] if ws and ws[0] is not None and ws2 and ws2[0] is not None else 0
            if seq_in_window(r["seq"], last["ack"], last["win"] << shift):
                raise Fail(where + ": injected RST is inside the window")
            after = [(d, p) for ts, d, p in lst if ts > ts_r]
            if not any(d == "c2s" and p["plen"] for d, p in after) or \
               not any(d == "s2c" and p["plen"] for d, p in after) or \
               {d for d, p in after if p["flags"] & 0x01} != {"c2s", "s2c"}:
                raise Fail(where + ": connection did not continue and close cleanly")
        # group into events (RSTs on this connection within EVENT_GAP)
        grp = []
        for ts, d, p in rsts:
            if grp and ts - grp[-1][-1][0] > EVENT_GAP:
                grp.append([])
            if not grp:
                grp.append([])
            grp[-1].append((ts, d, p))
        for g in grp:
            events.append(dict(ts=round(g[0][0], 6), client_ip=key[0], client_port=key[1],
                               server_ip=key[2], server_port=key[3], sender=plan["sender"],
                               cause=plan["cause"], rst_count=len(g)))

    for scen in scenarios:
        plan = PLAN[scen]
        got = per_scen_conns.get(scen, 0)
        if got != plan["conns"]:
            raise Fail("%s: scenario %s: %d connections seen, planned %d"
                       % (path, scen, got, plan["conns"]))
        nev = len([e for e in events if e["server_port"] == plan["port"]])
        if nev != plan["events"]:
            raise Fail("%s: scenario %s: %d reset events, planned %d"
                       % (path, scen, nev, plan["events"]))

    events.sort(key=lambda e: e["ts"])
    causes = {c: 0 for c in CAUSES}
    for e in events:
        causes[e["cause"]] += 1
    rst_parsed = sum(1 for _ts, p in pkts if p and p["flags"] & 0x04)
    rst_tcpdump = tcpdump_count(path, "tcp[tcpflags] & tcp-rst != 0")
    if rst_parsed != rst_tcpdump:
        raise Fail("%s: RST count mismatch: parser %d, tcpdump %d" % (path, rst_parsed, rst_tcpdump))
    if sum(e["rst_count"] for e in events) != rst_tcpdump:
        raise Fail("%s: RSTs not all accounted to events" % path)
    rec = dict(
        scenarios=scenarios,
        server_ports=[PLAN[s]["port"] for s in scenarios],
        bytes=os.path.getsize(path),
        packets=tcpdump_count(path, None),
        tcp_packets=tcpdump_count(path, "tcp"),
        rst_packets=rst_tcpdump,
        connections=len(conns),
        resets=len(events),
        causes=causes,
        events=events,
    )
    if rec["packets"] != len(pkts):
        raise Fail("%s: packet count mismatch" % path)
    return rec


def cmd_verify(args):
    files = {}
    try:
        for scen in ORDER:
            files[scen + ".pcap"] = analyse(os.path.join(args.data_dir, scen + ".pcap"), [scen])
        files["sample.pcap"] = analyse(os.path.join(args.data_dir, "sample.pcap"), list(ORDER))
    except Fail as e:
        log("VERIFY FAILED:", e)
        return 1
    for name, rec in files.items():
        if rec["bytes"] > 100 * 1024:
            log("VERIFY FAILED: %s is %d bytes (limit 100 KiB)" % (name, rec["bytes"]))
            return 1
    doc = dict(
        generated_by="scripts/record-samples",
        kernel=args.kernel,
        event_definition=("a reset event is one connection (4-tuple) being reset; "
                          "RSTs on the same connection less than %.0f s apart are one event. "
                          "The out_of_window event is the injected, ignored RST: the "
                          "connection itself is not reset." % EVENT_GAP),
        causes=CAUSES,
        plan={k: PLAN[k] for k in ORDER},
        files=files,
    )
    tmp = os.path.join(args.data_dir, ".expected.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(args.data_dir, "expected.json"))
    for name, rec in files.items():
        log("%-20s packets=%-4d rst=%-3d resets=%-3d %s" % (
            name, rec["packets"], rec["rst_packets"], rec["resets"],
            {k: v for k, v in rec["causes"].items() if v}))
    return 0


def cmd_table(args):
    """Print the README's ground-truth table from an expected.json."""
    doc = json.load(open(args.expected))
    print("| file | packets | tcp packets | RST packets | connections | reset events | events per cause |")
    print("|---|---|---|---|---|---|---|")
    for name, r in doc["files"].items():
        per = ", ".join("%s=%d" % (c, n) for c, n in r["causes"].items() if n) or "\u2013"
        print("| `%s` | %d | %d | %d | %d | %d | %s |" % (
            name, r["packets"], r["tcp_packets"], r["rst_packets"], r["connections"],
            r["resets"], per))
    print("\nkernel: %s" % doc["kernel"])
    return 0


def cmd_plan(args):
    """Print 'scenario port' lines for the shell script."""
    for s in ORDER:
        print(s, PLAN[s]["port"])
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("server")
    p.add_argument("--addr", required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--max-seconds", type=float, default=180)
    p = sub.add_parser("client")
    p.add_argument("scenario", choices=sorted(CLIENTS))
    p.add_argument("--server", required=True)
    p.add_argument("--iface")
    p.add_argument("--ready-file")
    p.add_argument("--go-file")
    p = sub.add_parser("verify")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--kernel", default=os.uname().release)
    sub.add_parser("plan")
    p = sub.add_parser("table")
    p.add_argument("expected")
    a = ap.parse_args()
    return {"server": cmd_server, "client": cmd_client,
            "verify": cmd_verify, "plan": cmd_plan, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001
        log("error: %r" % (e,))
        sys.exit(1)
