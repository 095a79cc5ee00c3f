// Reference kernels: plain fp32 loops, the ground truth opt/ is tested against.
#ifndef MT_KERNELS_REF_H
#define MT_KERNELS_REF_H
#include "kernels/kernels.h"

void mt_ref_embed_word_fwd(float *out, const int32_t *ids, const float *wte, int vstart, int vlocal, int N, int C);
void mt_ref_embed_word_bwd(float *dwte, const float *dout, const int32_t *ids, int vstart, int vlocal, int N, int C);
void mt_ref_embed_pos_type_fwd(float *out, const int32_t *types, const float *wpe, const float *wtt, int B, int T, int C);
void mt_ref_embed_pos_type_bwd(float *dwpe, float *dwtt, const float *dout, const int32_t *types, int B, int T, int C);
void mt_ref_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps);
void mt_ref_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C);
void mt_ref_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT);
void mt_ref_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int IN, int OUT);
void mt_ref_act_fwd(float *out, const float *inp, size_t n, mt_kact kind);
void mt_ref_act_bwd(float *dinp, const float *dout, const float *inp, size_t n, mt_kact kind);
void mt_ref_attention_fwd(float *out, float *probs, float *scratch, const float *qkv, const int32_t *mask,
                          mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop);
void mt_ref_attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                          const int32_t *mask, mt_mask_mode mode, int B, int T, int NH, int HS, int NHg, int h0,
                          const mt_dropout_site *drop);
void mt_ref_dropout_fwd(float *out, const float *inp, size_t n, uint64_t index0, const mt_dropout_site *d);
void mt_ref_bias_dropout_add_fwd(float *out, const float *res, const float *inp, const float *bias, size_t n, int C,
                                 const mt_dropout_site *d);
void mt_ref_dropout_bwd(float *dinp, const float *dout, size_t n, uint64_t index0, const mt_dropout_site *d);
#endif
