"""Reading Keras model files without Keras or TensorFlow: configs and weights.

Formats:

- ``MODEL.json`` + ``MODEL_weights.h5`` (``model.to_json()`` + ``save_weights``, Keras 2 layout:
  one group per layer name with a ``weight_names`` attribute);
- a full-model ``.h5`` (root attribute ``model_config``, weights under ``model_weights/``; written by
  tf-keras and by Keras 3's legacy ``model.save('x.h5')``);
- a Keras 3 ``.keras`` zip (``config.json``, ``metadata.json``, ``model.weights.h5``).  Its weights
  live at ``layers/<snake_case(class)>[_N]/vars/<i>``: keyed by class-derived names, not by the
  layer name.  Each ``vars`` group records the layer's name in its ``name`` attribute, which is
  what the reader matches; the class-derived key in config order is the fallback.  The archive is
  read in memory (never extracted) and its members are size-checked first (zip bombs);
  ``metadata.json`` gives the Keras version;
- a live ``keras.Model`` (when Keras is installed): its JSON config and ``get_weights()``.

Nothing from a file is evaluated or unpickled: JSON is parsed with ``json`` after a nesting check,
HDF5 with h5py after ``qir.safety.check_h5`` (no external links, external storage or virtual
datasets; no dataset declaring more than it stores) has run over the whole file.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from qir.errors import QirError
from qir.safety import check_h5, load_json

#: Members of a .keras archive the reader accepts, and the largest (uncompressed) size of each.
KERAS_ZIP_LIMITS = {"config.json": 64 << 20, "metadata.json": 1 << 20, "model.weights.h5": 4 << 30}
#: Largest compression ratio of a .keras member (real weights compress far less).
KERAS_ZIP_MAX_RATIO = 200


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


@dataclass
class Variables:
    """A layer's stored variables: ``(name, array)`` in storage order.  ``named``: the names are
    Keras variable names (``kernel``, ``gamma``, ...); otherwise positions (``0``, ``1``, and
    ``<sublayer>/<i>`` for nested layers, as in ``.keras`` files)."""

    items: list[tuple[str, np.ndarray]]
    named: bool
    where: str

    def get(self, name: str, index: int, sub: str | None = None, required: bool = True) -> np.ndarray | None:
        """The variable ``name`` (named stores) or at ``index`` (positional stores, within the
        nested ``sub`` layer if given)."""
        if self.named:
            for n, v in self.items:
                if n == name:
                    return v
            if sub is None and index < len(self.items):  # unexpected names: storage order
                return self.items[index][1]
        else:
            key = f"{sub}/{index}" if sub else str(index)
            for n, v in self.items:
                if n == key:
                    return v
        if not required:
            return None
        found = [n for n, _ in self.items] or "none"
        raise QirError(f"the weights have no '{name}' for this layer (found {found}); pass the weights "
                       "saved with this model", where=self.where)

    def floats(self, name: str, index: int, sub: str | None = None, required: bool = True) -> np.ndarray | None:
        v = self.get(name, index, sub, required)
        if v is None:
            return None
        if v.dtype.kind != "f":
            raise QirError(f"variable {name!r} has dtype {v.dtype}, expected float weights", where=self.where)
        return v.astype(np.float32)


class WeightStore:
    """Base of the weight readers; ``read(layer)`` gives the layer's ``Variables``."""

    path: str = "?"

    def where(self, layer) -> str:
        return f"{self.path}: layer '{layer.name}' ({layer.class_name})"

    def read(self, layer) -> Variables:
        raise NotImplementedError

    def close(self) -> None:
        pass


class H5Weights(WeightStore):
    """Keras 2 layout (``save_weights`` .h5, or ``model_weights/`` of a full-model .h5)."""

    def __init__(self, path: Path, group: str | None = None):
        self.path, self.group = str(path), group
        self._path = path
        self._file: h5py.File | None = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, layer) -> Variables:
        where = self.where(layer)
        try:
            root = self._root()
            if layer.name not in root:
                raise QirError("the weights file has no weights for this layer; pass the weights "
                               "file saved with this model (--weights)", where=where)
            g = root[layer.name]
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
            return Variables([(_var_name(n), np.asarray(g[n][()])) for n in names], True, where)
        except FileNotFoundError:
            raise QirError("no such weights file; pass the weights .h5 saved with this model "
                           "(--weights)", where=where) from None
        except QirError as e:
            raise e.located(where) from None
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            raise QirError(f"cannot read the weights ({one_line(e)}); the .h5 file is truncated or "
                           "corrupt: save the weights again", where=where) from None

    def _root(self) -> h5py.Group:
        if self._file is None:
            if not self._path.is_file():
                raise FileNotFoundError(self._path)
            self._file = h5py.File(self._path, "r")
            try:
                check_h5(self._file, self.path)
            except QirError:
                self.close()
                raise
        root = self._file[self.group] if self.group and self.group in self._file else self._file
        if "layer_names" not in root.attrs and "model_weights" in root:  # a full-model .h5
            root = root["model_weights"]
        if "layer_names" not in root.attrs:
            if "layers" in root and "vars" in root:
                raise QirError("this is a Keras 3 .weights.h5 file; pass the whole model saved with "
                               "model.save('model.keras') instead")
            raise QirError("not a Keras weights file (no 'layer_names' attribute)")
        return root


def _var_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case (class name -> .keras weight key)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class ZipWeights(WeightStore):
    """``model.weights.h5`` of a ``.keras`` archive, read from memory."""

    def __init__(self, path: Path, data: bytes, class_keys: dict[str, str]):
        self.path = f"{path} (model.weights.h5)"
        self._file = h5py.File(io.BytesIO(data), "r")
        try:
            check_h5(self._file, self.path)
        except QirError:
            self._file.close()
            raise
        self._by_name: dict[str, str] = {}
        layers = self._file.get("layers")
        if isinstance(layers, h5py.Group):
            for key, g in layers.items():
                v = g.get("vars") if isinstance(g, h5py.Group) else None
                name = v.attrs.get("name") if isinstance(v, h5py.Group) else None
                if isinstance(name, bytes):
                    name = name.decode()
                if isinstance(name, str):
                    self._by_name.setdefault(name, key)
        self._class_keys = class_keys

    def close(self) -> None:
        self._file.close()

    def read(self, layer) -> Variables:
        where = self.where(layer)
        try:
            layers = self._file["layers"]
            key = self._by_name.get(layer.name) or self._class_keys.get(layer.name)
            if key is None or key not in layers:
                return Variables([], False, where)
            items: list[tuple[str, np.ndarray]] = []

            def collect(g: h5py.Group, prefix: str) -> None:
                v = g.get("vars")
                if isinstance(v, h5py.Group):
                    for k in sorted(v, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)):
                        if isinstance(v[k], h5py.Dataset):
                            items.append((f"{prefix}{k}", np.asarray(v[k][()])))
                for sub in g:
                    if sub != "vars" and isinstance(g[sub], h5py.Group):
                        collect(g[sub], f"{prefix}{sub}/")

            collect(layers[key], "")
            return Variables(items, False, where)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            raise QirError(f"cannot read the weights ({one_line(e)}); the .keras file is corrupt",
                           where=where) from None


class LiveWeights(WeightStore):
    """Weights of an in-memory ``keras.Model``."""

    def __init__(self, model: Any):
        self.model = model
        self.path = f"<keras.Model {getattr(model, 'name', '?')}>"

    def read(self, layer) -> Variables:
        try:
            obj = self.model.get_layer(layer.name)
        except ValueError:
            return Variables([], True, self.where(layer))
        items = []
        for v in obj.weights:
            name = getattr(v, "path", None) or v.name
            items.append((_var_name(str(name)), np.asarray(v.numpy() if hasattr(v, "numpy") else v)))
        return Variables(items, True, self.where(layer))


@dataclass
class Source:
    """A loaded model: its config, weights and where it came from."""

    file: Path
    config: Any
    weights: WeightStore
    keras_version: str | None = None
    extra: dict = field(default_factory=dict)


def load(path: Path, weights: Path | None) -> Source:
    suffix = path.suffix.lower()
    if suffix == ".json":
        config = _json(_read_text(path), path)
        store = H5Weights(weights or path.with_name(f"{path.stem}_weights.h5"))
        return Source(path, config, store, _version(config))
    if suffix in (".h5", ".hdf5"):
        config, version = _h5_model_config(path)
        store = H5Weights(weights, None) if weights else H5Weights(path, "model_weights")
        return Source(path, config, store, version)
    if suffix == ".keras":
        return _load_zip(path)
    raise QirError(f"unsupported model file type {suffix or '(none)'!r}; pass a Keras model .json "
                   "(with its weights .h5), a full-model .h5 or a .keras file", where=str(path))


def load_live(model: Any) -> Source:
    """A live keras.Model: its JSON config and weights."""
    try:
        config = json.loads(model.to_json())
    except Exception as e:  # noqa: BLE001 - any failure of a foreign object is a user error
        raise QirError(f"cannot serialize the keras.Model ({one_line(e)}); build it (call it on an "
                       "input) before importing") from None
    name = getattr(model, "name", "model")
    version = None
    try:
        import keras  # noqa: PLC0415 - optional

        version = getattr(keras, "__version__", None)
    except ImportError:
        pass
    return Source(Path(f"{name}.keras"), config, LiveWeights(model), version)


def _version(config: Any) -> str | None:
    v = config.get("keras_version") if isinstance(config, dict) else None
    return v if isinstance(v, str) else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QirError("no such file", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise QirError(f"cannot read the model file: {one_line(e)}", where=str(path)) from None


def _json(text: str, path: Path, what: str = "model.to_json()") -> Any:
    return load_json(text, str(path), "JSON", f"; pass the file written by {what}")


def _h5_model_config(path: Path) -> tuple[dict, str | None]:
    if not path.is_file():
        raise QirError("no such file", where=str(path))
    try:
        with h5py.File(path, "r") as f:
            check_h5(f, str(path))
            raw = f.attrs.get("model_config")
            if raw is None:
                if "layers" in f and "vars" in f:
                    raise QirError("this is a Keras 3 .weights.h5 file without a model; pass the "
                                   "model saved with model.save('model.keras')", where=str(path))
                raise QirError("this .h5 has no 'model_config' attribute (a weights-only file?); "
                               "pass the model .json and this file as --weights", where=str(path))
            version = f.attrs.get("keras_version")
            version = version.decode() if isinstance(version, bytes) else version
            config = load_json(raw if isinstance(raw, bytes) else str(raw), str(path), "model_config JSON")
            return config, (str(version) if version is not None else None)
    except QirError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise QirError(f"cannot read the model ({one_line(e)}); the .h5 file is truncated or "
                       "corrupt", where=str(path)) from None


def _load_zip(path: Path) -> Source:
    if not path.is_file():
        raise QirError("no such file", where=str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            for name in ("config.json", "model.weights.h5"):
                if name not in infos:
                    raise QirError(f"not a Keras .keras archive (no {name}); save the model with "
                                   "model.save('model.keras')", where=str(path))
            data = {}
            for name, limit in KERAS_ZIP_LIMITS.items():
                info = infos.get(name)
                if info is None:
                    continue
                if info.file_size > limit or (info.compress_size and
                                              info.file_size > KERAS_ZIP_MAX_RATIO * max(info.compress_size, 1024)):
                    raise QirError(f"archive member {name} is implausibly large ({info.file_size} bytes "
                                   f"from {info.compress_size}); refusing to decompress it", where=str(path))
                with zf.open(info) as f:
                    blob = f.read(limit + 1)
                if len(blob) > limit:
                    raise QirError(f"archive member {name} is larger than its header says; refusing it",
                                   where=str(path))
                data[name] = blob
    except QirError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as e:
        raise QirError(f"cannot read the .keras archive ({one_line(e)}); the file is truncated or corrupt",
                       where=str(path)) from None
    config = load_json(data["config.json"], f"{path} (config.json)", "JSON")
    version = None
    if "metadata.json" in data:
        try:
            meta = load_json(data["metadata.json"], f"{path} (metadata.json)", "JSON")
        except QirError:  # only the version hint lives there
            meta = None
        version = meta.get("keras_version") if isinstance(meta, dict) else None
    try:
        store = ZipWeights(path, data["model.weights.h5"], _class_keys(config))
    except (OSError, ValueError) as e:
        raise QirError(f"model.weights.h5 in the archive is not a readable HDF5 file ({one_line(e)})",
                       where=str(path)) from None
    return Source(path, config, store, str(version) if version else None)


def _class_keys(config: Any) -> dict[str, str]:
    """Layer name -> class-derived key (``snake_case(class)`` with ``_N`` for repeats), in config
    order; Sequential models do not count their InputLayer."""
    body = config.get("config") if isinstance(config, dict) else None
    raw = body if isinstance(body, list) else (body.get("layers") if isinstance(body, dict) else None)
    if not isinstance(raw, list):
        return {}
    sequential = str(config.get("class_name", "")).split(">")[-1] == "Sequential"
    used: dict[str, int] = {}
    keys = {}
    for layer in raw:
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", "")).split(">")[-1]
        if sequential and cls == "InputLayer":
            continue
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = cfg.get("name", layer.get("name"))
        key = snake_case(cls)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        if isinstance(name, str):
            keys[name] = key
    return keys
