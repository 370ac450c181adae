#!/usr/bin/env python3
"""Regenerate the seed corpora of the rstscope fuzz targets (python3 standard library only).

    python3 fuzz/make_seeds.py [--pcaps 'tests/data/*.pcap'] [--out fuzz/corpus]

Writes (after emptying them) OUT/pkt_parse/ and OUT/engine/:

  pkt_parse/  one frame per file: hand-built frames for every parser branch (VLAN, QinQ,
              IPv4 options, fragments, IPv6 extension headers, TCP options, truncations) and
              a few distinct frames of each capture (distinct by TCP flags / options / data).
  engine/     fuzz_engine inputs: each capture as one raw-mode input (frames cut to
              SNAP bytes: the engine takes payload lengths from the IP header; sample.pcap
              also converted to raw-IP and Linux-cooked link types), and
              hand-written structured-mode scenarios (handshake, refused, aborts, RST after
              FIN, out-of-window, in-window RST ignored, port reuse, eviction, ageing).

The encodings mirror fuzz/fuzz_engine.c (see the comment at its top); keep them in sync.
Output is deterministic for the same captures.
"""
import argparse
import glob
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "lib"))
import pcapio  # noqa: E402

SNAP = 128          # bytes kept of each captured frame
PER_PCAP = 8        # pkt_parse seeds taken from one capture
TIME_UNITS = (10, 1000, 50000, 1000000)  # us per count, by the top two bits of a delta byte


# ---- classic pcap reader ----

# pcap link type -> fuzz_engine raw-mode link selector byte
LINK_SELECTOR = {1: 0, 101: 1, 0: 2, 108: 3, 113: 4, 276: 5}


def read_pcap(path):
    """Return (link type, [(ts_us, frame)]) of a classic pcap (either byte order, us or ns)
    of a link type the engine supports; (None, []) otherwise."""
    try:
        linktype, recs = pcapio.read_pcap(path)
    except ValueError:
        print(f'{path}: not a classic pcap, skipped', file=sys.stderr)
        return None, []
    if linktype not in LINK_SELECTOR:
        print(f'{path}: link type {linktype} not supported, skipped', file=sys.stderr)
        return None, []
    return linktype, [(sec * 1000000 + usec, frame) for sec, usec, frame, _ in recs]


def tcp_signature(frame):
    """A coarse shape of a frame: ethertype, TCP flags, option length, has data."""
    if len(frame) < 14:
        return ('short',)
    et = struct.unpack('>H', frame[12:14])[0]
    if et != 0x0800 or len(frame) < 34:
        return ('et', et)
    ihl = (frame[14] & 15) * 4
    total = struct.unpack('>H', frame[16:18])[0]
    if frame[23] != 6 or len(frame) < 14 + ihl + 20:
        return ('ip', frame[23])
    tcp = frame[14 + ihl:]
    doff = (tcp[12] >> 4) * 4
    return ('tcp', tcp[13], doff, total - ihl - doff > 0)


def as_raw_ip(frames):
    """Ethernet frames -> LINKTYPE_RAW (the Ethernet header dropped)."""
    return [(ts, f[14:]) for ts, f in frames]


def as_sll(frames):
    """Ethernet frames -> LINKTYPE_LINUX_SLL (16-byte cooked header, same ethertype)."""
    out = []
    for ts, f in frames:
        if len(f) < 14:
            continue
        hdr = struct.pack('>HHH8sH', 0, 1, 6, f[6:12] + b'\x00\x00', struct.unpack('>H', f[12:14])[0])
        out.append((ts, hdr + f[14:]))
    return out


# ---- hand-built frames ----

MAC = b'\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01'
A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6 = bytes.fromhex('20010db8000000000000000000000001')
B6 = bytes.fromhex('20010db8000000000000000000000002')


def tcp_hdr(sport=40000, dport=80, seq=1000, ack=0, flags=0x02, win=65535, opts=b''):
    while len(opts) % 4:
        opts += b'\x00'
    doff = (20 + len(opts)) // 4
    return struct.pack('>HHIIBBHHH', sport, dport, seq, ack, doff << 4, flags, win, 0, 0) + opts


def ipv4(l4, proto=6, ttl=64, frag=0x4000, opts=b'', total=None):
    ihl = (20 + len(opts)) // 4
    tl = total if total is not None else 20 + len(opts) + len(l4)
    return struct.pack('>BBHHHBBH4s4s', 0x40 | ihl, 0, tl, 0x1234, frag, ttl, proto, 0,
                       A4, B4) + opts + l4


def ipv6(l4, nh=6, hlim=64, plen=None):
    pl = plen if plen is not None else len(l4)
    return struct.pack('>IHBB16s16s', 0x60000000, pl, nh, hlim, A6, B6) + l4


def eth(l3, et=0x0800, vlans=()):
    tags = b''.join(struct.pack('>HH', tpid, tci) for tpid, tci in vlans)
    return MAC + tags + struct.pack('>H', et) + l3


SYN_OPTS = (b'\x02\x04\x05\xb4' + b'\x04\x02' + b'\x08\x0a' + struct.pack('>II', 100, 0) +
            b'\x01' + b'\x03\x03\x07')


def synthetic_frames():
    t_syn = tcp_hdr(opts=SYN_OPTS)
    t_ack = tcp_hdr(seq=1001, ack=5001, flags=0x10) + b'hello'
    t_rst = tcp_hdr(seq=1001, ack=5001, flags=0x14, win=0)
    hop = bytes([43, 0, 1, 4, 0, 0, 0, 0])            # hop-by-hop, PadN, next: routing
    rtg = bytes([60, 0, 0, 0, 0, 0, 0, 0])            # routing, next: dest options
    dst = bytes([44, 0, 1, 4, 0, 0, 0, 0])            # dest options, next: fragment
    frag_atomic = bytes([6, 0, 0, 0, 0, 0, 0, 1])     # atomic fragment, next: TCP
    frag_real = bytes([6, 0, 0, 1, 0, 0, 0, 2])       # M flag: a real fragment
    ah = bytes([6, 1]) + b'\x00' * 10                 # AH, length (1 + 2) * 4 = 12
    return {
        'arp': eth(b'\x00\x01\x08\x00\x06\x04\x00\x01' + MAC[6:] + A4 + b'\x00' * 6 + B4,
                   et=0x0806),
        'l2-short': MAC[:10],
        'v4-syn-opts': eth(ipv4(t_syn)),
        'v4-ack-data': eth(ipv4(t_ack)),
        'v4-rst': eth(ipv4(t_rst)),
        'v4-ipopts': eth(ipv4(t_ack, opts=b'\x01\x01\x01\x00')),
        'v4-snaplen-cut': eth(ipv4(t_ack, total=1500)),
        'v4-frag-mf': eth(ipv4(t_ack, frag=0x2000)),
        'v4-frag-offset': eth(ipv4(t_ack, frag=0x0010)),
        'v4-udp': eth(ipv4(struct.pack('>HHHH', 53, 53, 8, 0), proto=17)),
        'v4-bad-total': eth(ipv4(t_ack, total=10)),
        'v4-bad-doff': eth(ipv4(t_ack[:12] + b'\x40' + t_ack[13:])),
        'v4-bad-option': eth(ipv4(tcp_hdr(opts=b'\x02\x03\x05\x00'))),
        'v4-option-overrun': eth(ipv4(tcp_hdr(opts=b'\x01\x01\x08\x20'))),
        'v4-sack-blocks': eth(ipv4(tcp_hdr(flags=0x10, opts=b'\x01\x01\x05\x0a' + b'\x00' * 8))),
        'v4-ws-clamp': eth(ipv4(tcp_hdr(opts=b'\x03\x03\x0f\x00'))),
        'vlan-v4-syn': eth(ipv4(t_syn), vlans=((0x8100, 0x2064),)),
        'qinq-v6-ack': eth(ipv6(t_ack), et=0x86dd, vlans=((0x88a8, 10), (0x8100, 20))),
        'qinq-old-4deep': eth(ipv4(t_ack), vlans=((0x9100, 1), (0x88a8, 2), (0x8100, 3),
                                                  (0x8100, 4))),
        'vlan-5deep': eth(ipv4(t_ack), vlans=tuple((0x8100, i) for i in range(5))),
        'v6-syn-opts': eth(ipv6(t_syn), et=0x86dd),
        'v6-rst': eth(ipv6(t_rst), et=0x86dd),
        'v6-ext-chain': eth(ipv6(hop + rtg + dst + frag_atomic + t_ack, nh=0), et=0x86dd),
        'v6-ah': eth(ipv6(ah + t_ack, nh=51), et=0x86dd),
        'v6-fragment': eth(ipv6(frag_real + t_ack, nh=44), et=0x86dd),
        'v6-udp': eth(ipv6(struct.pack('>HHHH', 53, 53, 8, 0), nh=17), et=0x86dd),
        'v6-jumbo': eth(ipv6(t_ack, plen=0), et=0x86dd),
        'v6-ext-truncated': eth(ipv6(hop[:4], nh=0, plen=40), et=0x86dd),
        'v4-in-v6-ethertype': eth(ipv4(t_ack), et=0x86dd),
        'v4-tso-total0': eth(ipv4(t_ack + b'x' * 100, total=0)),
        # Other link types (fuzz_pkt_parse parses every input as each of them)
        'rawip-v4-ack': ipv4(t_ack),
        'rawip-v6-rst': ipv6(t_rst),
        'null-v4-syn': struct.pack('<I', 2) + ipv4(t_syn),
        'loop-v6-ack': struct.pack('>I', 24) + ipv6(t_ack),
        'sll-vlan-v4-ack': (struct.pack('>HHH8s', 4, 1, 6, MAC[6:] + b'\x00\x00') +
                            struct.pack('>HHH', 0x8100, 5, 0x0800) + ipv4(t_ack)),
        'sll2-v6-syn': (struct.pack('>HHIHBB8s', 0x86dd, 0, 2, 1, 0, 6, MAC[:6] + b'\x00\x00') +
                        ipv6(t_syn)),
    }


def encap_frames():
    """Mirror tunnels (tests/integration/wrap_pcap.py builds them) around a TCP frame, and
    broken variants of each, so the fuzzer starts inside every tunnel parser."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests',
                                    'integration'))
    import wrap_pcap as w
    inner = eth(ipv4(tcp_hdr(seq=1001, ack=5001, flags=0x14, win=0)), vlans=((0x8100, 7),))
    inner6 = eth(ipv6(tcp_hdr(opts=SYN_OPTS)), et=0x86dd)

    class A:
        outer6, outer_vlans, session = False, 0, 42
    a6 = A()
    a6.outer6, a6.outer_vlans = True, 2
    out = {}
    for layout in ('gre', 'erspan1', 'erspan2', 'erspan3', 'vxlan', 'mpls-ip', 'mpls-pw',
                   'mpls-erspan'):
        f = w.wrap(layout, inner, 7, A, 0)
        out[f'encap-{layout}'] = f
        out[f'encap-{layout}-v6'] = w.wrap(layout, inner6, 8, a6, 0)
        out[f'encap-{layout}-cut'] = f[:len(f) - len(inner) + 10]
    # GRE in GRE in GRE (the depth limit is 3)
    f = inner
    for _ in range(3):
        f = w.wrap('gre', f, 1, A, 0)
    out['encap-gre-x3'] = f
    return out


# ---- fuzz_engine encodings ----

class Clock:
    """Turns capture times into fuzz_engine delta bytes, carrying what one byte cannot say."""

    def __init__(self):
        self.prev = None
        self.owed = 0

    def delta(self, ts):
        if self.prev is not None:
            self.owed += max(0, ts - self.prev)
        self.prev = ts
        for code in (3, 2, 1, 0):
            unit = TIME_UNITS[code]
            if self.owed >= unit or code == 0:
                count = min(62 if code == 0 else 63, self.owed // unit)
                self.owed -= count * unit
                return code << 6 | count
        return 0


def raw_input(frames, config=0x00, link=1):
    out = bytearray([config & 0xfe, LINK_SELECTOR[link]])
    clock = Clock()
    for ts, frame in frames:
        frame = frame[:SNAP]
        out += struct.pack('>HB', len(frame), clock.delta(ts)) + frame
    return bytes(out)


# Structured mode: common_flags[] indices of fuzz_engine.c
SYN, SYNACK, ACK, PSHACK, FINACK, RST, RSTACK = 0, 1, 2, 3, 4, 5, 6
# seq modes (low nibble) / ack modes (high nibble)
S_NXT, S_NXT_M1, S_DELTA8, S_FAR, S_PEER_ACK, S_PLUS_KB, S_ABS, S_ZERO = range(8)
A_NXT, A_NXT_M1, A_ISN1, A_DELTA8, A_ABS, A_ZERO, A_FAR = range(7)
MS = 1 << 6     # delta byte: count of 1 ms units
OPTS_SYN = 0x04 | 0x08 | 0x10 | 0x20   # MSS, WS, SACK-permitted, timestamps
OPTS_TS = 0x20


def seg(tuple_, server, flags, seq=S_NXT, ack=A_NXT, plen=0, delta=MS | 1, b5=0, b6=0x7f,
        extra=b'', ttl_mode=0):
    return (bytes([tuple_ | (server << 4) | (ttl_mode << 5), flags, seq | ack << 4, plen]) +
            extra + bytes([delta, b5, b6]))


def handshake(t, encap=0):
    return (seg(t, 0, SYN, ack=A_ZERO, b5=OPTS_SYN | encap) +
            seg(t, 1, SYNACK, b5=OPTS_SYN | encap) +
            seg(t, 0, ACK, b5=OPTS_TS | encap))


def structured_scenarios():
    d = {}
    d['s-clean-v4'] = (bytes([0x01]) + handshake(0) + seg(0, 0, PSHACK, plen=100) +
                       seg(0, 1, PSHACK, plen=0x82) + seg(0, 0, FINACK) + seg(0, 1, FINACK) +
                       seg(0, 0, ACK))
    d['s-refused'] = (bytes([0x01]) + seg(1, 0, SYN, ack=A_ZERO, b5=OPTS_SYN) +
                      seg(1, 1, RSTACK, seq=S_ZERO, b6=0x00) +
                      seg(1, 0, SYN, ack=A_ZERO, delta=3 << 6 | 1) +
                      seg(1, 1, RSTACK, seq=S_ZERO, b6=0x00))
    d['s-client-abort-vlan'] = (bytes([0x01]) + handshake(4, encap=1) +
                                seg(4, 1, PSHACK, plen=0x90, b5=1) +
                                seg(4, 0, RSTACK, b5=1))
    d['s-server-abort-v6-ext'] = (bytes([0x01]) + handshake(8, encap=3) +
                                  seg(8, 0, PSHACK, plen=50, b5=3) + seg(8, 1, RSTACK, b5=3))
    d['s-after-fin-qinq'] = (bytes([0x01]) + handshake(9, encap=2) +
                             seg(9, 1, PSHACK, plen=0x8c, b5=2) + seg(9, 1, FINACK, b5=2) +
                             seg(9, 0, ACK, b5=2, delta=MS | 40) + seg(9, 0, RSTACK, b5=2))
    d['s-out-of-window'] = (bytes([0x01]) + handshake(2) + seg(2, 0, PSHACK, plen=20) +
                            seg(2, 1, PSHACK, plen=0x81) +
                            seg(2, 0, RSTACK, seq=S_FAR, ttl_mode=4) +
                            seg(2, 0, PSHACK, plen=20) + seg(2, 1, PSHACK, plen=0x81) +
                            seg(2, 0, FINACK) + seg(2, 1, FINACK) + seg(2, 0, ACK))
    d['s-in-window-ignored'] = (bytes([0x01]) + handshake(3) + seg(3, 0, PSHACK, plen=20) +
                                seg(3, 0, RSTACK, seq=S_PLUS_KB, extra=b'\x02') +
                                seg(3, 1, PSHACK, plen=30) + seg(3, 0, PSHACK, plen=20))
    d['s-no-flow'] = (bytes([0x01]) + seg(10, 0, RSTACK, seq=S_ABS, extra=b'\x12\x34\x56\x78') +
                      seg(10, 0, RSTACK, seq=S_ABS, extra=b'\x12\x34\x56\x78'))
    # A lone RST, then the connection carries on (mid-stream) and is reset for real later.
    d['s-lone-rst-then-traffic'] = (bytes([0x01]) + seg(0, 0, RSTACK) +
                                    seg(0, 1, ACK, delta=3 << 6 | 2) + seg(0, 0, PSHACK, plen=10) +
                                    seg(0, 1, RSTACK, delta=3 << 6 | 2))
    d['s-port-reuse'] = (bytes([0x01]) + handshake(1) + seg(1, 0, FINACK) + seg(1, 1, FINACK) +
                         seg(1, 0, ACK) + seg(1, 0, SYN, seq=S_PLUS_KB, ack=A_ZERO,
                                              extra=b'\x40', b5=OPTS_SYN) +
                         seg(1, 1, SYNACK, b5=OPTS_SYN) + seg(1, 0, ACK))
    d['s-self-connect'] = (bytes([0x01]) + handshake(5) + seg(5, 0, FINACK) + seg(5, 1, FINACK) +
                           seg(5, 0, RSTACK) + handshake(12) + seg(12, 1, RST))
    d['s-evict-1flow'] = (bytes([0x07]) + handshake(0) + seg(0, 0, FINACK) +
                          seg(0, 1, FINACK) + seg(0, 0, ACK) + seg(13, 0, SYN, ack=A_ZERO) +
                          seg(11, 0, SYN, ack=A_ZERO) + seg(11, 1, RSTACK, seq=S_ZERO))
    d['s-age-flush'] = (bytes([0x81]) + handshake(14) + seg(15, 0, SYN, ack=A_ZERO) +
                        bytes([0xe2]) + seg(14, 1, PSHACK, plen=10) + seg(14, 0, RST) +
                        bytes([0xf0]) + seg(14, 1, RSTACK, delta=3 << 6 | 30) +
                        seg(7, 0, SYN, seq=S_ABS, ack=A_ZERO, extra=b'\xff\xff\xff\xfe'))
    # Ten connections reset at once into a held-event pool of 8 (bit 6 of the configuration):
    # two holds are cut short to make room; the last sender then carries on.
    d['s-rst-storm-pool'] = (bytes([0x41]) + b''.join(handshake(t) for t in range(10)) +
                             b''.join(seg(t, 0, RSTACK) for t in range(10)) +
                             seg(9, 0, PSHACK, plen=10))
    return d


# Seeds committed by hand (a fuzzer finding kept as a regression): never removed here.
HAND_WRITTEN = {'gre-seq-inner-ipv4'}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pcaps', default=os.path.join(root, 'tests', 'data', '*.pcap'))
    ap.add_argument('--out', default=os.path.join(here, 'corpus'))
    args = ap.parse_args()

    pp_dir = os.path.join(args.out, 'pkt_parse')
    en_dir = os.path.join(args.out, 'engine')
    for d in (pp_dir, en_dir):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name not in HAND_WRITTEN:
                os.remove(os.path.join(d, name))

    def write(d, name, blob):
        with open(os.path.join(d, name), 'wb') as f:
            f.write(blob)

    for name, frame in synthetic_frames().items():
        write(pp_dir, name, frame)
    for name, frame in encap_frames().items():
        write(pp_dir, name, frame)
    for name, blob in structured_scenarios().items():
        write(en_dir, name, blob)

    pcaps = sorted(glob.glob(args.pcaps))
    for path in pcaps:
        base = os.path.splitext(os.path.basename(path))[0]
        link, frames = read_pcap(path)
        if not frames:
            continue
        seen = set()
        for i, (_ts, frame) in enumerate(frames):
            sig = tcp_signature(frame)
            if sig in seen or len(seen) >= PER_PCAP:
                continue
            seen.add(sig)
            write(pp_dir, f'pcap-{base}-{i:03d}', frame[:SNAP])
        write(en_dir, f'pcap-{base}', raw_input(frames, link=link))
        if base == 'sample' and link == 1:
            # The same traffic through a one-flow table with tiny timeouts, and as the other
            # link types would have captured it.
            write(en_dir, f'pcap-{base}-tiny', raw_input(frames, config=0x86))
            write(en_dir, f'pcap-{base}-rawip', raw_input(as_raw_ip(frames), link=101))
            write(en_dir, f'pcap-{base}-sll', raw_input(as_sll(frames), link=113))

    n, size = 0, 0
    for d in (pp_dir, en_dir):
        for name in os.listdir(d):
            n += 1
            size += os.path.getsize(os.path.join(d, name))
    print(f'{len(pcaps)} captures -> {n} seed files, {size} bytes in {args.out}')


if __name__ == '__main__':
    main()
