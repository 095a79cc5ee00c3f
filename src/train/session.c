#include "train/session.h"

#include <math.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>


#include "ckpt/config_file.h"
#include "train/encoder_yaml.h"
#include "core/file.h"
#include "core/log.h"
#include "kernels/cpu.h"
#include "kernels/bf16.h"
#include "model/model_kernels.h"
#include "text/pretrained.h"

static mt_task_kind task_kind(const char *t) {
    if (!strcmp(t, "glue")) return MT_TASK_GLUE;
    if (!strcmp(t, "token_classification")) return MT_TASK_TOKEN_CLASSIFICATION;
    if (!strcmp(t, "question_answering")) return MT_TASK_QUESTION_ANSWERING;
    if (!strcmp(t, "punctuation_capitalization")) return MT_TASK_PUNCT_CAPIT;
    if (!strcmp(t, "intent_slot_classification")) return MT_TASK_INTENT_SLOT;
    return MT_TASK_TEXT_CLASSIFICATION;
}

// ---- punctuation_capitalization / intent_slot_classification ----
static mt_status joint_task_options(const mt_train_config *cfg, mt_task_options *o) {
    if (o->kind == MT_TASK_INTENT_SLOT) {
        // NeMo's intent/slot keys sit directly under model.
        o->max_seq_length = (int)cfg->model.joint.max_seq_length;
        o->ignore_extra_tokens = cfg->model.joint.ignore_extra_tokens;
        o->ignore_start_end = cfg->model.joint.ignore_start_end;
        o->slot_pad_label = (int)cfg->model.joint.pad_label;
        if (o->slot_pad_label < -1)
            return mt_fail(MT_ERR_INVALID, "model.pad_label=%d: give a slot id, or -1 for the 'O' slot", o->slot_pad_label);
        const char *cb = cfg->model.joint.class_balancing;
        if (cb && strcmp(cb, "weighted_loss"))
            return mt_fail(MT_ERR_INVALID, "model.class_balancing '%s' is unknown: use null or weighted_loss", cb);
        o->class_balancing = cb != NULL;
    } else if (o->class_balancing) {
        return mt_fail(MT_ERR_UNSUPPORTED, "model.dataset.class_balancing: NeMo's punctuation/capitalisation model has "
                       "no class balancing; set it to null");
    }
    return MT_OK;
}

static mt_status act_of(const char *a, const char *key, mt_activation *out) {
    if (!strcmp(a, "relu")) *out = MT_ACT_RELU;
    else if (!strcmp(a, "gelu")) *out = MT_ACT_GELU;
    else if (!strcmp(a, "tanh")) *out = MT_ACT_TANH;
    else return mt_fail(MT_ERR_INVALID, "%s '%s' is unknown: use relu, gelu or tanh", key, a);
    return MT_OK;
}

// NeMo's activations_checkpoint_* keys (validated by the config) -> the model's recomputation:
// selective = attention probabilities, GELU and (pre-LN) LayerNorm outputs (and FC1's with
// activations_checkpoint_fc1, then the residual after attention with activations_checkpoint_attn_out),
// full = whole layers
// (uniform: all of them, block: the first num_layers)
static mt_status apply_activation_checkpointing(const mt_train_config *c, mt_model *model) {
    const char *g = c->model.activations_checkpoint_granularity, *me = c->model.activations_checkpoint_method;
    const int nl = mt_model_get_config(model)->num_layers;
    if (g && !strcmp(g, "selective")) {
        const int fc1 = c->model.activations_checkpoint_fc1, ao = fc1 && c->model.activations_checkpoint_attn_out;
        mt_model_set_recompute(model, ao ? 3 : fc1 ? 2 : 1);
        mt_info("activation checkpointing: selective (every layer's attention probabilities, GELU outputs%s and, "
                "pre-LN, LayerNorm outputs%s are recomputed in backward)%s", fc1 ? ", FC1 outputs" : "",
                ao ? " and the residual stream after attention" : "",
                me ? "; model.activations_checkpoint_method is not used with it" : "");
        return MT_OK;
    }
    if (!me) return MT_OK;
    long long n = c->model.activations_checkpoint_num_layers;
    int layers = !strcmp(me, "uniform") ? nl : n < nl ? (int)n : nl;
    mt_model_set_activation_checkpoint(model, layers);
    mt_info("activation checkpointing: %s, %d of %d layers keep only their input; backward runs their forward "
            "again (one more forward of them per step; the same gradients)", me, layers, nl);
    return MT_OK;
}

// The two heads with NeMo's module names: punct_classifier.mlp + capit_classifier.mlp (two
// TokenClassifiers, own dropout), or classifier.intent_mlp + classifier.slot_mlp
// (SequenceTokenClassifier: relu, one dropout, intent_loss_weight).
static mt_status joint_heads(const mt_train_config *c, const mt_session *s, mt_model_config *m) {
    if (s->num_classes2 <= 0)
        return mt_fail(MT_ERR_INVALID, "%s: the second label map is empty", c->task);
    m->head2 = MT_HEAD_TOKEN_CLASSIFIER;
    m->num_classes2 = s->num_classes2;
    if (s->topt.kind == MT_TASK_PUNCT_CAPIT) {
        snprintf(m->head_prefix, sizeof m->head_prefix, "punct_classifier");
        snprintf(m->head2_prefix, sizeof m->head2_prefix, "capit_classifier");
        m->head_num_layers = (int)c->model.joint.punct_head.num_fc_layers;
        m->head2_num_layers = (int)c->model.joint.capit_head.num_fc_layers;
        m->head_dropout = (float)c->model.joint.punct_head.fc_dropout;
        m->head2_dropout = (float)c->model.joint.capit_head.fc_dropout;
        MT_TRY(act_of(c->model.joint.punct_head.activation, "model.punct_head.activation", &m->head_activation));
        MT_TRY(act_of(c->model.joint.capit_head.activation, "model.capit_head.activation", &m->head2_activation));
        if (!c->model.joint.punct_head.use_transformer_init || !c->model.joint.capit_head.use_transformer_init)
            mt_warn("use_transformer_init=false: megatune initialises the heads as with true (N(0, 0.02))");
        m->head_loss_weight = m->head2_loss_weight = 1.0f; // AggregatorLoss(num_inputs=2): the plain sum
    } else {
        double w = c->model.joint.intent_loss_weight;
        if (!(w >= 0.0 && w <= 1.0))
            return mt_fail(MT_ERR_INVALID, "model.intent_loss_weight=%g must be in [0, 1]", w);
        snprintf(m->head_prefix, sizeof m->head_prefix, "classifier");
        snprintf(m->head_mlp, sizeof m->head_mlp, "intent_mlp");
        snprintf(m->head2_prefix, sizeof m->head2_prefix, "classifier");
        snprintf(m->head2_mlp, sizeof m->head2_mlp, "slot_mlp");
        m->head_num_layers = m->head2_num_layers = (int)c->model.joint.num_output_layers;
        m->head_dropout = m->head2_dropout = (float)c->model.head.fc_dropout;
        m->head_activation = m->head2_activation = MT_ACT_RELU;
        m->head2_shares_dropout = 1;
        m->head_loss_weight = (float)w;
        m->head2_loss_weight = (float)(1.0 - w);
    }
    return MT_OK;
}

// Data paths: P&C as token classification (text_/labels_<split>.txt in model.dataset.data_dir,
// or a split's ds_item folder); intent/slot <prefix>.tsv in model.data_dir.
static mt_status joint_split_path(const mt_train_config *cfg, const mt_cfg_ds *ds, int which, char *path, size_t pcap,
                                  char *split, size_t scap, int *present) {
    const char *keys[3] = {"model.train_ds", "model.validation_ds", "model.test_ds"};
    int n;
    if (task_kind(cfg->task) == MT_TASK_INTENT_SLOT) {
        const char *dir = cfg->model.joint.data_dir, *prefix = cfg->model.joint.prefix[which];
        if (!dir) return mt_fail(MT_ERR_INVALID, "model.data_dir must be set for intent/slot classification");
        if (!prefix || !prefix[0] || strchr(prefix, '/'))
            return mt_fail(MT_ERR_INVALID, "%s.prefix must name <prefix>.tsv inside model.data_dir", keys[which]);
        n = snprintf(path, pcap, "%s", dir);
        snprintf(split, scap, "%s", prefix);
    } else {
        if (!ds->text_file) return MT_OK;
        const char *dir = ds->ds_item ? ds->ds_item : cfg->model.dataset.data_dir;
        if (!dir) return mt_fail(MT_ERR_INVALID, "model.dataset.data_dir must be set for punctuation/capitalisation");
        const char *t = ds->text_file;
        size_t l = strlen(t);
        if (strncmp(t, "text_", 5) || l < 10 || strcmp(t + l - 4, ".txt") || strchr(t, '/'))
            return mt_fail(MT_ERR_UNSUPPORTED, "%s.text_file '%s': megatune reads NeMo's text_<split>.txt naming "
                           "inside model.dataset.data_dir; rename the file", keys[which], t);
        snprintf(split, scap, "%.*s", (int)(l - 9), t + 5);
        char want[600];
        snprintf(want, sizeof want, "labels_%s.txt", split);
        if (ds->labels_file && strcmp(ds->labels_file, want))
            return mt_fail(MT_ERR_UNSUPPORTED, "%s.labels_file '%s' must be '%s' to pair with %s", keys[which],
                           ds->labels_file, want, t);
        n = snprintf(path, pcap, "%s", dir);
    }
    if (n < 0 || (size_t)n >= pcap) return mt_fail(MT_ERR_INVALID, "%s: data path too long", keys[which]);
    *present = 1;
    return MT_OK;
}
// ----

mt_status mt_session_task_options(const mt_train_config *cfg, mt_task_options *o) {
    mt_task_kind k = task_kind(cfg->task);
    mt_task_options_default(o, k);
    o->max_seq_length = (int)cfg->model.dataset.max_seq_length;
    if (k == MT_TASK_QUESTION_ANSWERING) {
        const __typeof__(cfg->model.dataset) *ds = &cfg->model.dataset;
        o->version_2_with_negative = ds->version_2_with_negative;
        o->doc_stride = (int)ds->doc_stride;
        o->max_query_length = (int)ds->max_query_length;
        o->max_answer_length = (int)ds->max_answer_length;
        o->n_best_size = (int)ds->n_best_size;
        o->null_score_diff_threshold = ds->null_score_diff_threshold;
        o->do_lower_case = ds->do_lower_case;
        if (o->doc_stride < 1 || o->max_query_length < 1 || o->max_answer_length < 1 || o->n_best_size < 1)
            return mt_fail(MT_ERR_INVALID, "model.dataset.doc_stride, max_query_length, max_answer_length and "
                           "n_best_size must be at least 1");
        return MT_OK;
    }
    if (k == MT_TASK_GLUE) {
        const char *t = cfg->model.task_name ? cfg->model.task_name : "mrpc";
        if (strlen(t) >= sizeof o->glue_task)
            return mt_fail(MT_ERR_INVALID, "model.task_name '%s' is not a GLUE task", t);
        snprintf(o->glue_task, sizeof o->glue_task, "%s", t);
    }
    o->num_classes = (int)cfg->model.dataset.num_classes;
    if (k == MT_TASK_TEXT_CLASSIFICATION && o->num_classes <= 0)
        return mt_fail(MT_ERR_INVALID, "model.dataset.num_classes must be set for text classification "
                       "(e.g. model.dataset.num_classes=2)");
    if (strlen(cfg->model.dataset.pad_label) >= sizeof o->pad_label)
        return mt_fail(MT_ERR_INVALID, "model.dataset.pad_label '%s' is too long", cfg->model.dataset.pad_label);
    snprintf(o->pad_label, sizeof o->pad_label, "%s", cfg->model.dataset.pad_label);
    o->ignore_extra_tokens = cfg->model.dataset.ignore_extra_tokens;
    o->ignore_start_end = cfg->model.dataset.ignore_start_end;
    const char *cb = cfg->model.dataset.class_balancing;
    if (cb && strcmp(cb, "weighted_loss"))
        return mt_fail(MT_ERR_INVALID, "model.dataset.class_balancing '%s' is unknown: use null or weighted_loss", cb);
    o->class_balancing = cb != NULL;
    if (k == MT_TASK_PUNCT_CAPIT || k == MT_TASK_INTENT_SLOT) MT_TRY(joint_task_options(cfg, o));
    return MT_OK;
}

mt_status mt_session_open_tokenizer(const mt_train_config *cfg, mt_session *s) {
    const char *tname = cfg->model.tokenizer.tokenizer_name ? cfg->model.tokenizer.tokenizer_name
                                                            : cfg->model.language_model.pretrained_model_name;
    const mt_pretrained_info *tp = tname ? mt_pretrained_find(tname) : NULL;
    const mt_pretrained_info *lp = mt_pretrained_find(cfg->model.language_model.pretrained_model_name);
    if (!tp) tp = lp;
    s->lowercase = tp ? tp->lowercase : cfg->model.tokenizer.do_lower_case;
    if (cfg->model.tokenizer.vocab_file) {
        if (snprintf(s->vocab_path, sizeof s->vocab_path, "%s", cfg->model.tokenizer.vocab_file) >=
            (int)sizeof s->vocab_path)
            return mt_fail(MT_ERR_INVALID, "model.tokenizer.vocab_file: path too long");
    } else {
        if (!tp)
            return mt_fail(MT_ERR_INVALID, "model.tokenizer.vocab_file is null and '%s' is not a known pretrained "
                           "name (%s): set model.tokenizer.vocab_file=PATH", tname ? tname : "(null)",
                           mt_pretrained_names());
        MT_TRY(mt_pretrained_vocab_path(tp, s->vocab_path, sizeof s->vocab_path));
    }
    mt_tokenizer_options to;
    mt_tokenizer_options_default(&to, s->lowercase);
    MT_TRY(mt_tokenizer_create_from_file(s->vocab_path, &to, &s->tok));
    mt_info("tokenizer: %s (%d tokens, %s)", s->vocab_path, mt_vocab_size(mt_tokenizer_vocab(s->tok)),
            s->lowercase ? "uncased" : "cased");
    return MT_OK;
}

static const mt_cfg_ds *split_ds(const mt_train_config *cfg, mt_split_kind which) {
    return which == MT_SPLIT_TRAIN ? &cfg->model.train_ds
           : which == MT_SPLIT_VALIDATION ? &cfg->model.validation_ds : &cfg->model.test_ds;
}

static const char *split_key(mt_split_kind which) {
    return which == MT_SPLIT_TRAIN ? "model.train_ds" : which == MT_SPLIT_VALIDATION ? "model.validation_ds"
                                                                                     : "model.test_ds";
}

mt_status mt_session_split_path(const mt_train_config *cfg, mt_split_kind which, char *path, size_t pcap,
                                char *split, size_t scap, int *present) {
    const mt_cfg_ds *ds = split_ds(cfg, which);
    *present = 0;
    mt_task_kind k = task_kind(cfg->task);
    int n = 0;
    if (k == MT_TASK_PUNCT_CAPIT || k == MT_TASK_INTENT_SLOT)
        return joint_split_path(cfg, ds, (int)which, path, pcap, split, scap, present);
    if (k == MT_TASK_TEXT_CLASSIFICATION) {
        if (!ds->file_path) return MT_OK;
        n = snprintf(path, pcap, "%s", ds->file_path);
        snprintf(split, scap, "%s", which == MT_SPLIT_TRAIN ? "train" : which == MT_SPLIT_VALIDATION ? "dev" : "test");
    } else if (k == MT_TASK_GLUE) {
        if (!ds->ds_item) return MT_OK;
        const char *dir = cfg->model.dataset.data_dir;
        if (!dir) return mt_fail(MT_ERR_INVALID, "model.dataset.data_dir must be set for GLUE");
        // os.path.join(data_dir, ds_item) as NeMo: an absolute ds_item stands alone
        if (ds->ds_item[0] == '/') n = snprintf(path, pcap, "%s", ds->ds_item);
        else n = snprintf(path, pcap, "%s/%s", dir, ds->ds_item);
        // the NeMo split name is the file name without .tsv
        const char *base = strrchr(ds->ds_item, '/');
        snprintf(split, scap, "%s", base ? base + 1 : ds->ds_item);
        char *dot = strrchr(split, '.');
        if (dot) *dot = 0;
    } else if (k == MT_TASK_TOKEN_CLASSIFICATION) {
        if (!ds->text_file) return MT_OK;
        const char *dir = cfg->model.dataset.data_dir;
        if (!dir) return mt_fail(MT_ERR_INVALID, "model.dataset.data_dir must be set for token classification");
        // NeMo's files are text_<split>.txt / labels_<split>.txt inside data_dir.
        const char *t = ds->text_file;
        size_t l = strlen(t);
        if (strncmp(t, "text_", 5) || l < 10 || strcmp(t + l - 4, ".txt") || strchr(t, '/'))
            return mt_fail(MT_ERR_UNSUPPORTED, "%s.text_file '%s': megatune reads NeMo's text_<split>.txt naming "
                           "inside model.dataset.data_dir; rename the file", split_key(which), t);
        snprintf(split, scap, "%.*s", (int)(l - 9), t + 5);
        char want[600];
        snprintf(want, sizeof want, "labels_%s.txt", split);
        if (ds->labels_file && strcmp(ds->labels_file, want))
            return mt_fail(MT_ERR_UNSUPPORTED, "%s.labels_file '%s' must be '%s' to pair with %s",
                           split_key(which), ds->labels_file, want, t);
        n = snprintf(path, pcap, "%s", dir);
    } else if (k == MT_TASK_QUESTION_ANSWERING) {
        // NeMo's QA configs name the SQuAD .json `file`; file_path is accepted too
        const char *f = ds->file ? ds->file : ds->file_path;
        if (!f) return MT_OK;
        n = snprintf(path, pcap, "%s", f);
        snprintf(split, scap, "%s", which == MT_SPLIT_TRAIN ? "train" : which == MT_SPLIT_VALIDATION ? "dev" : "test");
    } else {
        return mt_fail(MT_ERR_UNSUPPORTED, "task %s is not available in this build", cfg->task);
    }
    if (n < 0 || (size_t)n >= pcap) return mt_fail(MT_ERR_INVALID, "%s: data path too long", split_key(which));
    *present = 1;
    return MT_OK;
}

mt_status mt_session_load_split(const mt_train_config *cfg, mt_session *s, mt_split_kind which,
                                const mt_dataset *label_source, mt_dataset **out) {
    *out = NULL;
    char path[4096], split[512];
    int present;
    MT_TRY(mt_session_split_path(cfg, which, path, sizeof path, split, sizeof split, &present));
    if (!present) return MT_OK;
    mt_status st = mt_dataset_load(&s->topt, s->tok, path, split, label_source, out);
    if (st != MT_OK) return mt_fail_context(st, "%s", split_key(which));
    if (mt_dataset_size(*out) == 0) {
        mt_dataset_free(*out);
        *out = NULL;
        return mt_fail(MT_ERR_FORMAT, "%s (%s): no examples", split_key(which), path);
    }
    const mt_cfg_ds *ds = which == MT_SPLIT_TRAIN ? &cfg->model.train_ds
                          : which == MT_SPLIT_VALIDATION ? &cfg->model.validation_ds : &cfg->model.test_ds;
    if (ds->num_samples == 0 || ds->num_samples < -1) {
        mt_dataset_free(*out);
        *out = NULL;
        return mt_fail(MT_ERR_INVALID, "%s.num_samples=%lld would use no example; give a positive count, or -1 for all",
                       split_key(which), (long long)ds->num_samples);
    }
    size_t before = mt_dataset_size(*out);
    if (ds->num_samples > 0) mt_dataset_keep_examples(*out, (size_t)ds->num_samples);
    if (mt_dataset_size(*out) < before)
        mt_info("%s: %zu examples from %s (the first %lld: num_samples)", split_key(which), mt_dataset_size(*out), path,
                (long long)ds->num_samples);
    else
        mt_info("%s: %zu examples from %s", split_key(which), mt_dataset_size(*out), path);
    if (s->model) {
        mt_status fs = mt_session_check_fits(cfg, s, which, *out);
        if (fs != MT_OK) {
            mt_dataset_free(*out);
            *out = NULL;
            return fs;
        }
    }
    return MT_OK;
}

mt_status mt_session_check_fits(const mt_train_config *cfg, const mt_session *s, mt_split_kind which,
                                const mt_dataset *d) {
    int longest = mt_dataset_max_len(d), npos = s->mcfg.max_position_embeddings;
    if (!s->model || longest <= npos) return MT_OK;
    char path[4096] = "?", split[512];
    int present = 0;
    if (mt_session_split_path(cfg, which, path, sizeof path, split, sizeof split, &present) != MT_OK) mt_clear_error();
    // text classification features can hold max_seq_length + 1 tokens (NeMo's off-by-one)
    long long fit = npos - (s->topt.kind == MT_TASK_TEXT_CLASSIFICATION ? 1 : 0);
    const char *key = s->topt.kind == MT_TASK_INTENT_SLOT ? "model.language_model.max_seq_length"
                                                          : "model.dataset.max_seq_length";
    return mt_fail(MT_ERR_INVALID, "%s (%s): an example has %d tokens but the model has only %d positions "
                   "(max_position_embeddings); set %s=%lld or less (longer examples are "
                   "then truncated)", split_key(which), path, longest, npos, key, fit > 1 ? fit : 1);
}


static mt_status read_text_file(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_fail(MT_ERR_IO, "model.language_model.config_file %s: cannot open", path);
    size_t len;
    mt_status st = mt_read_all(f, (size_t)16 << 20, out, &len);
    int err = errno;
    fclose(f);
    if (st == MT_ERR_FORMAT) return mt_fail(MT_ERR_FORMAT, "%s: larger than 16 MiB", path);
    if (st == MT_ERR_IO)
        return mt_fail(MT_ERR_IO, "model.language_model.config_file %s: read error: %s%s", path, strerror(err),
                       err == EISDIR ? " (give the config.json or config.yaml file)" : "");
    return st;
}

// trainer.precision -> the kernel table. bf16 runs the linear layers' products in bf16 with fp32
// accumulation where the CPU has AVX512-BF16 or AMX-BF16, else fp32. 16 stays fp32: fp16 autocast
// with loss scaling does not exist on CPUs, the stock NeMo configs say 16 for GPUs, and a silent
// switch would change their numerics; the message says how to get bf16. Said once per process.
// MEGATUNE_BF16=emulate forces the emulated rounding path (tests, debugging), =off fp32.
const mt_kernels *mt_session_precision_kernels(const char *precision) {
    static int said;
    if (!precision || !strcmp(precision, "32") || !strcmp(precision, "32-true")) return NULL;
    const int say = !__atomic_exchange_n(&said, 1, __ATOMIC_ACQ_REL);
    const char *why = NULL;
    const mt_kernels *k = mt_kernels_bf16();
    if (!k) mt_bf16_available(&why);
    mt_bf16_caps caps = mt_bf16_detect();
    const char *unit = caps.amx_bf16 ? "AMX-BF16" : "AVX512-BF16";
    if (!strncmp(precision, "16", 2)) {
        if (say)
            mt_warn("trainer.precision=%s: fp16 mixed precision has no CPU form; this run uses fp32 (%s)", precision,
                    k ? "this CPU has bf16: set trainer.precision=bf16 for bf16 mixed precision"
                      : "bf16 is not available here either");
        return NULL;
    }
    const char *e = getenv("MEGATUNE_BF16");
    if (e && !strcmp(e, "emulate")) {
        if (say) mt_info("trainer.precision=%s: bf16 products emulated in fp32 (MEGATUNE_BF16=emulate)", precision);
        return mt_kernels_bf16emu();
    }
    if (say) {
        if (k)
            mt_info("trainer.precision=%s: linear layers in bf16 with fp32 accumulation (%s, oneDNN); weights, "
                    "optimizer state, LayerNorm, softmax, attention and loss in fp32", precision, unit);
        else
            mt_warn("trainer.precision=%s: %s; this run uses fp32", precision, why);
    }
    return k;
}

mt_status mt_session_build_model(const mt_train_config *cfg, mt_session *s, mt_head_kind head, int num_classes) {
    const mt_train_config *c = cfg;
    const char *name = c->model.language_model.pretrained_model_name;
    const mt_pretrained_info *p = mt_pretrained_find(name);
    if (!p) {
        const mt_pretrained_info *dummy;
        return mt_pretrained_lookup(name, &dummy); // sets the error listing the known names
    }
    mt_model_config *m = &s->mcfg;
    if (p->megatron) mt_model_config_defaults(m);
    else mt_model_config_bert_defaults(m);
    if (p->has_architecture) {
        m->hidden_size = p->hidden_size;
        m->num_layers = p->num_layers;
        m->num_attention_heads = p->num_attention_heads;
        m->max_position_embeddings = p->max_position_embeddings;
        m->ffn_hidden_size = p->ffn_hidden_size;
        m->num_tokentypes = p->num_tokentypes;
    }
    const __typeof__(c->model.language_model.config) *lc = &c->model.language_model.config;
    if (lc->arch) {
        if (!strcmp(lc->arch, "megatron")) {
            mt_model_config t = *m;
            mt_model_config_defaults(m);
            m->hidden_size = t.hidden_size, m->num_layers = t.num_layers, m->num_attention_heads = t.num_attention_heads;
            m->max_position_embeddings = t.max_position_embeddings, m->ffn_hidden_size = t.ffn_hidden_size;
        } else if (!strcmp(lc->arch, "bert")) {
            mt_model_config t = *m;
            mt_model_config_bert_defaults(m);
            m->hidden_size = t.hidden_size, m->num_layers = t.num_layers, m->num_attention_heads = t.num_attention_heads;
            m->max_position_embeddings = t.max_position_embeddings, m->ffn_hidden_size = t.ffn_hidden_size;
        } else {
            return mt_fail(MT_ERR_INVALID, "model.language_model.config.arch '%s' is unknown: use megatron or bert",
                           lc->arch);
        }
    }
    // NeMo's precedence (get_lm_model): config_file, then the config block, then the preset. A
    // config_file makes the whole block unused, as in NeMo; megatune's own arch/gelu still apply.
    int from_json = 0;
    const char *cf = c->model.language_model.config_file;
    // A config file describes the whole encoder: without an ffn size Megatron's is 4 * hidden,
    // not the preset's (NeMo's encoder_config.json never carries one).
    if (s->config_json || (cf && strncmp(cf, "nemo:", 5))) m->ffn_hidden_size = 0;
    if (s->config_json) {
        MT_TRY(mt_config_json_parse("encoder config (.nemo)", s->config_json, m));
        from_json = 1;
    } else if (cf && strncmp(cf, "nemo:", 5)) {
        char *text = NULL;
        MT_TRY(read_text_file(cf, &text));
        if (mt_encoder_config_is_yaml(cf)) { // NeMo's underscored keys in YAML: same checks via JSON
            char *json = NULL;
            mt_status ys = mt_encoder_yaml_to_json(cf, text, strlen(text), &json);
            free(text);
            if (ys != MT_OK) return ys;
            text = json;
        }
        mt_status st = mt_config_json_parse(cf, text, m);
        free(text);
        if (st != MT_OK) return st;
        from_json = 1;
        static const char *const block[] = {"hidden_size", "num_layers", "num_attention_heads",
                                            "max_position_embeddings", "ffn_hidden_size", "num_tokentypes",
                                            "make_vocab_size_divisible_by", "layernorm_epsilon", "hidden_dropout",
                                            "attention_dropout", "init_method_std"};
        char ignored[512] = "";
        size_t il = 0;
        for (size_t i = 0; i < sizeof block / sizeof block[0]; i++) {
            char key[128];
            snprintf(key, sizeof key, "model.language_model.config.%s", block[i]);
            if (mt_config_is_set(c, key) && il < sizeof ignored)
                il += (size_t)snprintf(ignored + il, sizeof ignored - il, "%s%s", il ? ", " : "", block[i]);
        }
        if (il)
            mt_warn("encoder shape from model.language_model.config_file %s; the model.language_model.config block "
                    "(%s) is not used: config_file takes precedence, as in NeMo", cf, ignored);
        else
            mt_info("encoder shape from model.language_model.config_file %s", cf);
    }
    if (!from_json && !s->config_json) {
        int block = 0;
        static const char *const keys[] = {"hidden_size", "num_layers", "num_attention_heads", "max_position_embeddings"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char key[128];
            snprintf(key, sizeof key, "model.language_model.config.%s", keys[i]);
            block |= mt_config_is_set(c, key);
        }
        mt_info("encoder shape from %s", block ? "the model.language_model.config block" : p->has_architecture ?
                "the pretrained model's preset" : "defaults");
    }
    // a user's config_file wins over the block; a .nemo's encoder JSON is refined by the block its
    // model_config.yaml holds (the same shape, plus dropouts)
    const int from_file = from_json && !s->config_json;
#define LC_SET(key) (!from_json || (!from_file && mt_config_is_set(c, "model.language_model.config." key)))
    if (!from_file) {
        if (lc->hidden_size > 0) m->hidden_size = (int)lc->hidden_size;
        if (lc->num_layers > 0) m->num_layers = (int)lc->num_layers;
        if (lc->num_attention_heads > 0) m->num_attention_heads = (int)lc->num_attention_heads;
        if (lc->max_position_embeddings > 0) m->max_position_embeddings = (int)lc->max_position_embeddings;
        if (lc->ffn_hidden_size > 0) m->ffn_hidden_size = (int)lc->ffn_hidden_size;
        else if (lc->hidden_size > 0) m->ffn_hidden_size = 0; // 4 * hidden, derived at finalize
        if (lc->layernorm_epsilon > 0) m->layernorm_eps = (float)lc->layernorm_epsilon;
    }
    if (LC_SET("num_tokentypes")) m->num_tokentypes = (int)lc->num_tokentypes;
    if (LC_SET("make_vocab_size_divisible_by")) m->make_vocab_size_divisible_by = (int)lc->make_vocab_size_divisible_by;
    if (LC_SET("hidden_dropout")) m->hidden_dropout = (float)lc->hidden_dropout;
    if (LC_SET("attention_dropout")) m->attention_dropout = (float)lc->attention_dropout;
    if (LC_SET("init_method_std")) m->init_method_std = (float)lc->init_method_std;
#undef LC_SET
    if (!strcmp(lc->gelu, "erf")) m->gelu = MT_GELU_ERF;
    else if (!strcmp(lc->gelu, "tanh")) m->gelu = MT_GELU_TANH;
    else if (!strcmp(lc->gelu, "onnx")) m->gelu = MT_GELU_ONNX;
    else return mt_fail(MT_ERR_INVALID, "model.language_model.config.gelu '%s' is unknown: use erf, tanh or onnx", lc->gelu);
    if (m->hidden_size <= 0 || m->num_layers <= 0 || m->num_attention_heads <= 0 || m->max_position_embeddings <= 0)
        return mt_fail(MT_ERR_INVALID, "'%s' defines no architecture: set model.language_model.config.hidden_size, "
                       "num_layers, num_attention_heads and max_position_embeddings (or config_file)", name);
    // only text classification appends [SEP] after truncating (NeMo's off-by-one: max_seq_length + 1 tokens)
    long long need = s->topt.max_seq_length + (s->topt.kind == MT_TASK_TEXT_CLASSIFICATION ? 1 : 0);
    if (m->max_position_embeddings < need)
        mt_warn("max_seq_length=%lld needs up to %lld positions but the model has %d; data with longer "
                "examples is refused", (long long)s->topt.max_seq_length, need, m->max_position_embeddings);
    m->vocab_size = mt_vocab_size(mt_tokenizer_vocab(s->tok));
    // head
    m->head = head;
    m->num_classes = num_classes;
    switch (s->topt.kind) {
    case MT_TASK_TEXT_CLASSIFICATION:
        snprintf(m->head_prefix, sizeof m->head_prefix, "classifier");
        m->head_num_layers = (int)c->model.classifier_head.num_output_layers;
        m->head_dropout = (float)c->model.classifier_head.fc_dropout;
        m->head_activation = MT_ACT_RELU;
        break;
    case MT_TASK_GLUE:
        // NeMo's GLUEModel: SequenceClassifier/SequenceRegression named "pooler", 2 layers, no dropout
        snprintf(m->head_prefix, sizeof m->head_prefix, "pooler");
        m->head_num_layers = 2;
        m->head_dropout = 0.0f;
        m->head_activation = MT_ACT_RELU;
        break;
    case MT_TASK_TOKEN_CLASSIFICATION: {
        snprintf(m->head_prefix, sizeof m->head_prefix, "classifier");
        m->head_num_layers = (int)c->model.head.num_fc_layers;
        m->head_dropout = (float)c->model.head.fc_dropout;
        mt_status st = act_of(c->model.head.activation, "model.head.activation", &m->head_activation);
        if (st != MT_OK) return st;
        break;
    }
    case MT_TASK_QUESTION_ANSWERING: {
        // NeMo's QAModel: TokenClassifier named "classifier" with 2 outputs (start, end)
        snprintf(m->head_prefix, sizeof m->head_prefix, "classifier");
        m->head_num_layers = (int)c->model.token_classifier.num_layers;
        m->head_dropout = (float)c->model.token_classifier.dropout;
        mt_status st = act_of(c->model.token_classifier.activation, "model.token_classifier.activation", &m->head_activation);
        if (st != MT_OK) return st;
        if (c->model.token_classifier.num_classes != 2)
            return mt_fail(MT_ERR_INVALID, "model.token_classifier.num_classes must be 2 (start and end logits), got %lld",
                           (long long)c->model.token_classifier.num_classes);
        if (c->model.token_classifier.log_softmax)
            mt_warn("model.token_classifier.log_softmax=true: megatune's span loss takes raw logits (NeMo's QA "
                    "default false)");
        break;
    }
    case MT_TASK_PUNCT_CAPIT:
    case MT_TASK_INTENT_SLOT:
        MT_TRY(joint_heads(c, s, m));
        break;
    default:
        return mt_fail(MT_ERR_UNSUPPORTED, "task %s is not available in this build", c->task);
    }
    if (s->topt.kind == MT_TASK_TOKEN_CLASSIFICATION && !c->model.head.use_transformer_init)
        mt_warn("model.head.use_transformer_init=false: megatune initialises the head as with true (weights "
                "N(0, 0.02), zero biases); PyTorch's default Linear init is not implemented");
    m->tp_size = s->tp ? s->tp->size : 1;
    m->tp_rank = s->tp ? s->tp->rank : 0;
    if (m->num_attention_heads % m->tp_size != 0)
        return mt_fail(MT_ERR_INVALID, "model.tensor_model_parallel_size=%d does not divide the %d attention heads "
                       "of '%s': use a divisor of %d", m->tp_size, m->num_attention_heads, name,
                       m->num_attention_heads);
    MT_TRY(mt_model_create(m, s->tp, &s->model));
    mt_model_set_kernels(s->model, mt_session_precision_kernels(c->trainer.precision));
    static int said_cpu; // (once per process: tensor-parallel ranks may be threads of one)
    if (!__atomic_exchange_n(&said_cpu, 1, __ATOMIC_ACQ_REL)) {
        char cpu[384];
        mt_cpu_summary(mt_model_get_kernels(s->model), cpu, sizeof cpu);
        mt_info("CPU: %s", cpu);
    }
    s->mcfg = *mt_model_get_config(s->model);
    MT_TRY(apply_activation_checkpointing(c, s->model));
    // (a 345M model's initialisation takes seconds: none where a strict load writes every value next,
    // the head's alone where an encoder checkpoint writes all others)
    if (s->weights_from_checkpoint) {
        // nothing to draw
    } else if (s->encoder_from_checkpoint) {
        mt_model_init_head_weights(s->model, (uint64_t)c->trainer.seed);
    } else {
        mt_model_init_weights(s->model, (uint64_t)c->trainer.seed);
    }
    mt_info("model: %s, %s, hidden %d, %d layers, %d heads, vocab %d (padded %d), head %s with %d layer(s), "
            "%zu parameters", name, s->mcfg.arch == MT_ARCH_MEGATRON ? "Megatron pre-LN" : "BERT post-LN",
            s->mcfg.hidden_size, s->mcfg.num_layers, s->mcfg.num_attention_heads, s->mcfg.vocab_size,
            s->mcfg.padded_vocab_size, s->mcfg.head_prefix, s->mcfg.head_num_layers,
            mt_model_params(s->model)->total_numel);
    return MT_OK;
}

void mt_session_free(mt_session *s) {
    if (!s) return;
    mt_model_free(s->model);
    mt_tokenizer_free(s->tok);
    s->model = NULL;
    s->tok = NULL;
}

int64_t mt_limit_batches(int64_t n_batches, const mt_cfg_num *limit) {
    if (limit->is_int) return (int64_t)limit->value < n_batches ? (int64_t)limit->value : n_batches;
    int64_t k = (int64_t)(n_batches * limit->value);
    if (limit->value > 0 && k < 1) k = 1;
    return k;
}

mt_status mt_evaluate(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                      mt_eval_result *out) {
    return mt_evaluate_ex(m, d, batch_size, max_batches, report, NULL, out);
}

mt_status mt_evaluate_ex(mt_model *m, const mt_dataset *d, int batch_size, int64_t max_batches, FILE *report,
                         const char *pred_dir, mt_eval_result *out) {
    memset(out, 0, sizeof *out);
    size_t n = mt_dataset_size(d);
    int64_t nb = (int64_t)((n + (size_t)batch_size - 1) / (size_t)batch_size);
    if (max_batches >= 0 && max_batches < nb) nb = max_batches;
    mt_metrics *met = NULL;
    MT_TRY(mt_metrics_create(d, &met));
    size_t *idx = mt_malloc((size_t)batch_size * sizeof *idx);
    mt_batch_buffer buf;
    memset(&buf, 0, sizeof buf);
    mt_status st = idx ? MT_OK : MT_ERR_NOMEM;
    double sum = 0;
    for (int64_t b = 0; b < nb && st == MT_OK; b++) {
        int k = 0;
        for (size_t i = (size_t)b * batch_size; i < n && k < batch_size; i++) idx[k++] = i;
        mt_batch batch;
        st = mt_dataset_make_batch(d, idx, k, &buf, &batch);
        if (st != MT_OK) break;
        float loss = 0;
        st = mt_model_forward(m, &batch, 0, 0, 0, &loss);
        if (st != MT_OK) break;
        sum += loss;
        size_t nl;
        const float *logits = mt_model_logits(m, &nl);
        st = mt_metrics_add(met, idx, k, &batch, logits);
    }
    if (st == MT_OK) {
        out->batches = out->local_batches = nb;
        out->loss = nb > 0 ? sum / (double)nb : NAN;
        out->n_metrics = nb > 0 ? mt_metrics_compute(met, out->metrics, 16) : 0;
        if (pred_dir && nb > 0) {
            st = mt_metrics_write_squad(met, pred_dir, NULL);
            if (st == MT_OK) mt_info("SQuAD prediction files written to %s", pred_dir);
        }
        // the report after the files: a run that cannot write them prints no scores before failing
        if (st == MT_OK && report && nb > 0) mt_metrics_print_report(met, report);
    }
    mt_batch_buffer_free(&buf);
    free(idx);
    mt_metrics_free(met);
    return st;
}
