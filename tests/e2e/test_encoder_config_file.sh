#!/usr/bin/env bash
# model.language_model.config_file as Megatron's JSON (dashed keys) or as YAML with NeMo's
# underscored keys gives the same model; mistakes in either name the file, the place and the fix.
set -u -o pipefail
bin=${MEGATUNE_BIN:?}; src=${MEGATUNE_SOURCE_DIR:?}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
fail() { echo "FAIL: $*"; exit 1; }
run() { # run CONFIG_FILE [more overrides]: prints the log's "model:" line, or the error
  "$bin" train examples/quickstart_config.yaml exp_manager.exp_dir="$work/exp" trainer.max_steps=2 \
    model.language_model.config=null model.language_model.config_file="$1" "${@:2}" 2>&1
}
printf '{"hidden-size": 32, "num-attention-heads": 2, "num-layers": 1, "max-seq-length": 48}\n' > "$work/enc.json"
printf '# NeMo-style YAML\nhidden_size: 32\nnum_attention_heads: 2\nnum_layers: 1\nmax_position_embeddings: 48\n' > "$work/enc.yaml"
json_line=$(run "$work/enc.json" | grep -o 'model: .*parameters') || fail "JSON config_file: $(run "$work/enc.json" | tail -3)"
yaml_line=$(run "$work/enc.yaml" | grep -o 'model: .*parameters') || fail "YAML config_file: $(run "$work/enc.yaml" | tail -3)"
echo "json: $json_line"; echo "yaml: $yaml_line"
echo "$yaml_line" | grep -q "hidden 32, 1 layers, 2 heads" || fail "YAML shape not applied: $yaml_line"
[ "$json_line" = "$yaml_line" ] || fail "JSON and YAML give different models"
# NeMo's own encoder_config.json also names the vocab and Megatron's init switches: accepted, ignored
printf '{"hidden_size": 32, "num_attention_heads": 2, "num_layers": 1, "max_position_embeddings": 48, "vocab_file": "v.txt", "tokenizer_type": "BertWordPieceLowerCase", "lazy_mpu_init": true, "onnx_safe": true}\n' > "$work/nemo_enc.json"
nemo_line=$(run "$work/nemo_enc.json" | grep -o 'model: .*parameters') || fail "NeMo encoder_config.json: $(run "$work/nemo_enc.json" | tail -3)"
[ "$nemo_line" = "$yaml_line" ] || fail "NeMo's encoder_config.json gives a different model: $nemo_line"

printf 'hidden_size: 32\nnum_attention_head: 2\n' > "$work/typo.yaml"
out=$(run "$work/typo.yaml"); [ $? -ne 0 ] || fail "typo accepted"
echo "$out" | grep -q "typo.yaml: unknown key 'num_attention_head'; did you mean 'num_attention_heads'" || fail "typo message: $out"
printf 'config:\n  hidden_size: 32\n' > "$work/nested.yaml"
out=$(run "$work/nested.yaml"); [ $? -ne 0 ] || fail "nested accepted"
echo "$out" | grep -q "nested.yaml:2:3: 'config' holds a nested block" || fail "nested message: $out"
printf 'hidden_size: "32\nnum_layers: 1\n' > "$work/broken.yaml"
out=$(run "$work/broken.yaml"); [ $? -ne 0 ] || fail "broken YAML accepted"
echo "$out" | grep -Eq "broken.yaml:[0-9]+:[0-9]+: malformed YAML" || fail "broken message: $out"
echo "all ok"
