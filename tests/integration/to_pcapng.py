#!/usr/bin/env python3
"""Rewrite a classic little-endian pcap as pcapng (SHB, one IDB, EPBs), same frames and times.
usage: to_pcapng.py IN.pcap OUT.pcapng"""
import struct
import sys


def block(btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def main():
    data = open(sys.argv[1], "rb").read()
    magic, _, _, _, _, snap, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4, "expects a little-endian microsecond pcap"
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", link, 0, snap))]
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ts = sec * 1000000 + usec  # default if_tsresol: microseconds
        out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, incl, orig) + frame))
    open(sys.argv[2], "wb").write(b"".join(out))


if __name__ == "__main__":
    main()
