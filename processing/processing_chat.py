"""`InternVideo2ChatProcessor`: prompt, media and Q-Former instruction for `InternVideo2ChatForConditionalGeneration`."""

import re

import PIL.Image
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.video_processing_utils import VideoProcessorMixin

from internvideo2.hd_tiling import hd_tiles

VIDEO_PLACEHOLDER = "[<VID_PLH>]"
IMAGE_PLACEHOLDER = "[<IMG_PLH>]"
_PLACEHOLDERS = re.compile(re.escape(VIDEO_PLACEHOLDER) + "|" + re.escape(IMAGE_PLACEHOLDER))

# The official Mistral prompt (spec §5.2): optional system text, one `[INST]` turn holding the media (and an optional
# message about it, right-stripped), then ` [INST] question [/INST]` turns with `answer</s>` after each reply.
# A text part flagged `"media_message": true` joins the media turn; other text parts form the question turn.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string"
    " else message['content'] -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- for part in parts if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{%- set media = parts | selectattr('type', 'in', ['video', 'image']) | list -%}"
    "{%- if media -%}{{ '[INST] ' }}"
    "{%- for part in media -%}"
    "{{ '<Video>[<VID_PLH>]</Video>' if part['type'] == 'video' else '<Image>[<IMG_PLH>]</Image>' }}"
    "{%- endfor -%}"
    "{%- for part in parts if part['type'] == 'text' and part.get('media_message') -%}{{ part['text'].rstrip() }}"
    "{%- endfor -%}{{ '[/INST]' }}"
    "{%- endif -%}"
    "{%- set questions = parts | selectattr('type', 'equalto', 'text') | rejectattr('media_message') | list -%}"
    "{%- if questions -%}{{ ' [INST] ' }}{%- for part in questions -%}{{ part['text'] }}{%- endfor -%}"
    "{{ ' [/INST]' }}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- for part in parts if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}{{ '</s>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


class InternVideo2ChatProcessor(ProcessorMixin):
    r"""
    Wraps an [`InternVideo2VideoProcessor`] (the chat preset: 8 frames, middle sampling, short side 224 + center crop),
    the LLM tokenizer and the Q-Former (BERT) tokenizer.

    `apply_chat_template` writes the official Mistral prompt with `[<VID_PLH>]` / `[<IMG_PLH>]` where media go.
    `__call__` then tokenizes the text between placeholders separately, each piece with the tokenizer's special
    tokens (so a `<s>` starts every piece, as the official `build_input_ids` does), puts `num_media_tokens` copies of
    `media_token` in place of each placeholder, and left-pads the batch. `qformer_text` (one instruction per prompt)
    is tokenized for the Q-Former, left padded and truncated from the left, one row per media item.

    HD (`hd_num`, spec §5.3): each video is sampled at its own size, cut by `hd_tiles` into at most `hd_num` sub-videos
    of `hd_local_size`² (row-major; `hd_padding` picks the padding grid rule) plus, with `hd_add_global`, the whole
    clip as one more sub-video, last; all are then rescaled and normalised like the frames of a plain call. The
    video's `<Video>[<VID_PLH>]</Video>` block is repeated once per sub-video and its Q-Former instruction once per
    sub-video, so `pixel_values_videos` holds every sub-video of every video, in order.

    The LLM tokenizer must know `media_token` (add it with `tokenizer.add_special_tokens({"additional_special_tokens":
    ["<VID_PLH>"]})`) and have a pad token; the model config's `media_token_id` must be its id. Images use
    `media_token` too, unless `image_media_token` (e.g. `<IMG_PLH>`, also added to the tokenizer, its id the model
    config's `image_token_id`) is given: then images and videos mix in one call, in any order.
    """

    def __init__(
        self,
        video_processor=None,
        tokenizer=None,
        qformer_tokenizer=None,
        chat_template: str | None = None,
        num_media_tokens: int = 96,
        media_token: str = "<VID_PLH>",
        image_media_token: str | None = None,
        qformer_max_length: int = 512,
        hd_num: int | None = None,
        hd_local_size: int = 224,
        hd_padding: bool = False,
        hd_add_global: bool = True,
        **kwargs,
    ):
        if hd_num is not None and (isinstance(hd_num, bool) or not isinstance(hd_num, int) or hd_num < 1):
            raise ValueError(f"hd_num must be a positive int or None, got {hd_num!r}")
        if isinstance(hd_local_size, bool) or not isinstance(hd_local_size, int) or hd_local_size < 1:
            raise ValueError(f"hd_local_size must be a positive int, got {hd_local_size!r}")
        self.hd_num = hd_num
        self.hd_local_size = hd_local_size
        self.hd_padding = hd_padding
        self.hd_add_global = hd_add_global
        if tokenizer is not None:
            for name, token in (("media_token_id", media_token), ("image_token_id", image_media_token)):
                token_id = None if token is None else tokenizer.convert_tokens_to_ids(token)
                if token is not None and (token_id is None or token_id == tokenizer.unk_token_id):
                    raise ValueError(
                        f"tokenizer has no {token!r} token: add it with add_special_tokens and set the model's "
                        f"{name} to its id"
                    )
            if tokenizer.pad_token_id is None:
                raise ValueError("tokenizer has no pad token (set tokenizer.pad_token, e.g. to its unk token)")
        self.num_media_tokens = num_media_tokens
        self.media_token = media_token
        self.image_media_token = image_media_token
        self.qformer_max_length = qformer_max_length
        super().__init__(
            video_processor, tokenizer, qformer_tokenizer, chat_template=chat_template or CHAT_TEMPLATE, **kwargs
        )

    def check_argument_for_proper_class(self, argument_name, argument):
        # Without torchvision, transformers hides its video-processor base class from the checks; ours needs none.
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"video_processor must be a VideoProcessorMixin, got {type(argument).__name__}")
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    @property
    def media_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.media_token)

    @property
    def image_media_token_id(self) -> int:
        """Id of the image placeholder rows: `image_media_token`'s, else `media_token`'s."""
        return self.tokenizer.convert_tokens_to_ids(self.image_media_token or self.media_token)

    def __call__(
        self,
        text: str | list[str] | None = None,
        videos=None,
        images=None,
        qformer_text: str | list[str] | None = None,
        return_tensors: str | None = "pt",
        videos_kwargs: dict | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Prompts with placeholders (from `apply_chat_template`) plus the media they mention, in order: videos
        (paths, arrays, frame lists; see `InternVideo2VideoProcessor`) and/or images (PIL or (H, W, C) arrays), one
        per placeholder of the matching kind (both kinds in one call need `image_media_token`). Returns `input_ids`,
        `attention_mask`, `pixel_values_videos` and / or `pixel_values`, and `qformer_input_ids` /
        `qformer_attention_mask` (one row per media item, in placeholder order) when `qformer_text` is given."""
        if text is None:
            raise ValueError("text is required: a prompt with [<VID_PLH>] / [<IMG_PLH>] where the media go")
        texts = [text] if isinstance(text, str) else list(text)
        data = {}
        num_videos = num_images = 0
        tiles_per_video = None
        if videos is not None and self.hd_num is not None:
            data["pixel_values_videos"], tiles_per_video = self._hd_videos(videos, videos_kwargs or {})
            num_videos = len(tiles_per_video)
        elif videos is not None:
            data.update(self.video_processor(videos, return_tensors="pt", **(videos_kwargs or {})))
            num_videos = len(data["pixel_values_videos"])
        if images is not None:
            images = images if isinstance(images, (list, tuple)) else [images]
            clips = [[image] if isinstance(image, PIL.Image.Image) else image[None] for image in images]
            processed = self.video_processor(clips, do_sample_frames=False, return_tensors="pt", **(videos_kwargs or {}))
            data["pixel_values"] = processed["pixel_values_videos"][:, 0]
            num_images = len(data["pixel_values"])
        counted_videos = sum(t.count(VIDEO_PLACEHOLDER) for t in texts)
        counted_images = sum(t.count(IMAGE_PLACEHOLDER) for t in texts)
        if (counted_videos, counted_images) != (num_videos, num_images):
            raise ValueError(
                f"text has {counted_videos} {VIDEO_PLACEHOLDER} and {counted_images} {IMAGE_PLACEHOLDER} placeholders "
                f"but {num_videos} videos and {num_images} images were given"
            )
        if num_videos and num_images and self.image_media_token is None:
            raise ValueError(
                "videos and images in one call need image_media_token (a separate image placeholder token, e.g. "
                "'<IMG_PLH>' added to the tokenizer, whose id is the model config's image_token_id)"
            )
        if tiles_per_video is not None:
            texts = self._repeat_video_blocks(texts, tiles_per_video)

        rows = [self._prompt_ids(t) for t in texts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        data["input_ids"] = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        data["attention_mask"] = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])

        if qformer_text is not None:
            instructions = [qformer_text] if isinstance(qformer_text, str) else list(qformer_text)
            if len(instructions) != len(texts):
                raise ValueError(f"qformer_text has {len(instructions)} entries for {len(texts)} prompts")
            per_media = [
                instruction
                for instruction, prompt in zip(instructions, texts)
                for _ in range(len(_PLACEHOLDERS.findall(prompt)))
            ]
            encoded = self.qformer_tokenizer(
                per_media,
                padding="longest",
                truncation=True,
                max_length=self.qformer_max_length,
                padding_side="left",
                truncation_side="left",
                return_tensors="pt",
            )
            data["qformer_input_ids"] = encoded["input_ids"]
            data["qformer_attention_mask"] = encoded["attention_mask"]
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _hd_videos(self, videos, videos_kwargs: dict) -> tuple[torch.Tensor, list[int]]:
        """Sub-videos of every video (frames sampled at full size, tiled in [0, 255], then normalised) and their
        number per video."""
        raw_options = dict(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=False)
        clips = self.video_processor(videos, return_tensors="pt", **{**videos_kwargs, **raw_options})
        processor = self.video_processor
        mean = torch.tensor(videos_kwargs.get("image_mean", processor.image_mean)).view(1, 1, -1, 1, 1)
        std = torch.tensor(videos_kwargs.get("image_std", processor.image_std)).view(1, 1, -1, 1, 1)
        scale = videos_kwargs.get("rescale_factor", processor.rescale_factor)
        tiles, counts = [], []
        for clip in clips["pixel_values_videos"]:
            sub_videos = hd_tiles(clip.float(), self.hd_num, self.hd_local_size, self.hd_padding, self.hd_add_global)
            num_local = len(sub_videos) - int(self.hd_add_global)
            if num_local > self.hd_num:
                raise ValueError(
                    f"a {clip.shape[-1]}x{clip.shape[-2]} video gives {num_local} tiles of {self.hd_local_size}: more "
                    f"tiles than hd_num={self.hd_num} (the padding rule pads to multiples of 224; use hd_padding=False)"
                )
            tiles.append((sub_videos * scale - mean) / std)
            counts.append(len(sub_videos))
        return torch.cat(tiles), counts

    @staticmethod
    def _repeat_video_blocks(texts: list[str], tiles_per_video: list[int]) -> list[str]:
        """The k-th `<Video>[<VID_PLH>]</Video>` block (or bare placeholder) repeated once per sub-video of video k."""
        counts = iter(tiles_per_video)
        block = re.compile(r"(?:<Video>)?" + re.escape(VIDEO_PLACEHOLDER) + r"(?:</Video>)?")
        expand = lambda match: match.group(0) * next(counts)  # noqa: E731
        return [block.sub(expand, text) for text in texts]

    def _prompt_ids(self, prompt: str) -> list[int]:
        pieces = re.split(f"({_PLACEHOLDERS.pattern})", prompt)
        ids = self.tokenizer(pieces[0])["input_ids"]
        for placeholder, piece in zip(pieces[1::2], pieces[2::2]):
            token_id = self.media_token_id if placeholder == VIDEO_PLACEHOLDER else self.image_media_token_id
            ids += [token_id] * self.num_media_tokens + self.tokenizer(piece)["input_ids"]
        return ids

    def batch_decode(self, *args, **kwargs):
        """Token ids → strings (the LLM tokenizer's `batch_decode`)."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        """Token ids → string (the LLM tokenizer's `decode`)."""
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return [
            "input_ids",
            "attention_mask",
            "pixel_values_videos",
            "pixel_values",
            "qformer_input_ids",
            "qformer_attention_mask",
        ]


__all__ = ["InternVideo2ChatProcessor", "CHAT_TEMPLATE", "VIDEO_PLACEHOLDER", "IMAGE_PLACEHOLDER"]
