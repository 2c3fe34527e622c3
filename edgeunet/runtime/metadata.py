"""What an edgeunet ONNX file says about itself, in ``metadata_props``; read without torch or onnx.

Keys (all values are strings; JSON where noted):
    edgeunet_format: "1".            edgeunet_version: version that exported it.
    model_config: JSON of ModelConfig.to_dict().
    in_channels, num_classes, size_multiple: integers as strings (size_multiple: the lcm of
        size_multiples, for readers that predate 3-D models).
    spatial_dims: "2" (images, absent in older files) or "3" (volumes).
    size_multiples: JSON list, the multiple per spatial axis ((H, W) or (D, H, W)).
    class_names: JSON list.          preprocessing: JSON spec (see ``runtime.preprocess``).
    precision: "fp32" | "fp16" | "int8".
    input_name / output_name: graph input (B, C, *spatial) float32 / output (B, K, *spatial) float32 logits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ..errors import UserError

FORMAT = "1"
INPUT_NAME = "images"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ModelMetadata:
    """The facts a runtime needs, parsed from ``metadata_props``."""

    in_channels: int
    num_classes: int
    size_multiple: int
    preprocessing: dict
    class_names: list[str]
    precision: str = "fp32"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    edgeunet_version: str = ""
    model_config: dict = field(default_factory=dict)
    spatial_dims: int = 2
    size_multiples: tuple[int, ...] = ()

    def __post_init__(self):
        if self.spatial_dims not in (2, 3):
            raise UserError(f"spatial_dims {self.spatial_dims} is not 2 or 3: "
                            "re-export the model with `edgeunet export`")
        multiples = tuple(int(m) for m in self.size_multiples) or (int(self.size_multiple),) * self.spatial_dims
        if len(multiples) != self.spatial_dims or min(multiples) < 1:
            raise UserError(f"size_multiples {list(multiples)} do not fit a {self.spatial_dims}-D model: "
                            "re-export it with `edgeunet export`")
        object.__setattr__(self, "size_multiples", multiples)

    @property
    def is_3d(self) -> bool:
        """Whether the model segments (D, H, W) volumes."""
        return self.spatial_dims == 3

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` key/value strings to write into an ONNX file."""
        return {
            "edgeunet_format": FORMAT,
            "edgeunet_version": self.edgeunet_version,
            "model_config": json.dumps(self.model_config, sort_keys=True),
            "in_channels": str(self.in_channels),
            "num_classes": str(self.num_classes),
            "size_multiple": str(math.lcm(*self.size_multiples)),
            "spatial_dims": str(self.spatial_dims),
            "size_multiples": json.dumps(list(self.size_multiples)),
            "class_names": json.dumps(list(self.class_names)),
            "preprocessing": json.dumps(self.preprocessing, sort_keys=True),
            "precision": self.precision,
            "input_name": self.input_name,
            "output_name": self.output_name,
        }

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "the model") -> ModelMetadata:
        """Parses ``metadata_props``; raises ValueError when the file was not exported by edgeunet."""
        if props.get("edgeunet_format") != FORMAT:
            raise UserError(f"{source} is not an edgeunet model (no edgeunet metadata): "
                            "export it with `edgeunet export`")
        try:
            return cls(
                in_channels=int(props["in_channels"]),
                num_classes=int(props["num_classes"]),
                size_multiple=int(props["size_multiple"]),
                preprocessing=json.loads(props["preprocessing"]),
                class_names=list(json.loads(props["class_names"])),
                precision=props.get("precision", "fp32"),
                input_name=props.get("input_name", INPUT_NAME),
                output_name=props.get("output_name", OUTPUT_NAME),
                edgeunet_version=props.get("edgeunet_version", ""),
                model_config=json.loads(props.get("model_config", "{}")),
                spatial_dims=int(props.get("spatial_dims", "2")),
                size_multiples=tuple(json.loads(props.get("size_multiples", "[]"))),
            )
        except UserError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            raise UserError(f"{source} has broken edgeunet metadata ({exc}): "
                            "re-export it with `edgeunet export`") from None
