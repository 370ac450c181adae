#!/usr/bin/env python3
"""Write a synthetic Ethernet pcap of complete TCP conversations with known endings, plus
malformed frames, and print the ground truth as JSON on stdout.

usage: gen_pcap.py OUT.pcap CONNECTIONS SEED [MAX_PAYLOAD]
Endings: clean FIN close, refused (RST+ACK to the SYN), client abort, server abort, RST after
FIN. Conversations are interleaved in time so many flows are open at once.
"""
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lib"))
from pcapio import csum, pcap_header, pcap_record  # noqa: E402


def frame(src, dst, sport, dport, seq, ack, flags, payload=b"", ttl=64):
    """IPv4 when the addresses have 4 bytes, IPv6 when 16."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, 65535, 0, 0) + payload
    if len(src) == 16:
        ip, etype = struct.pack("!IHBB16s16s", 0x60000000, len(tcp), 6, ttl, bytes(src),
                                bytes(dst)), b"\x86\xdd"
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randrange(65536),
                         0x4000, ttl, 6, 0, bytes(src), bytes(dst))
        ip, etype = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:], b"\x08\x00"
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + etype + ip + tcp


FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


def conversation(i, t0, max_payload):
    c = [10, 1, (i >> 8) & 255, i & 255]
    s = [10, 2, 0, 1 + i % 50]
    if i % 4 == 3:  # every fourth conversation over IPv6
        c = [0xFD, 0, 0, 1] + [0] * 10 + [(i >> 8) & 255, i & 255]
        s = [0xFD, 0, 0, 2] + [0] * 11 + [1 + i % 50]
    vlan = 100 + i % 3 if i % 5 == 1 else None
    cp, sp = 20000 + i % 40000, 80 + i % 3
    ci, si = random.randrange(1 << 32), random.randrange(1 << 32)
    kind = random.choice(["clean", "refused", "client_abort", "server_abort", "after_fin"])
    t = t0
    pk = []

    def add(fr, dt=0.0005):
        nonlocal t
        if vlan is not None:
            fr = fr[:12] + b"\x81\x00" + struct.pack("!H", vlan) + fr[12:]
        t += dt
        pk.append((t, fr))

    add(frame(c, s, cp, sp, ci, 0, SYN), 0)
    if kind == "refused":
        add(frame(s, c, sp, cp, 0, ci + 1, RST | ACK))
        return kind, "server", pk
    add(frame(s, c, sp, cp, si, ci + 1, SYN | ACK))
    add(frame(c, s, cp, sp, ci + 1, si + 1, ACK))
    req, resp = b"GET / HTTP/1.1\r\n\r\n", b"x" * random.randrange(1, max_payload)
    add(frame(c, s, cp, sp, ci + 1, si + 1, PSH | ACK, req))
    cn, sn = ci + 1 + len(req), si + 1
    add(frame(s, c, sp, cp, sn, cn, PSH | ACK, resp))
    sn += len(resp)
    add(frame(c, s, cp, sp, cn, sn, ACK))
    if kind == "client_abort":
        add(frame(c, s, cp, sp, cn, sn, RST | ACK))
        return kind, "client", pk
    if kind == "server_abort":
        add(frame(s, c, sp, cp, sn, cn, RST | ACK))
        return kind, "server", pk
    add(frame(s, c, sp, cp, sn, cn, FIN | ACK))
    sn += 1
    if kind == "after_fin":
        add(frame(c, s, cp, sp, cn, sn, RST | ACK))
        return kind, "client", pk
    add(frame(c, s, cp, sp, cn, sn, FIN | ACK))
    add(frame(s, c, sp, cp, sn, cn + 1, ACK))
    return kind, None, pk


def main():
    out, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    max_payload = int(sys.argv[4]) if len(sys.argv) > 4 else 1400
    random.seed(seed)
    packets, truth = [], {"refused": 0, "client_abort": 0, "server_abort": 0, "after_fin": 0}
    for i in range(n):
        kind, _, pk = conversation(i, 1700000000.0 + i * 0.0002, max_payload)
        if kind in truth:
            truth[kind] += 1
        packets += pk
    bad = [b"\x00" * 10,                                              # l2_truncated
           b"\x02" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 8,          # ipv4_truncated
           b"\x02" * 12 + b"\x08\x00" + b"\x43" + b"\x00" * 39,         # ipv4_bad_header_len
           b"\x02" * 12 + b"\x81\x00\x00"]                              # vlan_truncated
    for k, b in enumerate(bad):
        packets.append((1700000000.0 + k * 0.001, b))
    packets.sort(key=lambda p: p[0])
    with open(out, "wb") as f:
        f.write(pcap_header())
        for ts, fr in packets:
            sec, usec = int(ts), int(round((ts - int(ts)) * 1e6))
            if usec == 1000000:
                sec, usec = sec + 1, 0
            f.write(pcap_record(sec, usec, fr))
    json.dump({"packets": len(packets), "ipv6": sum(1 for _, f in packets if b"\x86\xdd" in f[12:18]), "malformed": len(bad), "causes": truth,
               "resets": sum(truth.values())}, sys.stdout)


if __name__ == "__main__":
    main()
