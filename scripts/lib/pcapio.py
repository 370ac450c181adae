"""Classic pcap files and the Internet checksum, for the project's Python helpers (capture
recorder, lab, generators, wrapper, fuzz seeds). Standard library only."""
import struct

_MAGIC = {  # first 4 bytes -> (byte order, nanosecond timestamps)
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}


def read_pcap(path):
    """Return (link type, [(sec, usec, frame, orig_len)]) of a classic pcap in either byte
    order, µs or ns timestamps. A record cut short at the end of the file is dropped.
    Raises ValueError when the file is not a classic pcap."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise ValueError("%s: not a classic pcap file" % path)
    endian, nano = _MAGIC[data[:4]]
    link = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = rec.unpack_from(data, off)
        off += 16
        frame = data[off:off + incl]
        off += incl
        if len(frame) < incl:
            break
        out.append((sec, frac // 1000 if nano else frac, frame, orig))
    return link, out


def pcap_header(snaplen=65535, link=1):
    """Global header of a little-endian µs pcap (link 1 = Ethernet)."""
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, link)


def pcap_record(sec, usec, frame, orig_len=None):
    """One record: header and frame."""
    return struct.pack("<IIII", sec, usec, len(frame),
                       len(frame) if orig_len is None else orig_len) + frame


def csum(data):
    """RFC 1071 Internet checksum (odd lengths padded with a zero byte)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
