"""Zero-shot scoring with a Stage-2 [`InternVideo2Model`]: prompt-ensembled classification and text <-> video retrieval
with the official ITC / dual-softmax / ITM re-rank protocol (spec §3.7, §3.8).

Example:

    >>> from internvideo2.zero_shot import encode_texts, retrieval_scores, zero_shot_classification_scores
    >>> videos = model.encode_vision(pixel_values_videos=pixel_values_videos)  # doctest: +SKIP
    >>> classes = ["dancing", "cooking"]
    >>> probabilities = zero_shot_classification_scores(model, videos.embeds, classes, tokenizer)  # doctest: +SKIP
    >>> texts = encode_texts(model, tokenizer, captions)  # doctest: +SKIP
    >>> scores = retrieval_scores(model, videos, texts, k=128)  # doctest: +SKIP
    >>> scores["itm"].video_to_text.shape, scores["itm"].text_to_video.shape  # doctest: +SKIP
    (torch.Size([num_videos, num_texts]), torch.Size([num_texts, num_videos]))
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .modeling_internvideo2 import InternVideo2TextEncoding
from .processing.tokenization_internvideo2 import caption_cleaner


# The 16 prompts of the official zero-shot action recognition
# (`dataset/text_prompt.py::kinetics_templates_action_clip`).
ACTION_TEMPLATES: tuple[str, ...] = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

CLASSIFICATION_MODES = ("stage2", "clip")

# Score written outside the re-ranked top k, as the official evaluation pre-fills its ITM matrices.
ITM_FILL_VALUE = -100.0


class RetrievalScores(NamedTuple):
    """Scores of one method in both directions. `video_to_text[v]` ranks the texts for video `v`;
    `text_to_video[t]` ranks the videos for text `t`. For ITC the second is the transpose of the first; for the
    dual-softmax and ITM re-rank scores the two matrices are computed separately and are not transposes."""

    video_to_text: torch.Tensor
    text_to_video: torch.Tensor


def build_class_prompts(class_names: Sequence[str], templates: Sequence[str] = ACTION_TEMPLATES) -> list[str]:
    """Every template filled with every class name, cleaned like the official `pre_text`, class-major:
    `prompts[c * len(templates) + p]` is template `p` of class `c` (the layout the official reshape expects)."""
    class_names = _checked_class_names(class_names)
    if isinstance(templates, str) or not isinstance(templates, Sequence) or len(templates) == 0:
        raise ValueError("templates must be a non-empty list of strings with one '{}' placeholder each")
    for template in templates:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(f"template {template!r} must be a string with exactly one '{{}}' placeholder")
    cleaner = caption_cleaner()
    return [cleaner.normalize_str(template.format(name)) for name in class_names for template in templates]


def _checked_class_names(class_names) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a list of strings, got {type(class_names).__name__}")
    if len(class_names) == 0:
        raise ValueError("class_names is empty: zero-shot classification needs at least one class")
    if not all(isinstance(name, str) and name.strip() for name in class_names):
        raise ValueError("class_names must all be non-empty strings")
    if len(set(class_names)) != len(class_names):
        duplicates = sorted({name for name in class_names if list(class_names).count(name) > 1})
        raise ValueError(f"class_names has duplicates: {duplicates}")
    return list(class_names)


@torch.no_grad()
def encode_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 256,
    max_length: int | None = None,
    return_hidden_states: bool = True,
    progress: bool = False,
) -> InternVideo2TextEncoding:
    """Encode `texts` in batches (the official evaluation uses batches of 256 and the dataset's `max_txt_l`).

    Returns an [`InternVideo2TextEncoding`] on the CPU: `embeds` (float32, L2-normalised), and with
    `return_hidden_states` the text-layer outputs and attention masks the matching head needs (in the model's dtype).
    `max_length` defaults to the tokenizer's `model_max_length`.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of strings")
    batch_size = _positive_int(batch_size, "batch_size")
    device = model.device
    embeds, hidden, masks = [], [], []
    for start in tqdm(range(0, len(texts), batch_size), desc="encoding texts", disable=not progress):
        tokens = tokenizer(list(texts[start : start + batch_size]), max_length=max_length, return_tensors="pt")
        encoding = model.encode_text(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
        embeds.append(encoding.embeds.float().cpu())
        if return_hidden_states:
            hidden.append(encoding.last_hidden_state.cpu())
            masks.append(encoding.attention_mask.cpu())
    return InternVideo2TextEncoding(
        embeds=torch.cat(embeds),
        last_hidden_state=torch.cat(hidden) if return_hidden_states else None,
        attention_mask=torch.cat(masks) if return_hidden_states else None,
    )


@torch.no_grad()
def zero_shot_classification_scores(
    model,
    video_embeds: torch.Tensor,
    class_names: Sequence[str],
    tokenizer,
    mode: str = "stage2",
    templates: Sequence[str] = ACTION_TEMPLATES,
    batch_size: int = 256,
    max_length: int | None = None,
) -> torch.Tensor:
    """(num_videos, num_classes) zero-shot class scores from prompt ensembles (spec §3.8).

    Each class is described by every template (cleaned like the official captions); similarities are cosines
    (temperature 1) between `video_embeds` (any media embedding: video, image or audio) and every prompt.
    `mode="stage2"`: softmax over all `num_classes * num_templates` prompts of a row, then the mean over each class's
    prompts (the Stage-2 evaluator); `mode="clip"`: the mean cosine over each class's prompts (the CLIP evaluator).
    """
    if mode not in CLASSIFICATION_MODES:
        raise ValueError(f"mode must be one of {CLASSIFICATION_MODES}, got {mode!r}")
    video_embeds = _as_matrix(video_embeds, "video_embeds")
    prompts = build_class_prompts(class_names, templates)
    text_embeds = encode_texts(
        model, tokenizer, prompts, batch_size=batch_size, max_length=max_length, return_hidden_states=False
    ).embeds
    if text_embeds.shape[1] != video_embeds.shape[1]:
        raise ValueError(
            f"video_embeds have dimension {video_embeds.shape[1]} but the model's text embeddings have "
            f"{text_embeds.shape[1]}"
        )
    similarity = F.normalize(video_embeds, dim=-1) @ text_embeds.T
    if mode == "stage2":
        similarity = similarity.softmax(dim=1)
    return similarity.view(len(video_embeds), len(class_names), len(templates)).mean(dim=-1)


def _as_matrix(tensor, name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise ValueError(f"{name} must have shape (num_items, dim) with at least one item, got {tuple(tensor.shape)}")
    return tensor.detach().float().cpu()


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def dual_softmax(similarity: torch.Tensor) -> RetrievalScores:
    """Official `_dsl` re-scoring: `S * softmax(S, dim=0)` ranks texts per video, `S.T * softmax(S.T, dim=0)` ranks
    videos per text (temperature 1 on the cosine matrix `S`)."""
    similarity = similarity.float()
    return RetrievalScores(
        video_to_text=similarity * similarity.softmax(dim=0),
        text_to_video=similarity.T * similarity.T.softmax(dim=0),
    )


@torch.no_grad()
def retrieval_scores(
    model,
    media_encodings,
    text_encodings,
    k: int | None = 128,
    batch_size: int = 32,
    audio_visual: bool = False,
    accelerator=None,
    progress: bool = False,
) -> dict[str, RetrievalScores]:
    """Text <-> video (or audio-visual) retrieval scores of the official Stage-2 evaluation (spec §3.7).

    Args:
        model: an [`InternVideo2Model`] (only `match_logits` and `device` are used).
        media_encodings: `embeds` (num_media, dim) contrastive embeddings and, for the re-rank, `memory`
            (num_media, tokens, width), the tokens the fusion layers attend to (e.g. an `InternVideo2VisionEncoding`;
            audio-visual: `cat([audio.memory, vision.memory], dim=1)`). Tensors may live on the CPU: only batches
            of `batch_size` pairs are moved to the model's device.
        text_encodings: `embeds` (num_texts, dim), `last_hidden_state` (num_texts, length, hidden) and
            `attention_mask` (see [`encode_texts`]).
        k: texts re-ranked per video and videos per text (official `k_test = 128`); None skips the re-rank.
        batch_size: (media, text) pairs per fusion forward (the official code uses 32).
        audio_visual: score with the audio-visual matching head (6B `avtm_head`).
        accelerator: an `accelerate.Accelerator`; with several processes the pairs are split between them and the
            scores gathered, so every process returns the full matrices.

    Returns:
        `{"itc": ..., "dsl": ..., "itm": ...}` of [`RetrievalScores`] (float32, CPU), `"itm"` only when `k` is set:
        - itc: cosine similarities (temperature 1); `text_to_video` is its transpose.
        - dsl: the dual-softmax re-scoring, see [`dual_softmax`].
        - itm: for every video, its top-k texts by ITC re-scored with the "match" logit `match_logits(...)[:, 1]`, all
          other entries -100 (`video_to_text`); separately, for every text, its top-k videos by ITC
          (`text_to_video`, shape (num_texts, num_media)). A pair in both top-k lists is scored once and used in
          both. The official code then softmaxes each row, which does not change any ranking.
    """
    media_embeds = _as_matrix(getattr(media_encodings, "embeds", None), "media_encodings.embeds")
    text_embeds = _as_matrix(getattr(text_encodings, "embeds", None), "text_encodings.embeds")
    if media_embeds.shape[1] != text_embeds.shape[1]:
        raise ValueError(
            f"media embeddings have dimension {media_embeds.shape[1]} but text embeddings have {text_embeds.shape[1]}"
        )
    similarity = F.normalize(media_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).T
    scores = {"itc": RetrievalScores(similarity, similarity.T), "dsl": dual_softmax(similarity)}
    if k is None:
        return scores

    num_media, num_texts = similarity.shape
    k = _positive_int(k, "k")
    if k > min(num_media, num_texts):
        raise ValueError(
            f"k={k} is larger than the candidate set ({num_media} videos, {num_texts} texts); use k <= "
            f"{min(num_media, num_texts)}"
        )
    memory = _checked_tokens(getattr(media_encodings, "memory", None), num_media, "media_encodings.memory")
    text_hidden = _checked_tokens(
        getattr(text_encodings, "last_hidden_state", None), num_texts, "text_encodings.last_hidden_state"
    )
    text_mask = getattr(text_encodings, "attention_mask", None)
    if not isinstance(text_mask, torch.Tensor) or tuple(text_mask.shape) != tuple(text_hidden.shape[:2]):
        raise ValueError(
            f"text_encodings.attention_mask must have shape {tuple(text_hidden.shape[:2])} (texts, length), "
            f"got {None if text_mask is None else tuple(text_mask.shape)}"
        )

    texts_per_media = similarity.topk(k, dim=1).indices  # (num_media, k)
    media_per_text = similarity.T.topk(k, dim=1).indices  # (num_texts, k)
    pair_ids = torch.cat(
        [
            (torch.arange(num_media)[:, None] * num_texts + texts_per_media).flatten(),
            (media_per_text * num_texts + torch.arange(num_texts)[:, None]).flatten(),
        ]
    ).unique()
    pair_scores = match_scores(
        model, memory, text_encodings, pair_ids // num_texts, pair_ids % num_texts, batch_size=batch_size,
        audio_visual=audio_visual, accelerator=accelerator, progress=progress,
    )
    dense = torch.full((num_media * num_texts,), float("nan"))
    dense[pair_ids] = pair_scores
    dense = dense.view(num_media, num_texts)
    video_to_text = torch.full((num_media, num_texts), ITM_FILL_VALUE)
    video_to_text.scatter_(1, texts_per_media, dense.gather(1, texts_per_media))
    text_to_video = torch.full((num_texts, num_media), ITM_FILL_VALUE)
    text_to_video.scatter_(1, media_per_text, dense.T.gather(1, media_per_text))
    scores["itm"] = RetrievalScores(video_to_text, text_to_video)
    return scores


def _checked_tokens(tensor, count: int, name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} is required for the ITM re-rank (pass k=None to skip it)")
    if tensor.ndim != 3 or tensor.shape[0] != count:
        raise ValueError(f"{name} must have shape ({count}, tokens, width), got {tuple(tensor.shape)}")
    return tensor


@torch.no_grad()
def match_scores(
    model,
    memory: torch.Tensor,
    text_encodings,
    media_index: torch.Tensor,
    text_index: torch.Tensor,
    batch_size: int = 32,
    audio_visual: bool = False,
    accelerator=None,
    progress: bool = False,
) -> torch.Tensor:
    """"Match" logits `match_logits(...)[:, 1]` (float32, CPU) of the pairs (`memory[media_index[i]]`,
    text `text_index[i]`), `batch_size` pairs per fusion forward; only those batches go to the model's device.

    With an `accelerate.Accelerator` of several processes, each process scores a contiguous share of the pairs and
    the shares are gathered, so every process returns all scores.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    text_hidden, text_mask = text_encodings.last_hidden_state, text_encodings.attention_mask
    media_index, text_index = torch.as_tensor(media_index).long(), torch.as_tensor(text_index).long()
    if media_index.shape != text_index.shape or media_index.ndim != 1:
        raise ValueError(
            f"media_index and text_index must be 1-D and of equal length, got shapes {tuple(media_index.shape)} "
            f"and {tuple(text_index.shape)}"
        )
    num_pairs, num_processes = len(media_index), getattr(accelerator, "num_processes", 1)
    share = math.ceil(num_pairs / num_processes)
    rank = getattr(accelerator, "process_index", 0)
    mine = slice(rank * share, (rank + 1) * share)
    media_index, text_index = media_index[mine], text_index[mine]
    device, dtype = model.device, model.dtype
    scores = []
    for start in tqdm(range(0, len(media_index), batch_size), desc="scoring matches", disable=not progress):
        media, text = media_index[start : start + batch_size], text_index[start : start + batch_size]
        logits = model.match_logits(
            memory[media].to(device, dtype),
            text_hidden[text].to(device, dtype),
            text_mask[text].to(device),
            audio_visual=audio_visual,
        )
        scores.append(logits[:, 1].float().cpu())
    scores = torch.cat(scores) if scores else torch.empty(0)
    if num_processes == 1:
        return scores
    padded = torch.full((share,), float("nan"))
    padded[: len(scores)] = scores
    gathered = accelerator.gather(padded.to(accelerator.device)).cpu()
    # process r scored pairs [r * share, (r + 1) * share); the last shares are padded
    sizes = [max(0, min(share, num_pairs - r * share)) for r in range(num_processes)]
    return torch.cat([gathered[r * share : r * share + size] for r, size in enumerate(sizes)])


__all__ = [
    "ACTION_TEMPLATES",
    "CLASSIFICATION_MODES",
    "ITM_FILL_VALUE",
    "RetrievalScores",
    "match_scores",
    "build_class_prompts",
    "dual_softmax",
    "encode_texts",
    "retrieval_scores",
    "zero_shot_classification_scores",
]
