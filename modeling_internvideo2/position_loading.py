"""Load a checkpoint's position tables into a config with another frame count or image size.

Registered with transformers' checkpoint conversion mapping, so `from_pretrained(path, num_frames=16)` (or
`image_size=...`) interpolates `position_embeddings` / `image_position_embeddings` with the official rule instead of
failing on the shape mismatch. Change the frame count or the image size in one load (a table alone cannot tell which
of the two a row count came from). Saving writes the tables unchanged.
"""

from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import ConversionOps, WeightConverter

from .position_embeddings import interpolate_position_embeddings


class ResizePositionTable(ConversionOps):
    """Interpolates a (1, 1 + T*g*g, D) table to the shape of the parameter it is loaded into."""

    def convert(self, input_dict, source_patterns, target_patterns, full_layer_name=None, model=None, **kwargs):
        (tensors,) = input_dict.values()
        table = tensors[0] if isinstance(tensors, list) else tensors
        target = model.get_parameter(full_layer_name)
        if target.shape != table.shape:
            table = _resize(table, target.shape, model.get_submodule(full_layer_name.rsplit(".", 1)[0]).config,
                            is_image_table=full_layer_name.endswith("image_position_embeddings"))
        return {target_patterns[0]: table}

    @property
    def reverse_op(self) -> ConversionOps:
        return _Unchanged()


class _Unchanged(ConversionOps):
    def convert(self, input_dict, source_patterns, target_patterns, **kwargs):
        (tensors,) = input_dict.values()
        return {target_patterns[0]: tensors[0] if isinstance(tensors, list) else tensors}


def _resize(table, target_shape, config, is_image_table: bool):
    if table.ndim != 3 or table.shape[0] != 1 or table.shape[2] != target_shape[2]:
        raise ValueError(f"position table of shape {tuple(table.shape)} cannot be resized to {tuple(target_shape)}")
    target_frames = 1 if is_image_table else config.num_frames // config.tubelet_size
    source_rows = table.shape[1] - 1
    # The saved table's grid: the target grid when only the frame count changed, else the largest square that fits.
    if source_rows % config.num_patches_per_frame == 0 and not is_image_table:
        source_frames = source_rows // config.num_patches_per_frame
    else:
        source_frames = target_frames
    return interpolate_position_embeddings(table, source_frames, target_frames, config.grid_size)


def register_position_table_loading(model_type: str) -> None:
    """Interpolate position tables on load for every model whose (sub-)model has this `model_type`."""
    register_checkpoint_conversion_mapping(
        model_type,
        [
            WeightConverter(
                "embeddings.position_embeddings", "embeddings.position_embeddings", [ResizePositionTable()]
            ),
            WeightConverter(
                "embeddings.image_position_embeddings",
                "embeddings.image_position_embeddings",
                [ResizePositionTable()],
            ),
        ],
        overwrite=True,
    )
