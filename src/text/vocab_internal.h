// The vocab's hash table, shared by vocab.c and tokenizer.c so that the WordPiece inner loop can
// inline the lookup. Keys are (continuation flag, bytes): "##abc" is stored as (1, "abc"), so a
// continuation piece is looked up without building the prefixed string.
#ifndef MT_TEXT_VOCAB_INTERNAL_H
#define MT_TEXT_VOCAB_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "text/tokenizer.h"

typedef struct {
    uint32_t hash; // low 32 bits of the key's hash 
    uint32_t lenc; // key length in bytes << 1 | continuation flag
    uint32_t off;  // key offset in the arena
    int32_t id;    // -1: empty slot
} mt_vocab_slot;

struct mt_vocab {
    char *name;
    char *arena;        // the file's bytes; each token NUL-terminated in place
    uint32_t *tok_off;  // [n] offset of token id in the arena
    int32_t n;          // ids 0..n-1 (= lines)
    int32_t duplicates;
    mt_vocab_slot *slots;
    uint32_t mask;      // slots - 1 (power of two)
    uint32_t max_key[2]; // longest key, in bytes, without and with the "##" prefix
};

static inline uint64_t mt_vocab_hash(const unsigned char *p, size_t n, int cont) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xFF51AFD7ED558CCDull) ^ (cont ? 0xC2B2AE3D27D4EB4Full : 0);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94D049BB133111EBull;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
}

// id of the key (cont, p[0..n)) or -1.
static inline int32_t mt_vocab_lookup(const struct mt_vocab *v, int cont, const char *p, size_t n) {
    if (n > v->max_key[cont ? 1 : 0]) return -1;
    uint32_t lenc = (uint32_t)n << 1 | (cont ? 1u : 0u);
    uint32_t h = (uint32_t)mt_vocab_hash((const unsigned char *)p, n, cont);
    for (uint32_t i = h & v->mask;; i = (i + 1) & v->mask) {
        const mt_vocab_slot *s = &v->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == h && s->lenc == lenc && memcmp(v->arena + s->off, p, n) == 0) return s->id;
    }
}

#endif
