// The shape and options of one model: the encoder (Megatron pre-LN or plain BERT post-LN)
// and one task head. Everything that builds, loads or shards a model starts from this.
#ifndef MT_MODEL_CONFIG_H
#define MT_MODEL_CONFIG_H

#include <stdint.h>
#include "core/status.h"

typedef enum {
    MT_ARCH_MEGATRON = 0, // pre-LN, no embedding LayerNorm, final_layernorm, eps 1e-5
    MT_ARCH_BERT = 1,     // post-LN, embedding LayerNorm, no final LayerNorm, eps 1e-12
} mt_arch;

typedef enum {
    MT_GELU_ERF = 0,  // exact erf GELU (NeMo/Megatron default for BERT fine-tuning)
    MT_GELU_TANH = 1, // tanh approximation (Megatron bias_gelu_fusion, --openai-gelu)
    MT_GELU_ONNX = 2, // erf with the constant 1.41421 (NeMo onnx_safe=True)
} mt_gelu_kind;

typedef enum {
    MT_HEAD_NONE = 0,
    MT_HEAD_TOKEN_CLASSIFIER,    // NeMo TokenClassifier: MLP per token (NER)
    MT_HEAD_SEQUENCE_CLASSIFIER, // NeMo SequenceClassifier: MLP on token 0 (text classification, GLUE)
    MT_HEAD_SEQUENCE_REGRESSION, // NeMo SequenceRegression: MLP on token 0 -> 1 value (STS-B)
    MT_HEAD_QA,                  // NeMo QA: TokenClassifier, 1 layer, hidden -> 2 (start, end)
} mt_head_kind;

typedef enum { MT_ACT_RELU = 0, MT_ACT_GELU = 1, MT_ACT_TANH = 2 } mt_activation;

typedef struct {
    // encoder
    mt_arch arch;
    int vocab_size;                 // tokens in the vocab file
    int make_vocab_size_divisible_by; // 128 (Megatron)
    int padded_vocab_size;          // global, filled by mt_model_config_finalize
    int hidden_size;
    int num_layers;
    int num_attention_heads;
    int ffn_hidden_size;            // 4 * hidden_size unless set
    int max_position_embeddings;
    int num_tokentypes;             // 2
    float layernorm_eps;
    mt_gelu_kind gelu;
    float hidden_dropout;
    float attention_dropout;
    float init_method_std;          // 0.02
    // head
    mt_head_kind head;
    char head_prefix[32];           // state-dict prefix: "classifier" (NER, QA, text), "pooler" (GLUE)
    int num_classes;
    int head_num_layers;            // NeMo num_fc_layers / num_output_layers
    mt_activation head_activation;
    float head_dropout;             // fc_dropout
    char head_mlp[16];              // the MLP's module name: "mlp"; intent/slot's intent head "intent_mlp"
    // Second head, for NeMo's two-head models: always a token classifier on the encoder output.
    // Punctuation/capitalization: head = punct_classifier, head2 = capit_classifier (own dropout).
    // Intent/slot (SequenceTokenClassifier): head = classifier.intent_mlp on token 0, head2 =
    // classifier.slot_mlp; one dropout before both MLPs (head2_shares_dropout).
    // The loss is NeMo's AggregatorLoss: head_loss_weight*loss1 + head2_loss_weight*loss2.
    mt_head_kind head2;             // MT_HEAD_NONE or MT_HEAD_TOKEN_CLASSIFIER
    char head2_prefix[32];
    char head2_mlp[16];
    int num_classes2;
    int head2_num_layers;
    mt_activation head2_activation;
    float head2_dropout;
    int head2_shares_dropout;
    float head_loss_weight, head2_loss_weight; // 1, 1 unless set
    // tensor parallelism (this process's place in the TP group)
    int tp_size;
    int tp_rank;
} mt_model_config;

// Megatron-BERT defaults (pre-LN, eps 1e-5, erf GELU, dropout 0.1) with no head.
void mt_model_config_defaults(mt_model_config *cfg);
// Plain BERT defaults (post-LN, eps 1e-12).
void mt_model_config_bert_defaults(mt_model_config *cfg);
// Derives padded_vocab_size and ffn_hidden_size, then checks every shape: hidden divisible by
// heads, heads divisible by tp_size, positive sizes, head fields consistent. The error names the
// field and the fix.
mt_status mt_model_config_finalize(mt_model_config *cfg) MT_WARN_UNUSED;
// Megatron's padded vocab: smallest multiple of divisible_by * tp_size >= vocab.
int mt_padded_vocab_size(int vocab_size, int divisible_by, int tp_size);

#endif
