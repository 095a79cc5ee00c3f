// Times mt_megatron_load_params on a Megatron checkpoint (bench/bench_ckpt_load.sh makes a
// 345M-shaped one): open + parse, and the full load into a fp32 parameter span.
// usage: bench_ckpt_load PATH LAYERS HIDDEN HEADS VOCAB SEQ [TP RANK]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt/source.h"
#include "ckpt/state_dict.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s PATH LAYERS HIDDEN HEADS VOCAB SEQ [TP RANK]\n", argv[0]);
        return 2;
    }
    mt_model_config c;
    mt_model_config_defaults(&c);
    c.num_layers = atoi(argv[2]);
    c.hidden_size = atoi(argv[3]);
    c.num_attention_heads = atoi(argv[4]);
    c.vocab_size = atoi(argv[5]);
    c.max_position_embeddings = atoi(argv[6]);
    if (argc > 8) {
        c.tp_size = atoi(argv[7]);
        c.tp_rank = atoi(argv[8]);
    }
    mt_param_table tab;
    if (mt_model_config_finalize(&c) != MT_OK || mt_param_table_build(&c, &tab) != MT_OK) {
        fprintf(stderr, "config: %s\n", mt_last_error());
        return 1;
    }
    float *span = mt_alloc_aligned(tab.total * sizeof(float));
    if (!span) return 1;
    for (size_t i = 0; i < tab.total; i += 1024) span[i] = 0; // fault the pages in before timing
    // memory-bandwidth floor: writing the fp32 span once
    double b0 = now();
    memset(span, 1, tab.total * sizeof(float));
    double b1 = now();
    double t0 = now();
    mt_ckpt_src *s;
    if (mt_ckpt_src_open(argv[1], NULL, &s) != MT_OK) {
        fprintf(stderr, "open: %s\n", mt_last_error());
        return 1;
    }
    double t1 = now();
    mt_ckpt_src_free(s);
    double t2 = now();
    mt_megatron_info info;
    if (mt_megatron_load_params(argv[1], &c, &tab, span, &info) != MT_OK) {
        fprintf(stderr, "load: %s\n", mt_last_error());
        return 1;
    }
    double t3 = now();
    printf("params=%zu (%.1f MiB fp32) open+parse=%.3f s load=%.3f s (memset of the span alone: %.3f s)\n",
           tab.total_numel, (double)tab.total_numel * 4 / 1048576.0, t1 - t0, t3 - t2, b1 - b0);
    mt_free_aligned(span);
    mt_param_table_free(&tab);
    return 0;
}
