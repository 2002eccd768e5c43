"""One rule per class of hostile or broken file, shared by the frontends, the CLIs and ``qir.sim``.

Model, IR and input files are untrusted.  Every reader goes through these checks, so a new
reader gets them by calling one function:

- **Atomic outputs** (``atomic_write``, ``atomic_save_npy``, ``output_dir``): a file is written to
  a temporary file beside it and renamed into place only once it is complete; an output directory
  is built in a temporary directory beside it and swapped in on success.  An existing output
  directory is replaced only when everything in it is qir's own (see ``output_dir``).
- **Size limits before allocation** (``check_shape``, ``check_h5``, ``read_array_file``): declared
  shapes are checked against ``MAX_TENSOR_ELEMENTS`` / ``MAX_ARRAY_BYTES`` and against the bytes the
  file really holds before anything is read.
- **Local files only inside the model's folder** (``inside_folder``, ``check_h5``): no HDF5
  external link, external raw storage or virtual dataset; ONNX external data only beside the model.
- **Bounded nesting** (``check_nesting``, ``load_json``): JSON and IR nested deeper than
  ``MAX_NESTING`` is refused before the recursive parsers see it.
- **One input loader** (``load_inputs``, ``check_inputs``): ``qir eval``, ``qir sim`` and
  ``evaluate_real`` accept the same arrays and refuse the same ones with the same line.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qir.errors import QirError

#: Elements of any one model tensor (input, weights, intermediate): fully unrolled hardware of
#: this size is far beyond any FPGA, so a larger declared shape is a broken or hostile file.
MAX_TENSOR_ELEMENTS = 1 << 22
#: Bytes of one array read from a file (weights dataset, input array member).
MAX_ARRAY_BYTES = 1 << 30
#: Largest ratio of declared bytes to stored bytes of an HDF5 dataset (fill values, compression).
MAX_H5_RATIO = 1000
#: Deepest bracket nesting of JSON and IR text (real files stay below 20).
MAX_NESTING = 100


# ------------------------------------------------------------------------------- atomic outputs
def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename: readers
    see the old file or the complete new one, never a partial or empty one."""
    p = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise QirError(f"cannot write the output: {e.strerror or e}", where=str(p)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        if p.exists():
            shutil.copymode(p, tmp)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise QirError(f"cannot write the output: {e.strerror or e}", where=str(p)) from None
        raise
    return p


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    """``np.save`` semantics for the name (``.npy`` appended when missing), written atomically."""
    p = Path(path)
    if p.suffix != ".npy":
        p = p.with_name(p.name + ".npy")
    return atomic_write(p, npy_bytes(array))


#: What ``qir compile`` writes at the top of OUTDIR (``sim/`` is ``qir sim``'s build cache).
QIR_OUTPUTS = frozenset({"net.mlir", "lowered.mlir", "report.json", "rtl", "tb", "sim", ".qir-manifest"})
MANIFEST = ".qir-manifest"


def _foreign_files(out: Path) -> list[str]:
    """Files in ``out`` that qir did not write: not in its manifest (or, for outputs older than the
    manifest, not one of ``QIR_OUTPUTS``), ignoring ``sim/``."""
    manifest = out / MANIFEST
    listed: set[str] | None = None
    if manifest.is_file() and not manifest.is_symlink():
        try:
            listed = set(manifest.read_text(encoding="utf-8").splitlines()) | {MANIFEST}
        except (OSError, UnicodeDecodeError):
            listed = None
    foreign = []
    for root, dirs, files in os.walk(out):  # symlinks are not followed; qir never writes one
        rel_root = Path(root).relative_to(out)
        if rel_root.parts[:1] == ("sim",):
            continue
        links = sorted(d for d in dirs if (Path(root) / d).is_symlink())
        for name in sorted(files) + links:
            rel = (rel_root / name).as_posix()
            ok = rel in listed if listed is not None else rel.split("/", 1)[0] in QIR_OUTPUTS
            if not ok or (Path(root) / name).is_symlink():
                foreign.append(rel)
        dirs[:] = sorted(d for d in dirs if d not in links)
    return foreign


def check_output_dir(out: str | Path) -> None:
    """The rule for ``-o DIR`` of ``qir compile``: DIR may be missing, empty, or a previous qir
    output holding only qir's own files (its ``.qir-manifest``, plus the ``sim/`` build cache);
    anything else (a file, a folder with a user's files) is refused, naming the first foreign file."""
    p = Path(out)
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        raise QirError("the output path exists and is not a folder; choose another -o", where=str(p))
    here = Path.cwd().resolve()
    if p.resolve() == here or p.resolve() in here.parents:
        raise QirError("the output folder is the current folder or holds it; qir replaces the whole output "
                       "folder: pass a new subfolder, e.g. -o out", where=str(p))
    if not p.exists():
        return
    foreign = _foreign_files(p)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise QirError(f"the output folder holds files qir did not write ({foreign[0]}{more}); qir replaces "
                       "only its own outputs: choose another -o or move them away", where=str(p))


@contextmanager
def output_dir(out: str | Path) -> Iterator[Path]:
    """Build an output folder in a temporary folder beside ``out`` (yielded) and swap it in when
    the block succeeds; on any error the temporary folder is removed and ``out`` is untouched.
    ``check_output_dir`` decides whether an existing ``out`` may be replaced.  A manifest of the
    files written is stored as ``.qir-manifest``."""
    check_output_dir(out)
    p = Path(os.path.abspath(out))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
    except OSError as e:
        raise QirError(f"cannot create the output folder: {e.strerror or e}", where=str(p)) from None
    old: Path | None = None
    try:
        yield tmp
        files = sorted(f.relative_to(tmp).as_posix() for f in tmp.rglob("*") if f.is_file())
        (tmp / MANIFEST).write_text("".join(f"{f}\n" for f in files), encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())
        check_output_dir(p)  # again: nothing foreign appeared while we built
        if p.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".old", dir=p.parent))
            os.replace(p, old / "d")
        try:
            os.replace(tmp, p)
        except OSError:
            if old is not None:
                os.replace(old / "d", p)  # the previous output back in place
            raise
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise QirError(f"cannot write the output folder: {e.strerror or e}", where=str(p)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None and not (old / "d").exists():  # kept if it could not be put back
            shutil.rmtree(old, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------- sizes
def check_shape(shape: Sequence[int], where: str | None, what: str = "tensor") -> tuple[int, ...]:
    """A declared shape: positive integers whose product is at most ``MAX_TENSOR_ELEMENTS``."""
    dims = tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in dims):
        raise QirError(f"{what} shape {list(dims)} is not a list of positive integers", where=where)
    n = 1
    for d in dims:
        n *= int(d)
    if n > MAX_TENSOR_ELEMENTS:
        raise QirError(f"{what} shape {list(dims)} has {n} elements, more than qir's limit of "
                       f"{MAX_TENSOR_ELEMENTS} for a fully unrolled design; the file is broken or the model "
                       "is far too large", where=where)
    return tuple(int(d) for d in dims)


def check_elements(shape: Sequence[int], what: str = "tensor") -> tuple[int, ...]:
    """A shape qir is about to build a tensor of (zero-size dimensions allowed): at most
    ``MAX_TENSOR_ELEMENTS`` elements."""
    dims = tuple(int(d) for d in shape)
    n = 1
    for d in dims:
        n *= max(d, 0)
    if n > MAX_TENSOR_ELEMENTS:
        raise QirError(f"{what} shape {list(dims)} has {n} elements, more than qir's limit of {MAX_TENSOR_ELEMENTS} "
                       "for a fully unrolled design; the file is broken or the model is far too large")
    return dims


# ------------------------------------------------------------------------------- local files
def inside_folder(base: str | Path, location: str, where: str, what: str) -> Path:
    """``location`` (relative, as written in a model file) resolved inside ``base``'s folder;
    absolute paths, ``..`` escapes and symlinks leading out are refused."""
    folder = Path(base).resolve().parent
    loc = Path(location)
    target = (folder / loc).resolve()
    if loc.is_absolute() or folder not in target.parents:
        raise QirError(f"{what} points to {location!r} outside the model's folder; qir reads only files "
                       "beside the model: keep the data file there", where=where)
    return target


def check_h5(f: Any, where: str) -> None:
    """Refuse an HDF5 file (an open ``h5py.File``) that reaches outside itself or declares more data
    than it holds: external links, user-defined links, external raw storage, virtual datasets, and
    datasets larger than ``MAX_ARRAY_BYTES`` or ``MAX_H5_RATIO`` times their stored bytes.  Runs
    over every link once, before any dataset is read."""
    import h5py

    problems: list[str] = []

    def visit(name: str, link: Any) -> bool | None:
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"'{name}' is an external link to {link.filename!r}:{link.path!r}; qir reads "
                            "only data stored inside the model file")
        elif not isinstance(link, (h5py.HardLink, h5py.SoftLink)):
            problems.append(f"'{name}' is a user-defined HDF5 link; qir reads only plain groups and datasets")
        elif isinstance(link, h5py.HardLink):
            obj = f.get(name)
            if isinstance(obj, h5py.Dataset):
                problems.extend(_dataset_problems(name, obj)[:1])
        return True if problems else None  # stop at the first problem

    try:
        f.visititems_links(visit)
        if not problems:
            for key in f.attrs:
                n = f.attrs.get_id(key).get_storage_size()
                if n > MAX_ARRAY_BYTES:
                    problems.append(f"root attribute '{key}' declares {n} bytes")
                    break
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise QirError(f"cannot read the HDF5 file ({' '.join(str(e).split())[:200]}); the file is "
                       "truncated or corrupt", where=where) from None
    if problems:
        raise QirError(f"refusing the HDF5 file: {problems[0]}", where=where)


def _dataset_problems(name: str, ds: Any) -> list[str]:
    if ds.is_virtual:
        return [f"dataset '{name}' is a virtual dataset (data in other files)"]
    if ds.external:
        files = ", ".join(repr(e[0]) for e in ds.external)
        return [f"dataset '{name}' keeps its raw data in external file(s) {files}"]
    if ds.shape is None:
        return []
    count = int(np.prod(ds.shape, dtype=object)) if ds.shape else 1
    nbytes = count * max(ds.dtype.itemsize, 1)
    stored = ds.id.get_storage_size()
    if nbytes > MAX_ARRAY_BYTES or nbytes > MAX_H5_RATIO * max(stored, 4096):
        return [f"dataset '{name}' declares shape {list(ds.shape)} ({nbytes} bytes) but stores {stored} "
                "bytes; the file is broken or hostile"]
    return []


# ------------------------------------------------------------------------------- nesting
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nesting_depth(text: str, opens: str = "[{", closes: str = "]}") -> int:
    """Deepest bracket nesting of ``text`` (strings already removed by the caller)."""
    if not text:
        return 0
    b = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.zeros(b.shape, dtype=np.int64)
    for c in opens.encode():
        step[b == c] = 1
    for c in closes.encode():
        step[b == c] = -1
    return int(np.cumsum(step).max(initial=0))


def check_nesting(text: str, where: str, what: str, *, strings: re.Pattern = _JSON_STRINGS,
                  opens: str = "[{", closes: str = "]}") -> None:
    depth = nesting_depth(strings.sub('""', text), opens, closes)
    if depth > MAX_NESTING:
        raise QirError(f"{what} is nested {depth} levels deep, more than qir's limit of {MAX_NESTING}; "
                       "the file is broken or hostile", where=where)


def load_json(data: str | bytes, where: str, what: str = "JSON", fix: str = "") -> Any:
    """``json.loads`` with a nesting check first: invalid or too deep JSON is one QirError line."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as e:
        raise QirError(f"{what} is not UTF-8 text ({e.reason} at byte {e.start}){fix}", where=where) from None
    check_nesting(text, where, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise QirError(f"invalid {what} ({e.msg}, line {e.lineno}){fix}", where=where) from None
    except RecursionError:
        raise QirError(f"{what} is nested too deeply{fix}", where=where) from None


# ------------------------------------------------------------------------------- input arrays
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _npy_header(f, where: str, size: int) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy stream positioned at its start; the declared data must fit in
    ``size`` bytes (the file or archive member) and its dtype must be real numbers."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise QirError(f"not a readable .npy array ({' '.join(str(e).split())[:160]}); save inputs with "
                       "numpy.save", where=where) from None
    check_dtype(dtype, where)
    count = 1
    for d in shape:
        count *= int(d)
    need = count * dtype.itemsize
    have = size - f.tell()
    if need > have or need > MAX_ARRAY_BYTES:
        raise QirError(f"the .npy header declares shape {list(shape)} ({need} bytes) but the file holds "
                       f"{have} bytes of data; the file is truncated or corrupt", where=where)
    return shape, dtype


def check_dtype(dtype: np.dtype, where: str, name: str | None = None) -> None:
    """Inputs are real numbers: integer or float arrays.  Complex, bool, string, bytes, datetime,
    timedelta, object and structured arrays are refused."""
    if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
        kind = {"b": "bool", "c": "complex", "U": "string", "S": "bytes", "M": "datetime",
                "m": "timedelta", "O": "object (pickled)", "V": "structured"}.get(dtype.kind, str(dtype))
        who = f"input '{name}' has" if name else "the array has"
        raise QirError(f"{who} dtype {dtype} ({kind}); inputs must be real numbers (float or integer arrays "
                       "saved with numpy.save)", where=where)


def read_array_file(path: str | Path, names: Sequence[str]) -> list[np.ndarray]:
    """The arrays of an inputs file: a .npy (one input) or an .npz with one array per input name
    (or exactly as many arrays as inputs).  Headers are checked against the file's size before
    anything is read; pickles are never loaded."""
    p = Path(path)
    where = str(p)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            magic = f.read(6)
            f.seek(0)
            if magic.startswith(_NPY_MAGIC):
                _npy_header(f, where, size)
                f.seek(0)
                arrays = {"": np.lib.format.read_array(f, allow_pickle=False)}
            elif magic.startswith(_ZIP_MAGIC):
                arrays = _read_npz(f, where)
            else:
                raise QirError("not a .npy array or .npz archive (pickles and text files are refused); save "
                               "inputs with numpy.save", where=where)
    except FileNotFoundError:
        raise QirError("no such inputs file", where=where) from None
    except IsADirectoryError:
        raise QirError("is a folder; pass an inputs .npy file", where=where) from None
    except QirError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise QirError(f"cannot read the inputs ({' '.join(str(e).split())[:160]}); the file is truncated or "
                       "corrupt", where=where) from None
    if "" in arrays:
        if len(names) != 1:
            raise QirError(f"the model has {len(names)} inputs ({', '.join(names)}); pass an .npz with one "
                           "array per input name", where=where)
        return [arrays[""]]
    keys = list(arrays)
    if all(nm in arrays for nm in names):
        return [arrays[nm] for nm in names]
    if len(keys) == len(names):
        return [arrays[k] for k in keys]
    raise QirError(f"expected arrays named {', '.join(names)}, found {', '.join(keys) or 'none'}", where=where)


def _read_npz(f, where: str) -> dict[str, np.ndarray]:
    out = {}
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        if len(infos) > 1024:
            raise QirError(f"the .npz archive has {len(infos)} members; expected one array per model input",
                           where=where)
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            w = f"{where}: member {info.filename}"
            if info.file_size > MAX_ARRAY_BYTES or (
                    info.compress_size and info.file_size > MAX_H5_RATIO * max(info.compress_size, 4096)):
                raise QirError(f"implausibly large ({info.file_size} bytes from {info.compress_size}); refusing "
                               "to decompress it", where=w)
            with zf.open(info) as m:
                _npy_header(m, w, info.file_size)
            with zf.open(info) as m:
                out[name] = np.lib.format.read_array(m, allow_pickle=False)
    return out


def check_inputs(arrays: Sequence[np.ndarray], ins: Sequence[tuple[str, Any, tuple[int, ...]]],
                 where: str) -> list[np.ndarray]:
    """Mantissas of real input arrays for the model inputs ``ins`` ((name, Fixed, shape) each):
    real dtype, shape (N, *shape), finite, on the type's grid and in range."""
    if len(arrays) != len(ins):
        raise QirError(f"the model has {len(ins)} input(s), got {len(arrays)} array(s)", where=where)
    mants = []
    for (name, t, shape), x in zip(ins, arrays):
        x = np.asarray(x)
        check_dtype(x.dtype, where, name)
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
            raise QirError(f"input '{name}' expects shape (N, {', '.join(map(str, shape))}), got "
                           f"{tuple(x.shape)}", where=where)
        mants.append(t.from_real(x.astype(np.float64, copy=False), f"{where}: input '{name}'"))
    return mants


def load_inputs(path: str | Path, ins: Sequence[tuple[str, Any, tuple[int, ...]]]) -> list[np.ndarray]:
    """The one input loader of ``qir eval`` and ``qir sim``: the file's arrays, checked, as mantissas."""
    arrays = read_array_file(path, [nm for nm, _, _ in ins])
    return check_inputs(arrays, ins, str(path))
