"""Dataset manifests: which files make a benchmark dataset, and how to check them.

A manifest is a JSON file (format described in ``data_manifests/README.md``)
listing every item of a dataset with its image path *relative to a dataset
root* that the user passes at run time, its mask path (or ``null``), its label
(``"spliced"`` or ``"pristine"``), the SHA-256 and byte size of each file and
the image size in pixels, plus the dataset's name, origin, terms and mask
convention. Manifests never contain absolute paths, and no path may leave the
root (no ``..`` component), so that a manifest is safe to share and to point
at anyone's copy of the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .._version import __version__
from ..io import MASK_CONVENTIONS

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LABELS",
    "IMAGE_SUFFIXES",
    "ManifestItem",
    "Manifest",
    "build_manifest",
    "load_manifest",
    "save_manifest",
    "check_manifest",
    "unreadable_items",
    "resolve",
    "check_relpath",
    "sha256_file",
]

FORMAT = "noisestat.manifest"
FORMAT_VERSION = 1
LABELS = ("spliced", "pristine")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

_MASK_TAILS = ("_gt", "_mask", "-mask", "_GT", ".mask")


def sha256_file(path: str | os.PathLike) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of a file."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def check_relpath(rel: Any, *, what: str = "path") -> str:
    """Validate a manifest path: relative, POSIX separators, no ``..``; return it normalised.

    Raises
    ------
    ValueError
        Absolute paths, drive letters, backslashes, empty paths and any ``..``
        component (a path may not escape the dataset root).
    """
    if not isinstance(rel, str) or not rel:
        raise ValueError(f"{what}={rel!r}: expected a non-empty relative path string")
    if "\\" in rel or PureWindowsPath(rel).drive:
        raise ValueError(f"{what}={rel!r}: use '/' separators and no drive letter in manifests")
    p = PurePosixPath(rel)
    if p.is_absolute():
        raise ValueError(f"{what}={rel!r}: absolute paths are not allowed; give it relative to the dataset root")
    if ".." in p.parts:
        raise ValueError(f"{what}={rel!r}: '..' is not allowed; a manifest path may not escape the dataset root")
    norm = str(p)
    if norm in (".", ""):
        raise ValueError(f"{what}={rel!r}: names no file")
    return norm


def resolve(root: str | os.PathLike, rel: str) -> Path:
    """``root / rel`` after :func:`check_relpath`, refused when it leaves ``root`` once symlinks are followed.

    Raises
    ------
    ValueError
        ``rel`` is not a valid manifest path, or it (or a folder on the way)
        is a symlink whose target lies outside ``root``.
    """
    path = Path(root) / check_relpath(rel)
    real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise ValueError(f"{rel}: resolves to {real} outside the dataset root {real_root} (a symlink leaves the "
                         f"root); replace the link by the file or move its target inside the root")
    return path


@dataclass(frozen=True)
class ManifestItem:
    """One dataset item.

    Attributes
    ----------
    id : str
        Unique name of the item: the image path relative to the root without
        its suffix (e.g. ``"images/Sp_D_CND_A_pla0005_pla0023_0281"``).
    image : str
        Image path relative to the dataset root (POSIX separators).
    label : {"spliced", "pristine"}
    mask : str or None
        Mask path relative to the root; None for pristine items (and for
        spliced items without pixel ground truth).
    image_sha256, mask_sha256 : str or None
        SHA-256 of the file bytes.
    image_bytes, mask_bytes : int or None
        File sizes.
    shape : (int, int) or None
        ``(height, width)`` of the stored image pixels.
    extra : dict
        Optional fields, e.g. ``protocol`` and ``level`` for robustness
        datasets (see :mod:`noisestat.bench.protocols`).
    """

    id: str
    image: str
    label: str
    mask: str | None = None
    image_sha256: str | None = None
    image_bytes: int | None = None
    mask_sha256: str | None = None
    mask_bytes: int | None = None
    shape: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """File name of the image (what tables show)."""
        return PurePosixPath(self.image).name

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "label": self.label, "image": self.image,
                             "image_sha256": self.image_sha256, "image_bytes": self.image_bytes,
                             "shape": list(self.shape) if self.shape else None,
                             "mask": self.mask, "mask_sha256": self.mask_sha256, "mask_bytes": self.mask_bytes}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, index: int = 0) -> ManifestItem:
        if not isinstance(d, dict):
            raise ValueError(f"items[{index}]: expected an object, got {type(d).__name__}")
        for key in ("id", "image", "label"):
            if key not in d:
                raise ValueError(f"items[{index}]: missing field {key!r}")
        label = d["label"]
        if label not in LABELS:
            raise ValueError(f"items[{index}] ({d['id']}): label={label!r}; use one of {LABELS}")
        image = check_relpath(d["image"], what=f"items[{index}].image")
        mask = d.get("mask")
        if mask is not None:
            mask = check_relpath(mask, what=f"items[{index}].mask")
        if label == "pristine" and mask is not None:
            raise ValueError(f"items[{index}] ({d['id']}): a pristine item has no mask; set mask to null")
        shape = d.get("shape")
        if shape is not None:
            if not (isinstance(shape, (list, tuple)) and len(shape) == 2):
                raise ValueError(f"items[{index}] ({d['id']}): shape={shape!r}; expected [height, width]")
            shape = (int(shape[0]), int(shape[1]))
        known = {"id", "image", "label", "mask", "image_sha256", "image_bytes", "mask_sha256", "mask_bytes",
                 "shape"}
        extra = {k: v for k, v in d.items() if k not in known}
        return cls(id=str(d["id"]), image=image, label=label, mask=mask,
                   image_sha256=d.get("image_sha256"), image_bytes=d.get("image_bytes"),
                   mask_sha256=d.get("mask_sha256"), mask_bytes=d.get("mask_bytes"), shape=shape, extra=extra)


@dataclass(frozen=True)
class Manifest:
    """A dataset listing (see the module docstring)."""

    dataset: str
    items: tuple[ManifestItem, ...]
    mask_convention: str = "nonzero"
    description: str = ""
    origin: str = ""
    terms: str = ""
    citation: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mask_convention not in MASK_CONVENTIONS:
            raise ValueError(
                f"mask_convention={self.mask_convention!r} is not supported; choose one of {MASK_CONVENTIONS}"
            )
        seen: set[str] = set()
        for it in self.items:
            if it.id in seen:
                raise ValueError(f"item id {it.id!r} occurs twice; ids must be unique")
            seen.add(it.id)

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> dict[str, int]:
        return {lab: sum(it.label == lab for it in self.items) for lab in LABELS}

    def select(self, *, every: int = 1, offset: int = 0, limit: int | None = None) -> tuple[ManifestItem, ...]:
        """A deterministic subset: per label, items ``offset, offset + every, ...`` sorted by file name,
        then at most ``limit`` items stratified by label.

        ``every=4`` (``offset=0``) on CASIA v1 picks the 115 spliced images the peers' tables use;
        ``offset=1..every-1`` gives the disjoint other subsets. ``limit`` is shared among the labels
        in proportion to their sizes (largest remainders; each label present keeps at least one item
        when ``limit`` allows), and within a label the items are taken evenly spaced over the sorted
        list, so ``limit=40`` on CASIA has pristine images and more than one kind of splice.
        """
        if every < 1:
            raise ValueError(f"every={every}: must be >= 1")
        if not 0 <= offset < every:
            raise ValueError(f"offset={offset}: must be in 0..every-1 = 0..{every - 1}")
        groups = []
        for lab in LABELS:
            group = sorted((it for it in self.items if it.label == lab), key=lambda it: (it.name, it.id))
            groups.append(group[offset::every])
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit={limit}: must be >= 0")
            shares = _shares([len(g) for g in groups], limit)
            groups = [[g[i] for i in _spread(len(g), n)] for g, n in zip(groups, shares)]
        return tuple(it for g in groups for it in g)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": self.dataset,
            "description": self.description,
            "origin": self.origin,
            "terms": self.terms,
            "citation": self.citation,
            "mask_convention": self.mask_convention,
        }
        d.update(self.meta)
        d["counts"] = self.counts()
        d["items"] = [it.to_dict() for it in self.items]
        return d

    def digest(self) -> str:
        """SHA-256 over the items' ids and file hashes (identifies the data, not the JSON layout)."""
        h = hashlib.sha256()
        for it in sorted(self.items, key=lambda it: it.id):
            h.update(f"{it.id}\0{it.image_sha256}\0{it.mask_sha256}\n".encode())
        return h.hexdigest()


def _shares(sizes: list[int], limit: int) -> list[int]:
    """Split ``limit`` over groups in proportion to ``sizes`` (largest remainders; one each when possible)."""
    total = sum(sizes)
    if limit >= total:
        return list(sizes)
    present = [i for i, n in enumerate(sizes) if n > 0]
    out = [0] * len(sizes)
    if limit < len(present):  # too few for one per label: the largest labels get one
        for i in sorted(present, key=lambda i: (-sizes[i], i))[:limit]:
            out[i] = 1
        return out
    for i in present:
        out[i] = max(1, limit * sizes[i] // total)
    while sum(out) > limit:  # the minimum of one per label can overshoot
        i = max((i for i in present if out[i] > 1), key=lambda i: (out[i] - limit * sizes[i] / total, -i))
        out[i] -= 1
    order = sorted(present, key=lambda i: (-(limit * sizes[i] / total - out[i]), i))
    k = 0
    while sum(out) < limit:
        i = order[k % len(order)]
        if out[i] < sizes[i]:
            out[i] += 1
        k += 1
    return out


def _spread(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0..n-1``, evenly spaced, starting at 0."""
    if k >= n:
        return list(range(n))
    return [i * n // k for i in range(k)]


def _index_masks(folder: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    dup: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            continue
        keys = {p.stem}
        for tail in _MASK_TAILS:
            if p.stem.endswith(tail):
                keys.add(p.stem[: -len(tail)])
        for k in keys:
            if k in index and index[k] != p:
                dup.setdefault(k, [index[k]]).append(p)
            index[k] = p
    for k, paths in dup.items():
        # an exact stem match wins over a stripped "_gt" one
        exact = [p for p in paths if p.stem == k]
        if len(exact) == 1:
            index[k] = exact[0]
        else:
            raise ValueError(f"masks folder {folder}: several masks for {k!r}: {', '.join(p.name for p in paths)}")
    return index


def _image_files(folder: Path, name: str) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(f"{name}={str(folder)!r}: not a directory; pass {name}= a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{name}={str(folder)!r}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _image_shape(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file after decoding it once (so truncated files are caught)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                im.load()
    except Exception as exc:  # unknown format, truncated, decompression bomb, ...
        text = str(exc).strip().splitlines()
        raise ValueError(f"{path.name}: not a readable image ({text[0] if text else type(exc).__name__})") from None
    return int(h), int(w)


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ValueError(f"{path} is not inside the dataset root {root}; pass root= a folder containing it") from None
    return check_relpath(rel.as_posix())


def build_manifest(
    images: str | os.PathLike,
    *,
    masks: str | os.PathLike | None = None,
    pristine: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    dataset: str | None = None,
    mask_convention: str = "nonzero",
    allow_missing_masks: bool = False,
    description: str = "",
    origin: str = "",
    terms: str = "",
    citation: str = "",
    hashes: bool = True,
) -> Manifest:
    """Build a manifest from folders of spliced images, their masks and pristine images.

    Parameters
    ----------
    images : path
        Folder of spliced images (files with an image suffix; sub-folders are ignored).
    masks : path, optional
        Folder of masks; a mask is matched to an image by file stem, optionally
        followed by ``_gt`` or ``_mask`` (``x.jpg`` <- ``x.png``, ``x_gt.png``).
    pristine : path, optional
        Folder of authentic images (label ``"pristine"``, no mask).
    root : path, optional
        Dataset root that all paths are made relative to. Default: the common
        parent of the folders' parents (``casia1/`` for ``casia1/images`` and
        ``casia1/masks``).
    dataset : str, optional
        Dataset name; default the root folder's name.
    mask_convention : str, default "nonzero"
        How masks encode spliced pixels (see :func:`noisestat.io.load_mask`).
    allow_missing_masks : bool, default False
        Keep spliced images without a mask (image-level evaluation only)
        instead of raising.
    description, origin, terms, citation : str
        Free text stored in the manifest.
    hashes : bool, default True
        Record SHA-256, byte size and pixel size of every file.

    Returns
    -------
    Manifest
        Files that cannot be decoded (unknown format, truncated, ...) are kept as
        items with ``shape`` None and an ``"unreadable"`` field giving the reason
        (:func:`unreadable_items` lists them): ``bench`` turns them into error rows,
        so the item counts stay those of the folders and nothing is dropped silently.

    Raises
    ------
    ValueError
        Missing folders, spliced images without mask (unless allowed),
        ambiguous masks, files outside ``root``.

    Examples
    --------
    ::

        m = build_manifest("casia1/images", masks="casia1/masks", pristine="casia1/pristine",
                           dataset="casia1", terms="research use only")
        save_manifest(m, "data_manifests/casia1.json")
        assert check_manifest(m, "casia1") == []
    """
    img_dir = Path(images)
    dirs = [img_dir] + [Path(d) for d in (masks, pristine) if d is not None]
    root_p = Path(root) if root is not None else Path(os.path.commonpath([str(d.resolve().parent) for d in dirs]))
    if not root_p.is_dir():
        raise ValueError(f"root={str(root_p)!r}: not a directory; pass root= the dataset folder")
    spliced = _image_files(img_dir, "images")
    index = _index_masks(Path(masks)) if masks is not None else {}
    if masks is not None and not Path(masks).is_dir():
        raise ValueError(f"masks={str(masks)!r}: not a directory; pass masks= the folder of masks, or masks=None")
    missing = [p.name for p in spliced if p.stem not in index]
    if masks is not None and missing and not allow_missing_masks:
        raise ValueError(
            f"{len(missing)} spliced image(s) have no mask in {masks} (e.g. {', '.join(missing[:5])}); "
            f"add the masks or pass allow_missing_masks=True"
        )
    items: list[ManifestItem] = []

    def make(path: Path, label: str, mask: Path | None) -> ManifestItem:
        rel = _rel(path, root_p)
        it = ManifestItem(id=str(PurePosixPath(rel).with_suffix("")), image=rel, label=label,
                          mask=_rel(mask, root_p) if mask is not None else None)
        if hashes:
            ih, ib = sha256_file(path)
            mh, mb = sha256_file(mask) if mask is not None else (None, None)
            try:
                shape: tuple[int, int] | None = _image_shape(path)
                extra: dict[str, Any] = {}
            except ValueError as exc:  # kept as an item: bench turns it into error rows, the counts stay whole
                shape, extra = None, {"unreadable": str(exc)}
            it = replace(it, image_sha256=ih, image_bytes=ib, mask_sha256=mh, mask_bytes=mb, shape=shape,
                         extra=extra)
        return it

    for p in spliced:
        items.append(make(p, "spliced", index.get(p.stem)))
    if pristine is not None:
        for p in _image_files(Path(pristine), "pristine"):
            items.append(make(p, "pristine", None))
    return Manifest(
        dataset=dataset or root_p.resolve().name,
        items=tuple(items),
        mask_convention=mask_convention,
        description=description,
        origin=origin,
        terms=terms,
        citation=citation,
        meta={"created_with": f"noisestat {__version__}"},
    )


def unreadable_items(manifest: Manifest) -> list[ManifestItem]:
    """Items that :func:`build_manifest` could not decode (their ``extra`` has an ``"unreadable"`` reason)."""
    return [it for it in manifest.items if it.extra.get("unreadable")]


def save_manifest(manifest: Manifest, path: str | os.PathLike) -> None:
    """Write a manifest as JSON: header fields indented, one item per line (diff-friendly)."""
    d = manifest.to_dict()
    items = d.pop("items")
    head = json.dumps(d, indent=2, ensure_ascii=False)
    lines = [head[:-2] + ',\n  "items": [']
    body = ",\n".join("    " + json.dumps(it, ensure_ascii=False) for it in items)
    text = lines[0] + ("\n" + body + "\n  ]\n}\n" if items else "]\n}\n")
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest file.

    Raises
    ------
    ValueError
        Not JSON, wrong format tag or version, invalid items or paths that
        would escape the dataset root.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"manifest {p}: file not found")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"manifest {p}: not valid JSON ({exc})") from None
    return manifest_from_dict(d, source=str(p))


def manifest_from_dict(d: Any, *, source: str = "manifest") -> Manifest:
    """Validate a parsed manifest (see :func:`load_manifest`)."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"{source}: not a noisestat manifest (expected \"format\": \"{FORMAT}\")")
    ver = d.get("format_version")
    if ver != FORMAT_VERSION:
        raise ValueError(f"{source}: format_version={ver!r}; this noisestat reads version {FORMAT_VERSION}")
    items_raw = d.get("items")
    if not isinstance(items_raw, list):
        raise ValueError(f"{source}: \"items\" must be a list")
    items = tuple(ManifestItem.from_dict(it, index=i) for i, it in enumerate(items_raw))
    known = {"format", "format_version", "dataset", "description", "origin", "terms", "citation",
             "mask_convention", "counts", "items"}
    try:
        return Manifest(
            dataset=str(d.get("dataset") or Path(source).stem),
            items=items,
            mask_convention=d.get("mask_convention", "nonzero"),
            description=d.get("description", ""),
            origin=d.get("origin", ""),
            terms=d.get("terms", ""),
            citation=d.get("citation", ""),
            meta={k: v for k, v in d.items() if k not in known},
        )
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def check_manifest(
    manifest: Manifest,
    root: str | os.PathLike,
    *,
    hashes: bool = True,
    items: Iterable[ManifestItem] | None = None,
) -> list[str]:
    """Verify that the files of a manifest exist under ``root`` and match it.

    Parameters
    ----------
    manifest : Manifest
    root : path
        The user's copy of the dataset.
    hashes : bool, default True
        Compare SHA-256 and byte sizes (otherwise existence only).
    items : iterable of ManifestItem, optional
        Check only these (default: all).

    Returns
    -------
    list of str
        One line per problem (``"<id>: <what>"``); empty when everything matches. Problems
        are: a missing file, a path that leaves ``root`` once symlinks are followed, a size
        or SHA-256 that differs, and (with ``hashes``) a file without a SHA-256 in the manifest.
    """
    root_p = Path(root)
    if not root_p.is_dir():
        return [f"root {root_p}: not a directory"]
    problems: list[str] = []
    for it in manifest.items if items is None else items:
        for kind, rel, sha, size in (("image", it.image, it.image_sha256, it.image_bytes),
                                     ("mask", it.mask, it.mask_sha256, it.mask_bytes)):
            if rel is None:
                continue
            try:
                path = resolve(root_p, rel)
            except ValueError as exc:
                problems.append(f"{it.id}: {kind} {exc}")
                continue
            if not path.is_file():
                problems.append(f"{it.id}: {kind} {rel} not found under {root_p}")
                continue
            if hashes and sha is None:
                problems.append(f"{it.id}: {kind} {rel} has no sha256 in the manifest, so it cannot be verified "
                                f"(rebuild the manifest with hashes, or check with --no-hash)")
            if hashes and (sha is not None or size is not None):
                got_sha, got_size = sha256_file(path)
                if size is not None and got_size != size:
                    problems.append(f"{it.id}: {kind} {rel} has {got_size} bytes, manifest says {size}")
                elif sha is not None and got_sha != sha:
                    problems.append(f"{it.id}: {kind} {rel} sha256 {got_sha[:12]}... differs from the manifest's "
                                    f"{sha[:12]}...")
    return problems
