// HF-compatibility exceptions to utf8proc's categories (module-internal; see hf_unicode.c).
#ifndef MT_TEXT_HF_UNICODE_INTERNAL_H
#define MT_TEXT_HF_UNICODE_INTERNAL_H

#include <stdint.h>

enum {
    MT_HF_PLAIN = 0,   // an ordinary character for HF (not control, punctuation or Mn)
    MT_HF_CONTROL = 1, // removed by cleaning
    MT_HF_PUNCT = 2,   // isolated as punctuation
    MT_HF_MARK = 3,    // non-spacing mark (removed when stripping accents)
    MT_HF_NEW = 4,     // unknown to HF (newer than Unicode 9.0): ordinary, no NFD, class 0
};

// HF's class for cp when it differs from what utf8proc's category implies, else -1.
int mt_text_hf_class(int32_t cp);
// The smallest code point with an entry (callers skip the lookup below it).
extern const int32_t mt_text_hf_first;

#endif
