// Collective agreement on errors and on the configuration. A failure that only one rank sees (its
// data file unreadable, its config different) would otherwise leave the others blocked in the
// next collective, or training on silently different settings.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/comm.h"

mt_status mt_comm_agree(mt_comm *c, mt_status mine) {
    if (!c || c->size <= 1) return mine;
    // the lowest failing rank speaks for all: MAX over (size - rank) of the failing ranks
    float f = mine != MT_OK ? (float)(c->size - c->rank) : 0.0f;
    mt_status st = mt_all_reduce(c, &f, 1, MT_REDUCE_MAX);
    if (st != MT_OK) return st;
    if (f == 0.0f) return MT_OK;
    int who = c->size - (int)f;
    struct {
        int32_t code;
        char msg[1000];
    } m;
    memset(&m, 0, sizeof m);
    if (c->rank == who) {
        m.code = (int32_t)mine;
        snprintf(m.msg, sizeof m.msg, "%s", mt_last_error());
    }
    st = mt_broadcast(c, &m, sizeof m, who);
    if (st != MT_OK) return st;
    m.msg[sizeof m.msg - 1] = 0;
    return mt_fail((mt_status)m.code, "rank %d: %s", who, m.msg);
}

mt_status mt_comm_same_text(mt_comm *c, const char *text, size_t len, const char *what, const char *fix) {
    if (!c || c->size <= 1) return MT_OK;
    // rank 0's text to every rank (its length first), each compares its own
    uint64_t n0 = c->rank == 0 ? (uint64_t)len : 0;
    mt_status st = mt_broadcast(c, &n0, sizeof n0, 0);
    if (st != MT_OK) return st;
    char *ref = mt_malloc(n0 + 1);
    st = ref ? MT_OK : MT_ERR_NOMEM;
    if (ref && c->rank == 0) memcpy(ref, text, n0);
    // without a buffer this rank still takes part in the broadcasts (into a scratch block), then
    // votes its failure below: no rank is left waiting
    static char scratch[1 << 16];
    const size_t chunk = sizeof scratch;
    for (uint64_t off = 0; off < n0; off += chunk) {
        size_t k = n0 - off < chunk ? (size_t)(n0 - off) : chunk;
        mt_status b = mt_broadcast(c, ref ? ref + off : scratch, k, 0);
        if (b != MT_OK) {
            free(ref);
            return b;
        }
    }
    mt_status mine = st;
    if (ref && c->rank != 0 && (n0 != len || memcmp(ref, text, len))) {
        ref[n0] = 0;
        // the first line that differs, as both ranks have it
        size_t i = 0, line = 0, ln = 1;
        while (i < len && i < n0 && text[i] == ref[i]) {
            if (text[i] == '\n') { line = i + 1; ln++; }
            i++;
        }
        const char *a = text + line, *b = ref + line;
        int la = (int)strcspn(a, "\n"), lb = (int)strcspn(b, "\n");
        if (a + la > text + len) la = (int)(text + len - a);
        mine = mt_fail(MT_ERR_INVALID, "%s differs from global rank 0's at line %zu: here '%.*s', rank 0 '%.*s'; %s",
                       what, ln, la < 200 ? la : 200, a, lb < 200 ? lb : 200, b, fix);
    }
    free(ref);
    return mt_comm_agree(c, mine);
}
