"""A differential fuzzer of ``.h5`` reads: ``files.read_parameters`` against h5py alone.

The load reads what the Python check described of a dataset (shape, dtype,
``need_grad``, ``index``, where its values are) without HDF5 opening it
(docs/checkpoints.md, "Damaged files and the HDF5 check"). Here good files of many
kinds are damaged (bits flipped, bytes set, inside object headers most often, the
checksums of HDF5 1.8's headers made right again half the time; files cut short) and
each damaged file is read twice, each in a forked child with a timeout and a memory
limit: by ``files.read_parameters`` and by a walk of the file in h5py. Where both read
it, they must agree on every name, the order, each shape, dtype, ``need_grad`` and
value, bit for bit.

Run ``python tests/h5_differential.py --mutants 3000 --seed 1`` for a long run; the
test suite runs a few hundred (tests/test_h5_direct_reads.py).
"""

import argparse
import io
import os
import pickle
import random
import resource
import select
import signal
import struct
import sys
import time
from collections import Counter

import h5py
import numpy as np

from nnabla_modules import files
from nnabla_modules.files._h5_read import lookup3

LIBVERS = ("earliest", ("v108", "v108"))
DTYPES = [f"{order}{kind}{size}" for order in "<>" for kind, size in
          [("i", 1), ("u", 1), ("i", 2), ("u", 2), ("i", 4), ("u", 4), ("i", 8), ("u", 8),
           ("f", 2), ("f", 4), ("f", 8)]]  # fmt: skip
#: ``need_grad`` and ``index`` as h5py or other writers may store them.
ATTRIBUTES = [np.bool_(True), np.int8(0), np.uint64(1), np.array(1, ">i2"), np.array(0, ">u4"),
              np.array([1], np.int32)]  # fmt: skip
INDICES = [None, -1, 0, 3, np.int8(-2), np.array(2, ">i8"), np.uint16(7), np.array([5], "<u2")]


# --- good files --------------------------------------------------------------------


def good_files():
    """``[(label, bytes)]``: files written by NNabla, by this library and by h5py."""
    import nnabla as nn
    import nnabla.parametric_functions as PF

    rng = np.random.default_rng(0)
    found = []
    nn.clear_parameters()
    PF.convolution(PF.affine(nn.Variable((2, 4)), 6, name="fc").reshape((2, 2, 3)), 2, (1,),
                   name="conv")
    nn.get_parameters()["fc/affine/W"].need_grad = False
    stream = io.BytesIO()
    nn.save_parameters(stream, extension=".h5")
    nn.clear_parameters()
    found.append(("nn.save_parameters", stream.getvalue()))
    stream = io.BytesIO()
    arrays = {"b/x": rng.standard_normal((2, 3)).astype(np.float32), "a": np.arange(5.0)}
    files.write_parameters(stream, arrays, extension=".h5")
    found.append(("write_parameters", stream.getvalue()))
    for libver in LIBVERS:
        tag = "v108" if libver != "earliest" else "earliest"
        found.append((f"dtypes {tag}", _h5py_file(libver, _every_dtype(rng))))
        found.append((f"compact {tag}", _h5py_file(libver, _every_dtype(rng)[::3], compact=True)))
        found.append((f"attributes {tag}", _h5py_file(libver, _attributes(rng))))
        found.append((f"groups {tag}", _h5py_file(libver, _groups(rng))))
        found.append((f"fill {tag}", _h5py_file(libver, _groups(rng)[:3], fill=True)))
    return found


def _every_dtype(rng):
    shapes = [(3,), (), (0, 3), (2, 2)]
    return [(f"d{i}", np.asarray(rng.standard_normal(shapes[i % 4]) * 100, dtype), bool(i % 2), i)
            for i, dtype in enumerate(DTYPES)]  # fmt: skip


def _attributes(rng):
    return [(f"p{i}", rng.standard_normal(2).astype(np.float32), need_grad, index)
            for i, (need_grad, index) in enumerate(zip(ATTRIBUTES * 2, INDICES))]  # fmt: skip


def _groups(rng):
    names = [f"g/sub{i % 2}/w{i}" for i in range(4)] + [f"wide/n{i:02}" for i in range(11)]
    return [(name, rng.standard_normal(2).astype(np.float32), True, i)
            for i, name in enumerate(names)]  # fmt: skip


def _h5py_file(libver, items, compact=False, fill=False):
    stream = io.BytesIO()
    with h5py.File(stream, "w", libver=libver) as handle:
        for name, array, need_grad, index in items:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            if compact:
                dcpl.set_layout(h5py.h5d.COMPACT)
            if fill:
                dcpl.set_fill_value(np.array(7, array.dtype))
            handle.require_group(os.path.dirname(name) or "/")
            space = h5py.h5s.create_simple(array.shape) if array.ndim else (
                h5py.h5s.create(h5py.h5s.SCALAR))  # fmt: skip
            kind = h5py.h5t.py_create(array.dtype)
            dataset = h5py.h5d.create(handle.id, name.encode(), kind, space, dcpl=dcpl)
            if array.size:
                dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, array)
            attributes = handle[name].attrs
            attributes["need_grad"] = need_grad
            if index is not None:
                attributes["index"] = index
            if len(name) % 3 == 0:
                attributes["note"] = 1.5  # an attribute the load does not read
    return stream.getvalue()


# --- mutants -----------------------------------------------------------------------


def _headers(data):
    """``[(start, end, checksummed)]``: the object headers of a good file."""
    found = []
    with h5py.File(io.BytesIO(data), "r") as handle:
        addresses = {h5py.h5o.get_info(handle.id).addr}
        handle.visititems(lambda name, obj: addresses.add(h5py.h5o.get_info(obj.id).addr))
    for address in addresses:
        if data[address : address + 4] == b"OHDR":
            flags = data[address + 5]
            start = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 3)
            size = int.from_bytes(data[start : start + width], "little")
            found.append((address, start + width + size + 4, True))
        else:  # version 1: 16 bytes, then the messages
            found.append((address, address + 16 + struct.unpack_from("<I", data, address + 8)[0],
                          False))  # fmt: skip
    position = data.find(b"OCHK")
    while position >= 0:
        end = _ochk_end(data, position)
        if end:
            found.append((position, end, True))
        position = data.find(b"OCHK", position + 4)
    return found


def _ochk_end(data, position):
    """The end of the "OCHK" block at ``position``: where a continuation message says."""
    needle = struct.pack("<Q", position)
    where = data.find(needle)
    return where >= 0 and position + struct.unpack_from("<Q", data, where + 8)[0]


def mutants(good, rng, count):
    """``count`` damaged copies of ``good``: ``(what, bytes)``."""
    headers = _headers(good)
    for _ in range(count):
        data, what = bytearray(good), []
        if rng.random() < 0.05:
            cut = rng.randrange(len(good))
            yield f"cut at {cut}", bytes(good[:cut])
            continue
        start, end, checksummed = rng.choice(headers)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            inside = rng.random() < 0.8
            place = rng.randrange(start, end - (4 if checksummed else 0)) if inside else (
                rng.randrange(len(data)))  # fmt: skip
            if rng.random() < 0.5:
                data[place] ^= 1 << rng.randrange(8)
                what.append(f"bit at {place}")
            else:
                data[place] = rng.choice((0, 1, 2, 3, 8, 0x80, 0xFF, rng.randrange(256)))
                what.append(f"byte at {place} = {data[place]}")
        if checksummed and rng.random() < 0.5:
            struct.pack_into("<I", data, end - 4, lookup3(bytes(data[start : end - 4])))
            what.append(f"checksum of {start} made right")
        yield ", ".join(what), bytes(data)


def every_bit(good, datasets=1):
    """Each bit of the first ``datasets`` dataset headers flipped in turn (the checksum
    of a checksummed header made right): ``(what, bytes)``."""
    with h5py.File(io.BytesIO(good), "r") as handle:
        addresses = [h5py.h5o.get_info(handle[name].id).addr
                     for name, _ in _walk(handle.id, "")][:datasets]  # fmt: skip
    for start, end, checksummed in _headers(good):
        if start not in addresses:
            continue
        for place in range(start, end - (4 if checksummed else 0)):
            for bit in range(8):
                data = bytearray(good)
                data[place] ^= 1 << bit
                if checksummed:
                    struct.pack_into("<I", data, end - 4, lookup3(bytes(data[start : end - 4])))
                yield f"bit {bit} at {place}", bytes(data)


# --- the two readers ---------------------------------------------------------------


class Probed(BaseException):
    """The file went to the crash probe: no direct read to compare (not an Exception, which
    the load would report as an unreadable file)."""


def ours(data):
    def refused(*args, **kwargs):
        raise Probed

    files._probe = refused  # in a forked child: the probe's own process is slow
    read = files.read_parameters(io.BytesIO(data), extension=".h5")
    return [(name, values.shape, values.dtype.str, bool(need_grad), values.tobytes())
            for name, (values, need_grad) in read.items()]  # fmt: skip


def reference(data):
    """The parameters as h5py alone reads them, in NNabla's order (by ``index``)."""
    with h5py.File(io.BytesIO(data), "r") as handle:
        found = list(_walk(handle.id, ""))
        rows = []
        for position, (name, dataset) in enumerate(found):
            values = np.empty(dataset.shape, dataset.dtype)
            if values.size:
                dataset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, values)
            index = _one(dataset.attrs["index"]) if "index" in dataset.attrs else None
            need_grad = bool(_one(dataset.attrs["need_grad"]))
            rows.append((index is None, index or 0, position,
                         (name, values.shape, values.dtype.str, need_grad, values.tobytes())))
    return [row[-1] for row in sorted(rows, key=lambda row: row[:3])]


def _walk(group, prefix):
    """``(name, dataset)`` depth first, each group's links by name (h5py's low-level calls:
    what HDF5 reads to reach a dataset, and no group property it does not need)."""
    names = []
    group.links.iterate(names.append, idx_type=h5py.h5.INDEX_NAME, order=h5py.h5.ITER_INC)
    for raw in names:
        child, name = h5py.h5o.open(group, raw), raw.decode()
        if h5py.h5i.get_type(child) == h5py.h5i.GROUP:
            yield from _walk(child, f"{prefix}{name}/")
        else:
            yield prefix + name, h5py.Dataset(child)


def _one(value):
    value = np.asarray(value)
    if value.size != 1 or value.ndim > 1:
        raise ValueError(f"not one value: {value!r}")
    return int(value.reshape(()))


def forked(function, data, timeout=5.0, memory=1 << 30):
    """``("ok", result)`` or ``("error", text)`` of ``function(data)`` in a forked child;
    ``("killed", text)`` when it crashes, outlives ``timeout`` or outgrows ``memory``."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(reading)
        try:
            with open("/proc/self/status") as status:
                held = next(int(line.split()[1]) for line in status if line.startswith("VmSize"))
            resource.setrlimit(resource.RLIMIT_AS, (held * 1024 + memory, resource.RLIM_INFINITY))
            try:
                result = ("ok", function(data))
            except Probed:
                result = ("probed", "")
            except Exception as error:  # noqa: BLE001 (reported)
                result = ("error", f"{type(error).__name__}: {str(error)[:300]}")
            with os.fdopen(writing, "wb") as pipe:
                pipe.write(pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(writing)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(reading, "rb") as pipe:
        while time.monotonic() < deadline:
            if select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
                chunk = os.read(pipe.fileno(), 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return "killed", f"status {status}"
    return pickle.loads(b"".join(chunks))


def differ(mine, theirs):
    """What differs between two lists of parameters, or None."""
    if [row[0] for row in mine] != [row[0] for row in theirs]:
        return f"names or order: {[r[0] for r in mine]} != {[r[0] for r in theirs]}"
    for a, b in zip(mine, theirs):
        for field, x, y in zip(("name", "shape", "dtype", "need_grad", "values"), a, b):
            if x != y:
                return f"{a[0]!r}: {field} {short(x)} != {short(y)}"
    return None


def short(value):
    text = repr(value)
    return text if len(text) < 80 else text[:80] + "..."


def run(count, seed, report=print, exhaustive=False):
    """Reads ``count`` mutants of each good file (or each bit of a dataset header
    flipped, if ``exhaustive``); returns ``(counts, findings)``."""
    rng, counts, findings = random.Random(seed), Counter(), []
    for label, good in good_files():
        mine, theirs = forked(ours, good), forked(reference, good)
        assert theirs[0] == "ok" and mine[0] in ("ok", "probed"), (label, mine, theirs)
        assert mine[0] == "probed" or differ(mine[1], theirs[1]) is None, label
        damaged = every_bit(good) if exhaustive else mutants(good, rng, count)
        for what, data in damaged:
            mine, theirs = forked(ours, data), forked(reference, data)
            counts[mine[0], theirs[0]] += 1
            if mine[0] == "ok" and theirs[0] == "ok":
                difference = differ(mine[1], theirs[1])
                if difference:
                    findings.append((label, what, difference, data))
                    report(f"DIFFER {label}: {what}: {difference}")
            elif mine[0] == "ok" and theirs[0] != "probed":
                findings.append((label, what, f"h5py: {theirs[1]}", data))
                report(f"ONLY OURS {label}: {what}: h5py {theirs[0]}: {theirs[1][:120]}")
            elif mine[0] == "killed":
                report(f"KILLED {label}: {what}: {mine[1]}")
    return counts, findings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=300, help="per good file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", help="a folder for the files where they differ")
    parser.add_argument("--every-bit", action="store_true",
                        help="flip each bit of each file's first dataset header instead")
    args = parser.parse_args()
    started = time.monotonic()
    counts, findings = run(args.mutants, args.seed, exhaustive=args.every_bit)
    for (mine, theirs), number in sorted(counts.items()):
        print(f"ours {mine:7} h5py {theirs:7}: {number}")
    print(f"{sum(counts.values())} mutants, {len(findings)} findings, "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        for number, (_, _, _, data) in enumerate(findings):
            with open(os.path.join(args.save, f"finding{number}.h5"), "wb") as out:
                out.write(data)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
