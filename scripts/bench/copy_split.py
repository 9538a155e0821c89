#!/usr/bin/env python3
"""Splits a PostgreSQL binary COPY stream into files of N rows, each a complete COPY stream.

    copy_split.py INPUT OUT_PREFIX ROWS   -> writes OUT_PREFIX.000000.bin, ...; prints the
                                             number of rows and of files

Parses the PGCOPY header (signature, flags, header extension), the tuples (a 16-bit field
count, then per field a 32-bit length and that many bytes, -1 for NULL) and the trailer (-1).
Each output file gets the input's header and the trailer.
"""
import mmap
import struct
import sys

SIGNATURE = b"PGCOPY\n\xff\r\n\0"
TRAILER = b"\xff\xff"


def main() -> None:
    src, prefix, per_file = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if buf[:11] != SIGNATURE:
        sys.exit(f"{src}: not a binary COPY stream (bad signature)")
    (ext_len,) = struct.unpack_from(">I", buf, 15)
    header_end = 19 + ext_len
    header = bytes(buf[:header_end])
    unpack_i16 = struct.Struct(">h").unpack_from
    unpack_i32 = struct.Struct(">i").unpack_from
    pos = header_end
    rows = files = 0
    start = pos
    in_file = 0

    def flush(end: int) -> None:
        nonlocal files
        with open(f"{prefix}.{files:06d}.bin", "wb") as out:
            out.write(header)
            out.write(buf[start:end])
            out.write(TRAILER)
        files += 1

    while True:
        (fields,) = unpack_i16(buf, pos)
        if fields == -1:
            break
        pos += 2
        for _ in range(fields):
            (n,) = unpack_i32(buf, pos)
            pos += 4 if n < 0 else 4 + n
        rows += 1
        in_file += 1
        if in_file == per_file:
            flush(pos)
            start, in_file = pos, 0
    if pos + 2 != len(buf):
        sys.exit(f"{src}: {len(buf) - pos - 2} bytes after the trailer")
    if in_file:
        flush(pos)
    print(rows, files)


if __name__ == "__main__":
    main()
