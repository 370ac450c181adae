#!/usr/bin/env python3
"""Wrap every frame of a capture the way a remote mirror delivers it (standard library only).

usage: wrap_pcap.py LAYOUT IN.pcap OUT.pcap [--outer-vlans N] [--outer6] [--drop-seq K,K,...]
                    [--session N]

LAYOUT: gre (GRE 0x6558 with key and sequence), erspan1, erspan2, erspan3 (with the 8-byte
platform subheader), vxlan (UDP 4789), mpls-ip (3 labels, then the IP packet: the frame's
Ethernet header and VLAN tags are dropped, as an L3VPN carries it), mpls-pw (2 labels, control
word, the whole Ethernet frame: an Ethernet pseudowire), mpls-erspan (1 label, IPv4, GRE,
ERSPAN II: two tunnels).

IN may be any link type rstscope reads (Ethernet, raw IP, BSD/OpenBSD loopback, Linux cooked
v1/v2, either byte order, us or ns); frames that are not Ethernet get a synthetic Ethernet
header first. OUT is a classic little-endian microsecond pcap of Ethernet frames with the
same timestamps. Frames that cannot travel in the layout (non-IP frames for mpls-ip) are
copied unwrapped.

--outer-vlans N   N VLAN tags on the carrier frame (802.1ad outermost when N > 1)
--outer6          IPv6 carrier instead of IPv4
--drop-seq LIST   leave out the sequence numbers in LIST (GRE/ERSPAN layouts): the sensor
                  must report that many copies missing; the frames themselves are all kept
--session N       ERSPAN session id / GRE key / VXLAN VNI (default 42)

Prints one JSON line: {"frames": n, "wrapped": n, "seq_dropped": n}.
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lib"))
from pcapio import csum, pcap_header, pcap_record, read_pcap  # noqa: E402

MAC_A = bytes.fromhex('020000000001')
MAC_B = bytes.fromhex('020000000002')


def to_ethernet(link, frame):
    """An Ethernet frame for a frame of another link type (None when impossible)."""
    def ip_eth(payload):
        if not payload:
            return None
        v = payload[0] >> 4
        et = 0x0800 if v == 4 else 0x86dd if v == 6 else None
        return None if et is None else MAC_B + MAC_A + struct.pack('!H', et) + payload
    if link == 1:
        return frame
    if link == 101:
        return ip_eth(frame)
    if link in (0, 108):
        return ip_eth(frame[4:])
    if link == 113 and len(frame) >= 16:
        return MAC_B + MAC_A + frame[14:16] + frame[16:]
    if link == 276 and len(frame) >= 20:
        return MAC_B + MAC_A + frame[0:2] + frame[20:]
    return None


def outer_ip(payload, proto, v6):
    if v6:
        return struct.pack('!IHBB', 0x60000000, len(payload), proto, 255) + \
            bytes.fromhex('20010db8ffff00000000000000000007') + \
            bytes.fromhex('20010db8ffff00000000000000000009') + payload
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0, 0x4000, 255, proto, 0,
                    bytes([192, 0, 2, 7]), bytes([192, 0, 2, 9]))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return h + payload


def carrier(l3, v6, vlans):
    tags = b''
    for i in range(vlans):
        tpid = 0x88a8 if i == 0 and vlans > 1 else 0x8100
        tags += struct.pack('!HH', tpid, 100 + i)
    return bytes.fromhex('02000000ee01') + bytes.fromhex('02000000ee02') + tags + \
        struct.pack('!H', 0x86dd if v6 else 0x0800) + l3


def strip_l2(eth):
    """(ethertype, payload) of an Ethernet frame without its VLAN tags."""
    off = 12
    et = struct.unpack('!H', eth[off:off + 2])[0]
    while et in (0x8100, 0x88a8, 0x9100) and len(eth) >= off + 6:
        off += 4
        et = struct.unpack('!H', eth[off:off + 2])[0]
    return et, eth[off + 2:]


def gre(proto, payload, seq=None, key=None):
    flags = (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    h = struct.pack('!HH', flags, proto)
    if key is not None:
        h += struct.pack('!I', key)
    if seq is not None:
        h += struct.pack('!I', seq & 0xffffffff)
    return h + payload


def erspan2_hdr(session):
    return struct.pack('!HHI', 0x1000 | 0, (3 << 11) | (session & 0x3ff), 0)


def erspan3_hdr(session, ts):
    return struct.pack('!HHIHH', 0x2000, session & 0x3ff, ts & 0xffffffff, 0, 1) + b'\x5a' * 8


def mpls(labels, payload):
    out = b''
    for i in range(labels):
        out += struct.pack('!I', (16 + i) << 12 | (0x100 if i == labels - 1 else 0) | 64)
    return out + payload


def wrap(layout, eth, seq, args, ts):
    v6, vlans, s = args.outer6, args.outer_vlans, args.session
    if layout == 'gre':
        return carrier(outer_ip(gre(0x6558, eth, seq, key=s), 47, v6), v6, vlans)
    if layout == 'erspan1':
        return carrier(outer_ip(gre(0x88be, eth), 47, v6), v6, vlans)
    if layout == 'erspan2':
        return carrier(outer_ip(gre(0x88be, erspan2_hdr(s) + eth, seq), 47, v6), v6, vlans)
    if layout == 'erspan3':
        return carrier(outer_ip(gre(0x22eb, erspan3_hdr(s, ts) + eth, seq), 47, v6), v6, vlans)
    if layout == 'vxlan':
        udp = struct.pack('!HHHH', 49152 + seq % 1000, 4789, 16 + len(eth), 0)
        vx = struct.pack('!II', 0x08000000, s << 8)
        return carrier(outer_ip(udp + vx + eth, 17, v6), v6, vlans)
    if layout == 'mpls-ip':
        et, l3 = strip_l2(eth)
        if et not in (0x0800, 0x86dd):
            return None
        return bytes.fromhex('02000000ee0102000000ee02') + struct.pack('!H', 0x8847) + mpls(3, l3)
    if layout == 'mpls-pw':
        return bytes.fromhex('02000000ee0102000000ee02') + struct.pack('!H', 0x8847) + \
            mpls(2, b'\0\0\0\0' + eth)
    if layout == 'mpls-erspan':
        inner = outer_ip(gre(0x88be, erspan2_hdr(s) + eth, seq), 47, False)
        return bytes.fromhex('02000000ee0102000000ee02') + struct.pack('!H', 0x8847) + \
            mpls(1, inner)
    sys.exit(f'unknown layout {layout}')


SEQUENCED = ('gre', 'erspan2', 'erspan3', 'mpls-erspan')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('layout')
    ap.add_argument('src')
    ap.add_argument('dst')
    ap.add_argument('--outer-vlans', type=int, default=0)
    ap.add_argument('--outer6', action='store_true')
    ap.add_argument('--drop-seq', default='')
    ap.add_argument('--session', type=int, default=42)
    args = ap.parse_args()
    drop = {int(x) for x in args.drop_seq.split(',') if x}
    try:
        link, frames = read_pcap(args.src)
    except ValueError as e:
        sys.exit(str(e))
    out = [pcap_header(262144)]
    seq = 1
    wrapped = dropped = 0
    for sec, usec, frame, origlen in frames:
        eth = to_ethernet(link, frame)
        if eth is None:
            continue
        if args.layout in SEQUENCED:
            while seq in drop:  # the switch numbered a copy that never arrives
                seq += 1
                dropped += 1
        w = wrap(args.layout, eth, seq, args, sec * 1000000 + usec)
        seq += 1
        if w is None:
            w = eth
        else:
            wrapped += 1
        orig = len(w) + max(0, origlen - len(frame))
        out.append(pcap_record(sec, usec, w, orig))
    with open(args.dst, 'wb') as f:
        f.write(b''.join(out))
    print(json.dumps({'frames': len(frames), 'wrapped': wrapped, 'seq_dropped': dropped}))


if __name__ == '__main__':
    main()
