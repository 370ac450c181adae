#!/usr/bin/env python3
"""Write a large synthetic Ethernet pcap for the benchmark and print its ground truth as JSON.

usage: gen_bench.py OUT.pcap CONNECTIONS SEED [--snaplen N] [--phase-ms MS]

Every connection is a complete TCP conversation with a known ending: a clean FIN close or a
reset of one of ten causes (refused, client_abort, server_abort, after_fin, stale_connection,
accept_overflow, data_after_close, out_of_window, no_flow). Unlike gen_pcap.py the capture is
written phase by phase: phase k of every connection (SYN, SYN-ACK, ..., its ending), then phase
k + 1, each phase in another scattered order of connections. So all CONNECTIONS flows are open
in the sensor's table at once (the number of concurrent flows the benchmark names), and
consecutive packets hit unrelated table entries, as on a busy link.

Size mix: SYN/SYN-ACK with the usual options, a 80-400 byte request, one to four response
segments of up to 1448 bytes, pure ACKs. A quarter of the connections are IPv6. IPv4 IDs are
per-direction counters (a Linux stack) and each side keeps one TTL, so nothing looks forged.
Frames longer than --snaplen (default 128) are truncated in the file, as a header-only sensor
capture is: the original length stays in each record, and the benchmark can preload millions
of packets in memory.

Pure Python (no numpy): about 1 s per 100,000 packets.
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lib"))
from pcapio import csum, pcap_header  # noqa: E402

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
MAC = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01"
SYN_OPTS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\0\0\0\1\0\0\0\0\x01\x03\x03\x07"  # MSS SACK TS WS
KINDS = [  # (ending, weight): a realistic share of clean closes, every reset cause we can make
    ("clean", 40), ("refused", 8), ("client_abort", 9), ("server_abort", 9), ("after_fin", 8),
    ("stale_connection", 6), ("accept_overflow", 4), ("data_after_close", 5),
    ("out_of_window", 5), ("no_flow", 6)]
CAUSE_OF = {k: k for k, _ in KINDS if k != "clean"}


class Conn:
    __slots__ = ("kind", "c", "s", "cp", "sp", "v6", "ci", "si", "cid", "sid", "plan")


def make_conn(i, rnd):
    k = Conn()
    k.v6 = i % 4 == 3
    if k.v6:
        k.c = b"\xfd\0\0\1" + b"\0" * 8 + struct.pack("!I", i)
        k.s = b"\xfd\0\0\2" + b"\0" * 11 + bytes([1 + i % 200])
    else:
        k.c = bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])
        k.s = bytes([172, 16, (i >> 8) % 64, 1 + i % 200])
    k.cp, k.sp = 1024 + (i * 7919) % 64000, (80, 443, 8080)[i % 3]
    k.ci, k.si = rnd(1 << 32), rnd(1 << 32)
    k.cid, k.sid = rnd(1 << 16), rnd(1 << 16)
    total = sum(w for _, w in KINDS)
    x, acc = rnd(total), 0
    for name, w in KINDS:
        acc += w
        if x < acc:
            k.kind = name
            break
    k.plan = plan(k, rnd)
    return k


def plan(k, rnd):
    """The conversation as (from_client, flags, seq, ack, payload_len, has_syn_opts)."""
    C, S = True, False
    ci, si = k.ci, k.si
    if k.kind == "no_flow":  # a lone reset for a connection the sensor never saw
        return [(S, RST | ACK, si, ci, 0, False)]
    p = [(C, SYN, ci, 0, 0, True)]
    if k.kind == "refused":
        return p + [(S, RST | ACK, 0, ci + 1, 0, False)]
    p += [(S, SYN | ACK, si, ci + 1, 0, True), (C, ACK, ci + 1, si + 1, 0, False)]
    if k.kind == "accept_overflow":  # the listen queue dropped the handshake ACK
        return p + [(S, RST, si + 1, 0, 0, False)]
    req = 80 + rnd(320)
    p.append((C, PSH | ACK, ci + 1, si + 1, req, False))
    cn, sn = ci + 1 + req, si + 1
    for _ in range(1 + rnd(4)):
        seg = 1448 if rnd(3) else 1 + rnd(1448)
        p.append((S, ACK if seg == 1448 else PSH | ACK, sn, cn, seg, False))
        sn += seg
    p.append((C, ACK, cn, sn, 0, False))
    if k.kind == "client_abort":
        return p + [(C, RST | ACK, cn, sn, 0, False)]
    if k.kind == "server_abort":
        return p + [(S, RST | ACK, sn, cn, 0, False)]
    if k.kind == "stale_connection":  # the server lost the connection: a bare RST
        return p + [(S, RST, sn, 0, 0, False)]
    if k.kind == "out_of_window":  # a forged-looking RST far outside the window, then a clean close
        p.append((C, RST | ACK, cn + 0x40000000, sn, 0, False))
    p.append((S, FIN | ACK, sn, cn, 0, False))
    sn += 1
    if k.kind == "after_fin":
        return p + [(C, RST | ACK, cn, sn, 0, False)]
    if k.kind == "data_after_close":  # the client keeps sending after the server's FIN
        p.append((C, PSH | ACK, cn, sn, 100, False))
        return p + [(S, RST | ACK, sn, cn + 100, 0, False)]
    return p + [(C, FIN | ACK, cn, sn, 0, False), (S, ACK, sn, cn + 1, 0, False)]


def frame(k, pkt, ipid, snaplen):
    """(caplen bytes, original length) of one packet of connection k."""
    from_c, flags, seq, ack, plen, synopt = pkt
    src, dst = (k.c, k.s) if from_c else (k.s, k.c)
    sport, dport = (k.cp, k.sp) if from_c else (k.sp, k.cp)
    opts = SYN_OPTS if synopt else b""
    hl = 20 + len(opts)
    win = 64240 if synopt else 502  # SYN windows are unscaled; later ones scale by 2^7
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (hl // 4) << 4, flags, win, 0, 0) + opts
    ttl = 64 if from_c else 57
    if k.v6:
        ip = struct.pack("!IHBB", 0x60000000, hl + plen, 6, ttl) + src + dst
        hdr = MAC + b"\x86\xdd" + ip + tcp
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + hl + plen, ipid & 0xFFFF, 0x4000, ttl, 6,
                         0) + src + dst
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        hdr = MAC + b"\x08\x00" + ip + tcp
    orig = len(hdr) + plen
    cap = min(orig, snaplen)
    data = hdr[:cap] if cap <= len(hdr) else hdr + b"\0" * (cap - len(hdr))
    return data, orig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("connections", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--snaplen", type=int, default=128)
    ap.add_argument("--phase-ms", type=float, default=250.0,
                    help="time between the phases of a connection (its RTT is about 2 phases)")
    a = ap.parse_args()
    n = a.connections
    state = [a.seed * 2654435761 % (1 << 64) or 1]

    def rnd(m):  # xorshift64*: deterministic for a seed, faster than random.randrange
        x = state[0]
        x ^= (x >> 12)
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= (x >> 27)
        state[0] = x
        return (((x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF) >> 11) % m

    conns = [make_conn(i, rnd) for i in range(n)]
    truth = {c: 0 for c in CAUSE_OF.values()}
    for k in conns:
        if k.kind in CAUSE_OF:
            truth[CAUSE_OF[k.kind]] += 1
    phases = max(len(k.plan) for k in conns)
    t0_us = 1700000000 * 1000000
    phase_us = int(a.phase_ms * 1000)
    packets = 0
    with open(a.out, "wb") as f:
        f.write(pcap_header(a.snaplen))
        for ph in range(phases):
            # A scattered order per phase: i -> (i * stride + offset) mod n, stride coprime to
            # n and another one each phase (phase_stride()). Consecutive packets
            # then land far apart in the sensor's table in every phase, as on a busy link. (A
            # stride that is small modulo n, as 1000003 is for n = 10^4..10^6, makes phase
            # after phase walk the table in creation order, which caches and hardware
            # prefetchers reward: it flattered the benchmark.)
            stride = phase_stride(n, ph)
            live = [k for k in conns if ph < len(k.plan)]
            m = len(live)
            step = phase_us / max(m, 1)
            off = (ph * 7919) % max(n, 1)
            out = []
            j = 0
            for r in range(n):
                k = conns[(r * stride + off) % n]
                if ph >= len(k.plan):
                    continue
                pkt = k.plan[ph]
                if pkt[0]:
                    k.cid += 1
                    ipid = k.cid
                else:
                    k.sid += 1
                    ipid = k.sid
                data, orig = frame(k, pkt, ipid, a.snaplen)
                ts = t0_us + ph * phase_us + int(j * step)
                j += 1
                out.append(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(data), orig))
                out.append(data)
            f.write(b"".join(out))
            packets += m
    json.dump({"packets": packets, "connections": n, "phases": phases, "snaplen": a.snaplen,
               "causes": truth, "resets": sum(truth.values())}, sys.stdout)
    sys.stdout.write("\n")


def phase_stride(n, ph):
    """The stride of phase ph over n connections: coprime with n, n times the fractional part
    of (ph + 1) times the golden ratio, so that every phase's order is unrelated to the first
    one's (where the connections got their table entries)."""
    stride = int(n * (((ph + 1) * 0.6180339887) % 1.0)) | 1
    while gcd(stride, n) != 1:
        stride += 1
    return stride


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


if __name__ == "__main__":
    main()
