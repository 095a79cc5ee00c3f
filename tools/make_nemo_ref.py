#!/usr/bin/env python3
"""Writes .nemo files the way NeMo v1.0-v1.4 writes them, for megatune's restore tests.

Written from NeMo's source (ModelPT.save_to / NLPModel._default_save_to / register_artifact /
register_bert_model / _register_vocab_from_tokenizer / register_megatron_checkpoint_version), not
by megatune: a gzip tar made with tarfile.add(folder, arcname="."), so members are "./<name>";
model_config.yaml with nemo:<member> artifact references and no language_model.config block (the
encoder is described only by the <name>_encoder_config.json member, sorted keys, indent 2);
torch.save(state_dict) weights with NeMo's key names; megatron_checkpoint_version.json holding
exactly json.dumps({"checkpoint_version": v}); for a model-parallel model, mp_rank_XX/ folders each
with model_weights.ckpt and no top-level weights; the tokenizer's vocab dumped as
tokenizer_vocab_dict.json (json.dumps(indent=2, sort_keys=True) + newline) plus tokenizer.vocab_file.

The QKV weights of each tensor-parallel shard are laid out as Megatron-LM's checkpoint_version says
(megatron.md section 3): 0: per rank [3, np, hn] (rank r holds Q_r, K_r, V_r, ColumnParallelLinear
stride 3); 1.0: per rank [np, hn, 3]; 2.0 / 3.0: per rank [np, 3, hn].

  make_nemo_ref.py OUT_DIR
writes into OUT_DIR:
  ref_config.json, ref_in.mttf   tools/torch_ref.py's input: the same model in the [heads, 3, hn]
                                 layout (param/<NeMo name>) and one token-classification batch
  v0_tp1.nemo     version 0, TP=1, NeMo v1.0-final artifact names (<uuid>_ prefixes)
  v0_tp2.nemo     version 0, TP=2, the docs' model-parallel listing (plain names)
  v1_tp2.nemo     version 1.0, TP=2, vocab only as tokenizer_vocab_dict.json (vocab_file null)
  v3_tp2.nemo     version 3.0, TP=2
  v3_tp1.nemo     version 3.0, TP=1
  v4_tp2.nemo     version 4.0 (unknown: must be refused)
  v0_as_v3.nemo   version-0 weights that claim 3.0 (restores to different logits: the test's control)
Exit 77 when torch is missing.
"""
import io
import json
import os
import sys
import tarfile
import time
import uuid

try:
    import numpy as np
    import torch
except Exception as e:  # pragma: no cover
    print("make_nemo_ref.py: cannot import torch/numpy: %s" % e, file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import write_mttf  # noqa: E402

H, L, NH, POS, FFN, CLASSES = 32, 2, 4, 64, 128, 3
HN = H // NH
LM = "bert_model.language_model."
LABELS = ["O", "B-PER", "I-PER"]


def vocab_tokens():
    toks = ["[PAD]"] + ["[unused%d]" % i for i in range(5)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += ["the", "a", "of", "to", "and", "in", "john", "smith", "paris", "went", "##s", "##ed", "café",
             "naïve", "\u00e9t\u00e9", "\u4e2d", "\U0001f600", "\"q\"", "back\\slash"]
    while len(toks) < 100:
        toks.append("w%d" % len(toks))
    return toks


def make_params(seed=7):
    g = torch.Generator().manual_seed(seed)
    vp = 128
    P = {}

    def rnd(*shape, scale=0.2):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).float()

    P[LM + "embedding.word_embeddings.weight"] = rnd(vp, H)
    P[LM + "embedding.position_embeddings.weight"] = rnd(POS, H)
    P[LM + "embedding.tokentype_embeddings.weight"] = rnd(2, H)
    for l in range(L):
        p = LM + "transformer.layers.%d." % l
        P[p + "input_layernorm.weight"] = 1 + rnd(H, scale=0.1)
        P[p + "input_layernorm.bias"] = rnd(H, scale=0.1)
        P[p + "attention.query_key_value.weight"] = rnd(3 * H, H)  # [heads, 3, hn] rows
        P[p + "attention.query_key_value.bias"] = rnd(3 * H, scale=0.1)
        P[p + "attention.dense.weight"] = rnd(H, H)
        P[p + "attention.dense.bias"] = rnd(H, scale=0.1)
        P[p + "post_attention_layernorm.weight"] = 1 + rnd(H, scale=0.1)
        P[p + "post_attention_layernorm.bias"] = rnd(H, scale=0.1)
        P[p + "mlp.dense_h_to_4h.weight"] = rnd(FFN, H)
        P[p + "mlp.dense_h_to_4h.bias"] = rnd(FFN, scale=0.1)
        P[p + "mlp.dense_4h_to_h.weight"] = rnd(H, FFN)
        P[p + "mlp.dense_4h_to_h.bias"] = rnd(H, scale=0.1)
    P[LM + "transformer.final_layernorm.weight"] = 1 + rnd(H, scale=0.1)
    P[LM + "transformer.final_layernorm.bias"] = rnd(H, scale=0.1)
    P["classifier.mlp.layer0.weight"] = rnd(H, H)
    P["classifier.mlp.layer0.bias"] = rnd(H, scale=0.1)
    P["classifier.mlp.layer2.weight"] = rnd(CLASSES, H)
    P["classifier.mlp.layer2.bias"] = rnd(CLASSES, scale=0.1)
    return P


def qkv_shard(t, tp, r, version):
    """Rank r's QKV rows (weight [3h, h] or bias [3h]) from the global [n, 3, hn] layout."""
    rest = t.shape[1:]
    g = t.reshape(NH, 3, HN, *rest)
    np_ = NH // tp
    mine = g[r * np_:(r + 1) * np_]  # [np, 3, hn, ...]
    if version >= 2.0:
        out = mine
    elif version >= 1.0:
        out = mine.permute(0, 2, 1, *range(3, mine.dim()))  # [np, hn, 3]
    else:
        out = mine.permute(1, 0, 2, *range(3, mine.dim()))  # [3, np, hn]
    return out.reshape(3 * np_ * HN, *rest).contiguous()


def shard(P, tp, r, version):
    """Rank r's state dict as Megatron's tensor-parallel layers hold it."""
    sd = {}
    for k, t in P.items():
        if ".query_key_value." in k:
            sd[k] = qkv_shard(t, tp, r, version)
        elif k.endswith("word_embeddings.weight"):
            vp = (100 + 128 * tp - 1) // (128 * tp) * (128 * tp)  # Megatron pads to 128 * tp
            full = torch.zeros(vp, H)
            full[:t.shape[0]] = t
            sd[k] = full.chunk(tp, 0)[r].contiguous()
        elif ".dense_h_to_4h." in k:
            sd[k] = t.chunk(tp, 0)[r].contiguous()
        elif k.endswith("attention.dense.weight") or k.endswith("dense_4h_to_h.weight"):
            sd[k] = t.chunk(tp, 1)[r].contiguous()
        else:
            sd[k] = t.clone()
    return sd


def torch_bytes(obj):
    b = io.BytesIO()
    torch.save(obj, b)
    return b.getvalue()


def model_config(tp, vocab_ref, labels_ref, encoder_ref):
    import yaml
    cfg = {
        "tensor_model_parallel_size": tp,
        "label_ids": {l: i for i, l in enumerate(LABELS)},
        "class_labels": {"class_labels_file": labels_ref},
        "dataset": {"data_dir": "/data/ner", "class_balancing": None, "max_seq_length": 128, "pad_label": "O",
                    "ignore_extra_tokens": False, "ignore_start_end": False, "use_cache": True, "num_workers": 2,
                    "pin_memory": False, "drop_last": False},
        "train_ds": {"text_file": "text_train.txt", "labels_file": "labels_train.txt", "shuffle": True,
                     "num_samples": -1, "batch_size": 64},
        "validation_ds": {"text_file": "text_dev.txt", "labels_file": "labels_dev.txt", "shuffle": False,
                          "num_samples": -1, "batch_size": 64},
        "tokenizer": {"tokenizer_name": "megatron-bert-345m-uncased", "vocab_file": vocab_ref,
                      "tokenizer_model": None, "special_tokens": None},
        "language_model": {"pretrained_model_name": "megatron-bert-345m-uncased", "lm_checkpoint": None,
                           "config_file": encoder_ref, "config": None},
        "head": {"num_fc_layers": 2, "fc_dropout": 0.5, "activation": "relu", "use_transformer_init": True},
        "optim": {"name": "adam", "lr": 5e-05, "weight_decay": 0.0,
                  "sched": {"name": "WarmupAnnealing", "warmup_steps": None, "warmup_ratio": 0.1, "last_epoch": -1}},
        "target": "nemo.collections.nlp.models.token_classification.token_classification_model."
                  "TokenClassificationModel",
    }
    return yaml.safe_dump(cfg, sort_keys=False).encode()


def write_nemo(path, P, tp, version, naming, vocab_member=True, claim=None):
    """naming 'uuid': v1.0-final register_artifact names (<uuid>_<basename>); 'plain': the docs' listing."""
    toks = vocab_tokens()
    vocab = "".join(t + "\n" for t in toks).encode()
    vdict = {t: i for i, t in enumerate(toks)}
    vdict_json = (json.dumps(dict(sorted(vdict.items(), key=lambda kv: kv[1])), indent=2, sort_keys=True) + "\n").encode()

    def name(base):
        return "%s_%s" % (uuid.uuid4().hex, base) if naming == "uuid" else base

    n_vocab, n_vdict = name("tokenizer.vocab_file"), name("tokenizer_vocab_dict.json")
    n_labels, n_ver = name("label_ids.csv"), name("megatron_checkpoint_version.json")
    n_enc = name("megatron-bert-uncased_encoder_config.json")
    enc = {"hidden_size": H, "num_attention_heads": NH, "num_layers": L, "max_position_embeddings": POS,
           "vocab_file": "nemo:" + n_vocab, "tokenizer_type": "BertWordPieceLowerCase", "lazy_mpu_init": True,
           "onnx_safe": True}
    members = {
        n_enc: (json.dumps(enc, indent=2, sort_keys=True) + "\n").encode(),
        n_ver: json.dumps({"checkpoint_version": version if claim is None else claim}).encode(),
        "model_config.yaml": model_config(tp, "nemo:" + n_vocab if vocab_member else None, "nemo:" + n_labels,
                                          "nemo:" + n_enc),
        n_vdict: vdict_json,
        n_labels: "".join(l + "\n" for l in LABELS).encode(),
    }
    if vocab_member:
        members[n_vocab] = vocab
    if tp == 1:
        members["model_weights.ckpt"] = torch_bytes(shard(P, 1, 0, version))
    else:
        for r in range(tp):
            members["mp_rank_%02d/model_weights.ckpt" % r] = torch_bytes(shard(P, tp, r, version))
    with tarfile.open(path, "w:gz") as tar:
        now = time.time()

        def add_dir(n):
            ti = tarfile.TarInfo(n)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(ti)

        add_dir(".")
        done = set()
        for n in sorted(members):
            d = os.path.dirname(n)
            if d and d not in done:
                add_dir("./" + d)
                done.add(d)
            ti = tarfile.TarInfo("./" + n)
            ti.size, ti.mode, ti.mtime = len(members[n]), 0o644, now
            tar.addfile(ti, io.BytesIO(members[n]))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    P = make_params()
    cfg = {"arch": "megatron", "vocab_size": 100, "hidden_size": H, "num_layers": L, "num_attention_heads": NH,
           "layernorm_eps": 1e-5, "gelu": "erf", "head": "token", "num_classes": CLASSES, "head_num_layers": 2,
           "head_activation": "relu", "head_prefix": "classifier"}
    with open(os.path.join(out, "ref_config.json"), "w") as f:
        json.dump(cfg, f)
    rng = np.random.RandomState(3)
    B, T = 2, 12
    ids = rng.randint(9, 100, size=(B, T)).astype(np.int32)
    ids[:, 0] = 7  # [CLS]
    mask = np.ones((B, T), np.int32)
    mask[1, 8:] = 0
    tensors = {"param/" + k: v.numpy() for k, v in P.items()}
    tensors["batch/input_ids"] = ids
    tensors["batch/attention_mask"] = mask
    tensors["batch/token_type_ids"] = np.zeros((B, T), np.int32)
    tensors["batch/labels"] = rng.randint(0, CLASSES, size=(B, T)).astype(np.int32)
    write_mttf(os.path.join(out, "ref_in.mttf"), tensors)
    write_nemo(os.path.join(out, "v0_tp1.nemo"), P, 1, 0, "uuid")
    write_nemo(os.path.join(out, "v0_tp2.nemo"), P, 2, 0, "plain")
    write_nemo(os.path.join(out, "v1_tp2.nemo"), P, 2, 1.0, "plain", vocab_member=False)
    write_nemo(os.path.join(out, "v3_tp2.nemo"), P, 2, 3.0, "plain")
    write_nemo(os.path.join(out, "v3_tp1.nemo"), P, 1, 3.0, "plain")
    write_nemo(os.path.join(out, "v4_tp2.nemo"), P, 2, 4.0, "plain")
    write_nemo(os.path.join(out, "v0_as_v3.nemo"), P, 2, 0, "plain", claim=3.0)


if __name__ == "__main__":
    main()
