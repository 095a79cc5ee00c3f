#!/usr/bin/env python3
"""Independent reader of TensorBoard event files (TFRecord framing + Event protobufs).

Written from the format's description, not from megatune's C code: checks both masked CRC32C
values of every record, decodes Event {wall_time=1 double, step=2 int64, file_version=3 string,
summary=5 {value=1 {tag=1 string, simple_value=2 float}}} with a generic protobuf wire parser.

usage: read_tfevents.py FILE...   -> prints one JSON object per event (stdout)
Exits 1 with a message on any framing, CRC or protobuf error (a torn final record is reported
as such and is an error unless --allow-torn-tail is given).
"""
import json
import struct
import sys


def _crc32c_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ poly
            else:
                crc >>= 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "CRC32C self-check failed"


def read_varint(buf, pos):
    shift = 0
    value = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse_fields(buf):
    """Generic protobuf wire-format parser: list of (field, wire_type, value)."""
    pos = 0
    out = []
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = read_varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            v = buf[pos:pos + 8]
            pos += 8
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            v = buf[pos:pos + n]
            pos += n
        elif wt == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            v = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.append((field, wt, v))
    return out


def decode_event(buf):
    ev = {}
    for field, wt, v in parse_fields(buf):
        if field == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif field == 2 and wt == 0:
            ev["step"] = v if v < (1 << 63) else v - (1 << 64)
        elif field == 3 and wt == 2:
            ev["file_version"] = v.decode("utf-8")
        elif field == 5 and wt == 2:
            values = []
            for f2, w2, v2 in parse_fields(v):
                if f2 != 1 or w2 != 2:
                    continue
                val = {}
                for f3, w3, v3 in parse_fields(v2):
                    if f3 == 1 and w3 == 2:
                        val["tag"] = v3.decode("utf-8")
                    elif f3 == 2 and w3 == 5:
                        val["simple_value"] = struct.unpack("<f", v3)[0]
                values.append(val)
            ev["summary"] = values
    return ev


def read_records(path, allow_torn_tail=False):
    data = open(path, "rb").read()
    pos = 0
    events = []
    while pos < len(data):
        if pos + 12 > len(data):
            if allow_torn_tail:
                break
            raise ValueError("%s: torn record header at byte %d" % (path, pos))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(crc32c(header)) != len_crc:
            raise ValueError("%s: bad length CRC at byte %d" % (path, pos))
        start = pos + 12
        end = start + length
        if end + 4 > len(data):
            if allow_torn_tail:
                break
            raise ValueError("%s: torn record at byte %d" % (path, pos))
        payload = data[start:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if masked(crc32c(payload)) != data_crc:
            raise ValueError("%s: bad data CRC at byte %d" % (path, pos))
        events.append(decode_event(payload))
        pos = end + 4
    return events


def main(argv):
    allow = "--allow-torn-tail" in argv
    files = [a for a in argv if not a.startswith("--")]
    if not files:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        for f in files:
            for ev in read_records(f, allow):
                print(json.dumps(ev, sort_keys=True))
    except (ValueError, OSError) as e:
        print("read_tfevents: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
