"""Three disjoint sets of images per export, one per job, so that no check grades its own homework.

* **calibration**: the INT8 activation ranges (``--calib``, ``--calib-images``);
* **search**: the INT8 search scores the Dice of its candidates on these (``--search-images``);
* **verification**: the final checks, FP32/FP16 parity with PyTorch and the INT8 Dice drop
  (``--val-images``). Neither calibration nor the search saw these images, so the Dice check can fail.

Where each comes from:

* ``--calib synthetic``: every role has its own synthetic seed (``edgeunet.data.sources.split_seed``).
* One folder (``DIR/images`` + ``DIR/masks``): its files, sorted by stem, are dealt by a seeded
  permutation into three equal parts (calibration, search, verification; the remainder goes to
  verification); each role takes up to its count from its part. The parts depend only on the files
  and the seed, so a count never moves an image into another role.
* A train/val folder (``DIR/train``, ``DIR/val``): calibration from train; val halved (search, verification).
* ``--val DIR`` (or ``synthetic``): calibration from ``--calib``; the ``--val`` images halved between
  search and verification. The same folder given to both is split as one folder.

A role the export does not use (``plan_roles(..., used=...)``: no search without the INT8 search, no
calibration without INT8) gets no part: its images go to the roles that follow it, so an export without
the search verifies on all the held-out images instead of half of them.

For 3-D models (``plan_roles(options, spatial_dims=3)``) the same rules deal volumes: folders of
volumes (``samples.volume_pairs``), and ``synthetic`` (or ``synthetic3d``) means synthetic nuclei volumes.
A volume holds thousands of patches, so when a folder has too few volumes to deal one per role (one or two
for the three roles of one folder, one for the search and verification of ``--val``), the roles are split
by region instead: every volume is cut along its depth into equal slabs, one per role (role k takes slab k),
and export.json records the slab of each (``regions``). Each role still sees only its own voxels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.sources import SYNTHETIC, dataset_folder, folder_pairs, is_synthetic, load_samples, read_pairs
from ..errors import UserError
from .samples import (
    Inputs,
    InputSpec,
    is_synthetic_volumes,
    prepare_samples,
    read_volume_pairs,
    synthetic_volumes,
    volume_pairs,
)

logger = logging.getLogger(__name__)

ROLES = ("calibration", "search", "verification")
SPLIT_OF = {"calibration": "calib", "search": "search", "verification": "val"}  # synthetic seed of each role
COUNT_OF = {"calibration": "calib_images", "search": "search_images", "verification": "val_images"}

Pair = tuple[str, Path, Path]
AXIS = 0  # volumes (D, H, W[, C]) are cut into slabs along their depth


@dataclass(frozen=True)
class Role:
    """Where one role's images come from.

    Attributes:
        source: The folder the images are read from, or ``"synthetic"``.
        count: Images of the role.
        pairs: (stem, image path, mask path) of a folder role, sorted by stem; empty for synthetic.
    """

    source: str
    count: int
    pairs: tuple[Pair, ...] = ()
    region: tuple[int, int] | None = None  # (k, n): the k-th of n depth slabs of each volume (0-based)

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.source)


@dataclass(frozen=True)
class RolePlan:
    """The images of every role, decided before anything is read (``plan_roles``).

    Attributes:
        layout: ``synthetic``, ``one folder``, ``train/val folder`` or ``separate``.
        roles: Role name -> ``Role``.
        seed: Seed of the folder split and of synthetic images.
        files: Files of each folder the roles were dealt from (for the summary line).
    """

    layout: str
    roles: dict[str, Role]
    seed: int
    files: dict[str, int] = field(default_factory=dict)

    def stems(self, role: str) -> list[str]:
        """File stems (names of synthetic images) of ``role``."""
        spec = self.roles[role]
        if spec.synthetic:
            return [f"synthetic-{SPLIT_OF[role]}-{i:04d}" for i in range(spec.count)]
        if spec.region is not None:
            k, n = spec.region
            return [f"{stem} (depth slab {k + 1} of {n})" for stem, _, _ in spec.pairs]
        return [stem for stem, _, _ in spec.pairs]

    def summary(self, used: tuple[str, ...] = ROLES) -> str:
        """One line saying where each role's images come from, e.g.
        ``one folder: 24 files -> 8 calibration, 8 search, 8 verification (seed 0)``."""
        def part(role: str) -> str:
            return f"{self.roles[role].count} {role}" + ("" if role in used else " (unused)")

        c, s, v = (part(r) for r in ROLES)
        if self.layout == "synthetic":
            return f"synthetic images: {c}, {s}, {v}, each role its own seed (seed {self.seed})"
        if self.layout == "one folder":
            folder = self.roles["verification"].source
            return f"one folder: {self.files[folder]} files -> {c}, {s}, {v} (seed {self.seed})"
        if self.layout == "one folder by region":
            folder = self.roles["verification"].source
            return (f"one folder: {self.files[folder]} volume(s), too few for a volume per role, each cut into "
                    f"{len(ROLES)} depth slabs -> {c}, {s}, {v} (slab 1, 2, 3)")
        sources = [self.roles["calibration"].source, self.roles["verification"].source]
        calib, val = (f"{src}:" if is_synthetic(src) else f"{src}: {self.files[src]} files ->" for src in sources)
        prefix = "train/val folder: " if self.layout == "train/val folder" else ""
        cut = self.roles["verification"].region
        how = f"the volume cut into {cut[1]} depth slabs" if cut else f"seed {self.seed}"
        return f"{prefix}{calib} {c}; {val} {s}, {v} ({how})"

    def to_dict(self, used: tuple[str, ...] = ROLES) -> dict:
        """The ``data`` section of export.json: the stems of each role used, with counts, sources and seed."""
        out: dict = {"layout": self.layout, "seed": self.seed, "summary": self.summary(used),
                     "sources": {r: self.roles[r].source for r in ROLES},
                     "counts": {r: self.roles[r].count if r in used else 0 for r in ROLES}}
        out.update({r: self.stems(r) if r in used else [] for r in ROLES})
        regions = {r: {"axis": "depth", "slab": self.roles[r].region[0] + 1, "of": self.roles[r].region[1]}
                   for r in ROLES if r in used and self.roles[r].region is not None}
        if regions:
            out["regions"] = regions
        return out

    def load(self, role: str, spec: InputSpec, size: int) -> Inputs:
        """Reads and prepares the images of ``role``; ``size`` is the side of synthetic images (px)."""
        spec_role = self.roles[role]
        if spec.spatial_dims == 3:
            samples = (synthetic_volumes(spec_role.count, size, self.seed, SPLIT_OF[role], spec.synthetic_classes)
                       if spec_role.synthetic else read_volume_pairs(list(spec_role.pairs)))
            if spec_role.region is not None:
                depth = (spec.multiples or (spec.multiple,) * 3)[AXIS]
                samples = [slab(sample, *spec_role.region, depth) for sample in samples]
        elif spec_role.synthetic:
            samples = load_samples(SYNTHETIC, n=spec_role.count, size=size, seed=self.seed, split=SPLIT_OF[role],
                                   num_classes=spec.synthetic_classes)
        else:
            samples = read_pairs(list(spec_role.pairs))
        return prepare_samples(samples, spec)


def _parts(data: str) -> tuple[Path, Path | None]:
    """(folder, None) for one folder; (train, val) for a train/val folder."""
    folder = Path(data)
    if (folder / "images").is_dir() or (folder / "masks").is_dir():
        return folder, None
    train, val = dataset_folder(folder, "train"), dataset_folder(folder, "val")
    has_train, has_val = (train / "images").is_dir(), (val / "images").is_dir()
    if has_train and has_val and train != val:
        return train, val
    return (train if has_train else val if has_val else folder), None


def _dealt(pairs: list[Pair], seed: int, shares: int) -> list[list[Pair]]:
    """``pairs`` dealt by a seeded permutation into ``shares`` equal parts (the remainder to the last)."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    size = len(pairs) // shares
    cuts = [i * size for i in range(shares)] + [len(pairs)]
    return [[pairs[i] for i in order[cuts[k]:cuts[k + 1]]] for k in range(shares)]


def _role(source: Path | str, part: list[Pair], count: int) -> Role:
    return Role(str(source), min(count, len(part)), tuple(sorted(part[:count])))


def _check_enough(folder: Path, pairs: list[Pair], need: int, roles: str, fix: str) -> None:
    if len(pairs) < need:
        raise UserError(f"{folder} has {len(pairs)} image/mask pair(s): too few for disjoint {roles} images "
                        f"({need} at least): {fix}")


def slab(sample: tuple, k: int, n: int, multiple: int) -> tuple:
    """The k-th of ``n`` equal depth slabs of a (name, volume (D, H, W[, C]), mask (D, H, W)) sample.

    Raises:
        UserError: The volume is too thin for ``n`` slabs of at least ``multiple`` voxels (the model's depth step).
    """
    name, volume, mask = sample
    bounds = np.linspace(0, volume.shape[AXIS], n + 1).astype(int)
    if bounds[1] - bounds[0] < multiple:
        raise UserError(f"{name}: depth {volume.shape[AXIS]} is too thin to cut into {n} slabs of at least "
                        f"{multiple} voxels (one per calibration, search and verification role): add volumes, "
                        f"or give the search and verification volumes with --val DIR")
    cut = slice(bounds[k], bounds[k + 1])
    return f"{name} (depth slab {k + 1} of {n})", volume[cut], None if mask is None else mask[cut]


def _by_region(folder: Path, pairs: list[Pair], roles: tuple[str, ...], counts: dict[str, int]) -> dict[str, Role]:
    """One role per depth slab of every volume in ``pairs`` (too few volumes to deal one per role)."""
    logger.info("%s: %d volume(s) for %d roles: each volume is cut into %d depth slabs, one per role",
                folder, len(pairs), len(roles), len(roles))
    ordered = tuple(sorted(pairs))
    return {r: Role(str(folder), min(counts[r], len(ordered)), ordered[:counts[r]], (k, len(roles)))
            for k, r in enumerate(roles)}


def _listed(roles: tuple[str, ...]) -> str:
    """``calibration, search and verification``: the roles for a message."""
    return " and ".join(filter(None, (", ".join(roles[:-1]), roles[-1])))


def _unused(folder: Path | str, roles: tuple[str, ...], used: tuple[str, ...]) -> dict[str, Role]:
    """An empty role for each of ``roles`` the export does not use."""
    return {r: Role(str(folder), 0) for r in roles if r not in used}


def _one_folder(folder: Path, counts: dict[str, int], seed: int, lister=folder_pairs,
                used: tuple[str, ...] = ROLES) -> RolePlan:
    pairs = lister(folder)
    dealt = tuple(r for r in ROLES if r in used)
    if lister is volume_pairs and 0 < len(pairs) < len(dealt):
        return RolePlan("one folder by region", {**_by_region(folder, pairs, dealt, counts),
                                                 **_unused(folder, ROLES, used)}, seed, {str(folder): len(pairs)})
    _check_enough(folder, pairs, len(dealt), _listed(dealt),
                  "add images, or give the search and verification images with --val DIR")
    roles = {r: _role(folder, part, counts[r]) for r, part in zip(dealt, _dealt(pairs, seed, len(dealt)))}
    return RolePlan("one folder", {**roles, **_unused(folder, ROLES, used)}, seed, {str(folder): len(pairs)})


def _held_out(val: str | Path, counts: dict[str, int], seed: int, files: dict, lister=folder_pairs,
              used: tuple[str, ...] = ROLES) -> dict[str, Role]:
    """The search and verification roles from ``val`` (a folder's val part, or synthetic); all of it verifies when
    the search is not in ``used``."""
    if is_synthetic(val):
        return {r: Role(SYNTHETIC, counts[r]) for r in ROLES[1:]}
    folder = dataset_folder(val, "val")
    pairs = lister(folder)
    files[str(folder)] = len(pairs)
    dealt = tuple(r for r in ROLES[1:] if r in used or r == "verification")
    if lister is volume_pairs and 0 < len(pairs) < len(dealt):
        return {**_by_region(folder, pairs, dealt, counts), **_unused(folder, ROLES[1:], dealt)}
    _check_enough(folder, pairs, len(dealt), _listed(dealt), f"add images to {folder}")
    return {**{r: _role(folder, part, counts[r]) for r, part in zip(dealt, _dealt(pairs, seed, len(dealt)))},
            **_unused(folder, ROLES[1:], dealt)}


def _calibration(calib: str | Path, counts: dict[str, int], seed: int, files: dict, lister=folder_pairs) -> Role:
    if is_synthetic(calib):
        return Role(SYNTHETIC, counts["calibration"])
    folder = Path(calib) if isinstance(calib, Path) else _parts(calib)[0]
    pairs = lister(folder)
    files[str(folder)] = len(pairs)
    return _role(folder, _dealt(pairs, seed, 1)[0], counts["calibration"])


def plan_roles(options, spatial_dims: int = 2, used: tuple[str, ...] = ROLES) -> RolePlan:
    """Decides the images of every role from ``ExportOptions`` (``calib``, ``val``, counts, ``seed``).

    Only folder listings are read here, so bad data fails before the export starts. ``spatial_dims=3``
    (a 3-D model): the roles are volumes; ``synthetic3d`` is read as ``synthetic``. ``used``: the roles the
    export uses (verification always); the folder images of the others go to those that follow them.

    Raises:
        UserError: A folder is missing, empty or unpaired, or too small for disjoint roles.
    """
    counts = {r: getattr(options, COUNT_OF[r]) for r in ROLES}
    calib, val, seed = options.calib, options.val, options.seed
    lister = folder_pairs
    if spatial_dims == 3:
        calib, val = (SYNTHETIC if is_synthetic_volumes(v) else v for v in (calib, val))
        lister = volume_pairs
    if val is not None and not is_synthetic(val) and not is_synthetic(calib):
        if _parts(calib)[0].resolve() == dataset_folder(val, "val").resolve():
            logger.info("--calib and --val name the same folder: it is split as one folder")
            val = None
    if val is None and is_synthetic(calib):
        return RolePlan("synthetic", {r: Role(SYNTHETIC, counts[r]) for r in ROLES}, seed)
    files: dict[str, int] = {}
    if val is None:
        train, held = _parts(calib)
        if held is None:
            return _one_folder(train, counts, seed, lister, used)
        roles = {"calibration": _calibration(train, counts, seed, files, lister),
                 **_held_out(held, counts, seed, files, lister, used)}
        return RolePlan("train/val folder", roles, seed, files)
    roles = {"calibration": _calibration(calib, counts, seed, files, lister),
             **_held_out(val, counts, seed, files, lister, used)}
    return RolePlan("separate", roles, seed, files)


def check_labels(inputs: Inputs, num_classes: int, where: str) -> None:
    """Raises UserError when a mask holds a class id the model does not have (Dice would score other classes).

    Args:
        inputs: Images with their masks (None where an image has none).
        num_classes: K of the model: labels must lie in 0..K-1.
        where: The flag and folder the masks came from, e.g. ``--calib data/cells``.
    """
    for name, mask in zip(inputs.names, inputs.masks, strict=True):
        if mask is None or not mask.size:
            continue
        top = int(mask.max())
        if top >= num_classes:
            raise UserError(f"{where}: the mask of {name} holds label {top}, but the model has {num_classes} classes "
                            f"(labels 0 to {num_classes - 1}): give masks labelled with this model's classes, or "
                            f"export a model trained with {top + 1} classes")


@dataclass
class RoleImages:
    """The images of each role, read once when first asked for and checked against the model's classes.

    Attributes:
        plan: Where each role's images come from.
        spec: How raw images become model inputs (``spec.num_classes``: the model's K).
        size: Side of synthetic images (px).
        flags: Role -> the flag its images were given with (``--calib``, ``--val``), for messages.
    """

    plan: RolePlan
    spec: InputSpec
    size: int
    flags: dict[str, str] = field(default_factory=dict)
    loaded: dict[str, Inputs] = field(default_factory=dict)

    def __getitem__(self, role: str) -> Inputs:
        if role not in self.loaded:
            self.loaded[role] = self.at_side(role, self.size)
            logger.info("%s: %d images", role, len(self.loaded[role].names))
        return self.loaded[role]

    def read(self, roles: tuple[str, ...]) -> None:
        """Reads the images of ``roles`` now (each is checked against the model as it is read)."""
        for role in roles:
            self[role]

    def at_side(self, role: str, side: int) -> Inputs:
        """The images of ``role`` read again with synthetic ones made at ``side`` (folder images are as read)."""
        inputs = self.plan.load(role, self.spec, side)
        if self.spec.num_classes:
            source = self.plan.roles[role].source
            check_labels(inputs, self.spec.num_classes, f"{self.flags.get(role, '--calib')} {source}")
        return inputs


def role_flags(options) -> dict[str, str]:
    """Role -> the flag its images come from: calibration from ``--calib``; the others from ``--val`` when given."""
    held_out = "--val" if options.val is not None else "--calib"
    return {"calibration": "--calib", "search": held_out, "verification": held_out}
