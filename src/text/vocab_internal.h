// The vocab's hash table, shared by vocab.c and tokenizer.c so that the WordPiece inner loop can
// inline the lookup. Keys are (continuation flag, bytes): "##abc" is stored as (1, "abc"), so a
// continuation piece is looked up without building the prefixed string.
#ifndef MT_TEXT_VOCAB_INTERNAL_H
#define MT_TEXT_VOCAB_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "text/tokenizer.h"

typedef struct {
    uint32_t hash; // high 32 bits of the key's hash (the low bits pick the slot)
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
    uint64_t bloom[(1u << 18) / 64];
};

// Keys are hashed as a polynomial over their bytes, finished by a 64-bit mixer: the WordPiece
// loop extends the polynomial one byte at a time, so the hashes of all candidate pieces starting
// at one position cost one pass instead of one pass each.
static inline uint64_t mt_vocab_poly_step(uint64_t h, unsigned char c) {
    return (h + c + 1) * 0x9E3779B97F4A7C15ull;
}

static inline uint64_t mt_vocab_hash_finish(uint64_t poly, size_t n, int cont) {
    uint64_t h = poly ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4Full) ^ (cont ? 0x165667B19E3779F9ull : 0);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t mt_vocab_hash(const unsigned char *p, size_t n, int cont) {
    uint64_t poly = 0;
    for (size_t i = 0; i < n; i++) poly = mt_vocab_poly_step(poly, p[i]);
    return mt_vocab_hash_finish(poly, n, cont);
}

// A 2-bit Bloom filter over all keys (32 KiB, stays in cache): most failed WordPiece candidates
// are rejected without touching the table.
#define MT_VOCAB_BLOOM_BITS 18
static inline int mt_vocab_bloom_maybe(const struct mt_vocab *v, uint64_t h) {
    uint64_t a = h & ((1u << MT_VOCAB_BLOOM_BITS) - 1), b = (h >> 24) & ((1u << MT_VOCAB_BLOOM_BITS) - 1);
    return (int)((v->bloom[a >> 6] >> (a & 63)) & (v->bloom[b >> 6] >> (b & 63)) & 1);
}

static inline void mt_vocab_bloom_add(struct mt_vocab *v, uint64_t h) {
    uint64_t a = h & ((1u << MT_VOCAB_BLOOM_BITS) - 1), b = (h >> 24) & ((1u << MT_VOCAB_BLOOM_BITS) - 1);
    v->bloom[a >> 6] |= 1ull << (a & 63);
    v->bloom[b >> 6] |= 1ull << (b & 63);
}

// id of the key (cont, p[0..n)) whose hash is h, or -1.
static inline int32_t mt_vocab_lookup_hashed(const struct mt_vocab *v, int cont, const char *p, size_t n, uint64_t h64) {
    if (!mt_vocab_bloom_maybe(v, h64)) return -1;
    uint32_t lenc = (uint32_t)n << 1 | (cont ? 1u : 0u);
    uint32_t h = (uint32_t)(h64 >> 32);
    for (uint32_t i = (uint32_t)h64 & v->mask;; i = (i + 1) & v->mask) {
        const mt_vocab_slot *s = &v->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == h && s->lenc == lenc && memcmp(v->arena + s->off, p, n) == 0) return s->id;
    }
}

// id of the key (cont, p[0..n)) or -1.
static inline int32_t mt_vocab_lookup(const struct mt_vocab *v, int cont, const char *p, size_t n) {
    if (n > v->max_key[cont ? 1 : 0]) return -1;
    return mt_vocab_lookup_hashed(v, cont, p, n, mt_vocab_hash((const unsigned char *)p, n, cont));
}

#endif
