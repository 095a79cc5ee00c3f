// NeMo's stock punctuation_capitalization and intent_slot_classification YAMLs (examples/*) load
// as they are: the task is recognised from their shape, their values reach the typed config
// (intent/slot's older optim.args.params.* spelling included), and the config's dump (what a .nemo
// stores) reads back with the task's keys and without the other tasks' keys.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/config.h"
#include "test_util.h"

static void load(mt_train_config *c, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/examples/%s", mt_test_env("MEGATUNE_SOURCE_DIR", "."), name);
    CHECK_OK(mt_config_init(c));
    CHECK_OK(mt_config_load_yaml(c, p));
}

static void roundtrip(const mt_train_config *c, const char *must, const char *must_not) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_OK(mt_config_dump(c, f, NULL));
    fclose(f);
    CHECK_MSG(strstr(buf, must) != NULL, "dump lacks '%s'", must);
    CHECK_MSG(strstr(buf, must_not) == NULL, "dump has '%s'", must_not);
    mt_train_config b;
    CHECK_OK(mt_config_init(&b));
    CHECK_OK(mt_config_load_yaml_text(&b, buf, len, "dump.yaml", "", 0));
    CHECK_OK(mt_config_finish(&b));
    CHECK(b.task && !strcmp(b.task, c->task));
    mt_config_free(&b);
    free(buf);
}

int main(void) {
    mt_train_config c;
    load(&c, "punctuation_capitalization_config.yaml");
    CHECK_OK(mt_config_override(&c, "model.dataset.data_dir=/data/pnc"));
    CHECK_OK(mt_config_finish(&c));
    CHECK(c.task && !strcmp(c.task, "punctuation_capitalization"));
    CHECK(c.model.joint.punct_head.num_fc_layers == 1 && c.model.joint.capit_head.num_fc_layers == 1);
    CHECK(c.model.joint.punct_head.fc_dropout == 0.1 && !strcmp(c.model.joint.capit_head.activation, "relu"));
    CHECK(c.model.optim.lr == 1e-4 && c.trainer.max_epochs == 3 && c.model.dataset.max_seq_length == 128);
    CHECK(!strcmp(c.model.joint.punct_labels_file, "punct_label_ids.csv"));
    CHECK(!strcmp(c.model.train_ds.text_file, "text_train.txt") && c.model.train_ds.batch_size == 64);
    CHECK(!strcmp(c.model.tokenizer.tokenizer_name, "bert-base-uncased")); // ${model.language_model...}
    roundtrip(&c, "punct_head:", "intent_loss_weight");
    mt_config_free(&c);

    load(&c, "intent_slot_classification_config.yaml");
    CHECK_OK(mt_config_override(&c, "model.data_dir=/data/atis"));
    CHECK_OK(mt_config_finish(&c));
    CHECK(c.task && !strcmp(c.task, "intent_slot_classification"));
    CHECK(c.model.joint.intent_loss_weight == 0.6 && c.model.joint.pad_label == -1);
    CHECK(c.model.joint.ignore_start_end == 1 && c.model.joint.ignore_extra_tokens == 0);
    CHECK(c.model.joint.max_seq_length == 50 && c.model.joint.num_output_layers == 2 && c.model.head.fc_dropout == 0.1);
    CHECK(!strcmp(c.model.joint.prefix[0], "train") && !strcmp(c.model.joint.prefix[1], "test"));
    CHECK_MSG(c.model.optim.weight_decay == 0.01, "optim.args.params.weight_decay not applied: %g",
              c.model.optim.weight_decay);
    CHECK(c.model.optim.sched.warmup_ratio == 0.1 && c.model.optim.lr == 2e-5 && c.trainer.max_epochs == 50);
    roundtrip(&c, "intent_loss_weight: 0.6", "punct_head");
    mt_config_free(&c);
    TEST_DONE();
}
