#!/usr/bin/env python3
"""Write an Ethernet pcap of a flood with real conversations inside it, and print the ground
truth as JSON on stdout. Standard library only.

usage: gen_flood.py syn|rst|gap OUT.pcap FLOOD_PACKETS CONVERSATIONS SEED [SPAN_S]

  syn  CONVERSATIONS complete handshakes plus data first (established, tracked), then
       FLOOD_PACKETS SYNs from random sources and ports (never answered) to random servers
       spread over SPAN_S seconds of capture time, then every conversation ends with a known
       cause (client_abort, server_abort, after_fin, or a clean FIN close) at the flood's end.
  rst  the same conversations; during the flood, FLOOD_PACKETS RSTs to random tuples that no
       connection ever used (no_flow), and on each conversation one RST whose sequence number
       is far outside the receiver's window (out_of_window), then the known endings.
  gap  CONVERSATIONS conversations only (FLOOD_PACKETS ignored): on every odd one the
       server's data segment is removed from the capture but the client ACKs it (a capture
       gap), on every even one nothing is removed; each then ends with a client abort. The
       odd ones must give low_confidence events, the even ones must not.

The truth lists each conversation's client/server endpoints and expected cause, and the
totals the summary must hold. Frames carry no valid IP checksum: rstscope does not verify it
(a SPAN port delivers what the wire had, checksum offload included).
"""
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lib"))
from pcapio import pcap_header, pcap_record  # noqa: E402

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
ETH = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00"
T0 = 1700000000.0


def frame(src, dst, sport, dport, seq, ack, flags, payload=b"", ttl=64, win=65535):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, win, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, ttl, 6, 0, src, dst)
    return ETH + ip + tcp


class Conv:
    """One client/server conversation in 10.1/16 -> 10.2/16, disjoint from the flood ranges."""

    def __init__(self, i, kind):
        self.c = bytes([10, 1, (i >> 8) & 255, i & 255])
        self.s = bytes([10, 2, (i >> 8) & 255, 1 + i % 200])
        self.cp, self.sp = 20000 + i, 443
        self.ci, self.si = random.randrange(1 << 32), random.randrange(1 << 32)
        self.kind = kind
        self.cn = self.sn = 0

    def c2s(self, seq, ack, flags, payload=b""):
        return frame(self.c, self.s, self.cp, self.sp, seq, ack, flags, payload)

    def s2c(self, seq, ack, flags, payload=b""):
        return frame(self.s, self.c, self.sp, self.cp, seq, ack, flags, payload)

    def opening(self, drop_data=False):
        """Handshake, a request and a response: the connection is established and tracked."""
        req, resp = b"GET / HTTP/1.1\r\n\r\n", b"x" * 300
        out = [self.c2s(self.ci, 0, SYN), self.s2c(self.si, self.ci + 1, SYN | ACK),
               self.c2s(self.ci + 1, self.si + 1, ACK),
               self.c2s(self.ci + 1, self.si + 1, PSH | ACK, req)]
        self.cn, self.sn = self.ci + 1 + len(req), self.si + 1
        data = self.s2c(self.sn, self.cn, PSH | ACK, resp)
        if not drop_data:
            out.append(data)
        self.sn += len(resp)
        out.append(self.c2s(self.cn, self.sn, ACK))  # ACKs the response, seen or not
        return out

    def ending(self):
        k = self.kind
        if k == "client_abort":
            return [self.c2s(self.cn, self.sn, RST | ACK)]
        if k == "server_abort":
            return [self.s2c(self.sn, self.cn, RST | ACK)]
        out = [self.s2c(self.sn, self.cn, FIN | ACK)]
        if k == "after_fin":
            return out + [self.c2s(self.cn, self.sn + 1, RST | ACK)]
        return out + [self.c2s(self.cn, self.sn + 1, FIN | ACK),
                      self.s2c(self.sn + 1, self.cn + 1, ACK)]

    def far_rst(self):
        """A RST from the server whose sequence is 2^30 past what the client expects."""
        return self.s2c(self.sn + (1 << 30), 0, RST)

    def truth(self):
        return {"client": ".".join(map(str, self.c)), "client_port": self.cp,
                "server": ".".join(map(str, self.s)), "server_port": self.sp,
                "cause": None if self.kind == "clean" else self.kind}


def write_pcap(path, packets):
    """packets: (ts, frame) in time order. Returns the frame count."""
    with open(path, "wb") as f:
        f.write(pcap_header())
        for ts, fr in packets:
            sec = int(ts)
            f.write(pcap_record(sec, min(int((ts - sec) * 1e6), 999999), fr))
    return len(packets)


def flood_frames(mode, n, span, t_start):
    """Yield (ts, frame) of the flood in time order; templates patched in place for speed."""
    rnd = random.getrandbits
    if mode == "syn":
        tmpl = bytearray(frame(b"\0" * 4, b"\0" * 4, 0, 80, 0, 0, SYN))
    else:
        tmpl = bytearray(frame(b"\0" * 4, b"\0" * 4, 0, 0, 0, 0, RST | ACK))
    step = span / max(n, 1)
    for k in range(n):
        fr = tmpl[:]
        # Sources in 100.64/10, servers in 198.18/15 (benchmarking range): never a conversation.
        fr[26:30] = bytes([100, 64 + rnd(6), rnd(8), rnd(8)])
        fr[30:34] = bytes([198, 18 + rnd(1), rnd(8), rnd(8)])
        fr[34:36] = (1024 + rnd(15) % 64000).to_bytes(2, "big")
        if mode == "rst":
            fr[36:38] = (1 + rnd(16) % 65535).to_bytes(2, "big")
            fr[42:46] = rnd(32).to_bytes(4, "big")
        fr[38:42] = rnd(32).to_bytes(4, "big")
        yield t_start + k * step, bytes(fr)


def main():
    mode, out, n, nconv, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
        int(sys.argv[5])
    span = float(sys.argv[6]) if len(sys.argv) > 6 else 20.0
    random.seed(seed)
    kinds = ["client_abort", "server_abort", "after_fin", "clean"]
    convs = [Conv(i, kinds[i % 4] if mode != "gap" else "client_abort") for i in range(nconv)]
    packets = []
    t = T0
    for i, c in enumerate(convs):  # openings: 1 ms apart, before the flood
        for fr in c.opening(drop_data=(mode == "gap" and i % 2 == 1)):
            t += 0.0001
            packets.append((t, fr))
    t += 0.01
    if mode in ("syn", "rst"):
        # The flood, with the conversations' out-of-window RSTs spread inside it.
        oow = {}
        if mode == "rst":
            for i, c in enumerate(convs):
                oow[int((i + 0.5) * n / max(nconv, 1))] = c.far_rst()
        last = t
        for k, (ts, fr) in enumerate(flood_frames(mode, n, span, t)):
            packets.append((ts, fr))
            if k in oow:
                packets.append((ts, oow[k]))
            last = ts
        t = last + 0.01
    for c in convs:  # endings: 1 ms apart, after the flood
        for fr in c.ending():
            t += 0.001
            packets.append((t, fr))
    frames = write_pcap(out, packets)

    causes = {}
    for c in convs:
        if c.kind != "clean":
            causes[c.kind] = causes.get(c.kind, 0) + 1
    if mode == "rst":
        causes["no_flow"] = n
        causes["out_of_window"] = nconv
    json.dump({"mode": mode, "packets": frames, "flood": n if mode != "gap" else 0,
               "syn": (n if mode == "syn" else 0) + nconv, "causes": causes,
               "resets": sum(causes.values()),
               "gapped": [i for i in range(nconv) if mode == "gap" and i % 2 == 1],
               "conversations": [c.truth() for c in convs]}, sys.stdout)


if __name__ == "__main__":
    main()
