// Pickle VM (protocols 0-2 plus the few protocol-4 opcodes newer torch may emit). It only
// builds data: GLOBAL pushes a name, REDUCE/NEWOBJ/BUILD on a name we do not model produce an
// inert object. Every count, length and index is checked against the input and fixed caps.
#include "ckpt/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PK_MAX_VALUES ((size_t)64 << 20)  // objects per parse
#define PK_MAX_STACK ((size_t)16 << 20)   // stack entries
#define PK_MAX_MARKS ((size_t)1 << 20)
#define PK_MEMO_SLACK 65536               // memo indices may run at most this far ahead
// Memory is bounded by the input, not only by counts: a one-byte opcode can create a ~150-byte
// value, so 128 MB of EMPTY_LIST/APPEND pairs would otherwise build ~10 GB. torch's pickles
// need a few hundred bytes of values per tensor (a few times their own size); the fixed part
// covers small files, the per-byte part any real checkpoint.
#define PK_BUDGET_BASE ((size_t)64 << 20)
#define PK_BUDGET_PER_BYTE 8
#define PK_VALUE_COST (sizeof(mt_pv) + 32) // the value plus malloc's bookkeeping

struct mt_pickle {
    mt_pv **vals;
    size_t nvals, capvals;
    // storages by key (open addressing)
    mt_pv **stab;
    size_t scap, scount;
    size_t used, budget; // bytes charged to this arena / allowed (grows with each parse's input)
    int over;            // the budget was exceeded (the parse reports it)
};

// Charges n bytes to the arena; fails (once the caller reports it) when over budget.
static int pk_charge(mt_pickle *pk, size_t n) {
    if (pk->used > pk->budget || n > pk->budget - pk->used) {
        pk->over = 1;
        return 0;
    }
    pk->used += n;
    return 1;
}

mt_pickle *mt_pickle_new(void) { return mt_calloc(1, sizeof(mt_pickle)); }

void mt_pickle_free(mt_pickle *pk) {
    if (!pk) return;
    for (size_t i = 0; i < pk->nvals; i++) {
        mt_pv *v = pk->vals[i];
        free(v->s);
        free(v->items);
        free(v->key);
        free(v->t);
        free(v);
    }
    free(pk->vals);
    free(pk->stab);
    free(pk);
}

size_t mt_pickle_count(const mt_pickle *pk) { return pk->nvals; }
mt_pv *mt_pickle_value(const mt_pickle *pk, size_t i) { return i < pk->nvals ? pk->vals[i] : NULL; }

static mt_pv *pv_new(mt_pickle *pk, mt_pv_kind kind) {
    if (pk->nvals >= PK_MAX_VALUES) {
        mt_fail(MT_ERR_FORMAT, "more than %zu objects", PK_MAX_VALUES);
        return NULL;
    }
    if (!pk_charge(pk, PK_VALUE_COST)) return NULL;
    if (pk->nvals == pk->capvals) {
        size_t cap = pk->capvals ? pk->capvals * 2 : 256;
        if (!pk_charge(pk, (cap - pk->capvals) * sizeof(mt_pv *))) return NULL;
        mt_pv **v = mt_realloc(pk->vals, cap * sizeof *v);
        if (!v) return NULL;
        pk->vals = v;
        pk->capvals = cap;
    }
    mt_pv *v = mt_calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    pk->vals[pk->nvals++] = v;
    return v;
}

static mt_status pv_push_item(mt_pickle *pk, mt_pv *c, mt_pv *item) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        if (!pk_charge(pk, (cap - c->cap) * sizeof(mt_pv *))) return MT_ERR_NOMEM;
        mt_pv **it = mt_realloc(c->items, cap * sizeof *it);
        if (!it) return MT_ERR_NOMEM;
        c->items = it;
        c->cap = cap;
    }
    c->items[c->n++] = item;
    return MT_OK;
}

static mt_status dict_set(mt_pickle *pk, mt_pv *d, mt_pv *k, mt_pv *v) {
    // Python semantics: an existing string key is replaced in place. Checked only for dicts of
    // ordinary size so that a hostile million-key dict cannot cost quadratic time.
    if (k->kind == MT_PV_STR && d->n < 4096)
        for (size_t i = 0; i < d->n; i++) {
            mt_pv *ek = d->items[2 * i];
            if (ek->kind == MT_PV_STR && ek->slen == k->slen && !memcmp(ek->s, k->s, k->slen)) {
                d->items[2 * i + 1] = v;
                return MT_OK;
            }
        }
    if (2 * d->n + 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        if (!pk_charge(pk, (cap - d->cap) * sizeof(mt_pv *))) return MT_ERR_NOMEM;
        mt_pv **it = mt_realloc(d->items, cap * sizeof *it);
        if (!it) return MT_ERR_NOMEM;
        d->items = it;
        d->cap = cap;
    }
    d->items[2 * d->n] = k;
    d->items[2 * d->n + 1] = v;
    d->n++;
    return MT_OK;
}

mt_pv *mt_pv_get(const mt_pv *d, const char *key) {
    if (!d || d->kind != MT_PV_DICT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < d->n; i++) {
        mt_pv *k = d->items[2 * i];
        if (k->kind == MT_PV_STR && k->slen == kl && !memcmp(k->s, key, kl)) return d->items[2 * i + 1];
    }
    return NULL;
}

mt_pv *mt_pv_attr(const mt_pv *obj, const char *name) {
    if (!obj) return NULL;
    if (obj->kind == MT_PV_DICT) return mt_pv_get(obj, name);
    if (obj->kind == MT_PV_OBJECT && obj->state) {
        if (obj->state->kind == MT_PV_DICT) return mt_pv_get(obj->state, name);
        // (dict_state, slots_state) form
        if (obj->state->kind == MT_PV_TUPLE && obj->state->n == 2) {
            mt_pv *v = mt_pv_get(obj->state->items[0], name);
            return v ? v : mt_pv_get(obj->state->items[1], name);
        }
    }
    return NULL;
}

int mt_pv_is_number(const mt_pv *v) {
    return v && (v->kind == MT_PV_INT || v->kind == MT_PV_FLOAT || v->kind == MT_PV_BOOL);
}
double mt_pv_number(const mt_pv *v) {
    if (!v) return 0;
    return v->kind == MT_PV_FLOAT ? v->f : (double)v->i;
}

const char *mt_pv_kind_name(mt_pv_kind k) {
    static const char *n[] = {"None", "bool", "int", "float", "str", "bytes", "list", "tuple", "dict",
                              "global", "object", "storage", "tensor", "mark"};
    return (unsigned)k <= MT_PV_MARK ? n[k] : "?";
}

// ---- storage table -------------------------------------------------------------------------

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static mt_pv *storage_find(mt_pickle *pk, const char *key) {
    if (!pk->scap) return NULL;
    for (size_t i = str_hash(key) & (pk->scap - 1);; i = (i + 1) & (pk->scap - 1)) {
        if (!pk->stab[i]) return NULL;
        if (!strcmp(pk->stab[i]->key, key)) return pk->stab[i];
    }
}

static mt_status storage_add(mt_pickle *pk, mt_pv *s) {
    if (2 * (pk->scount + 1) > pk->scap) {
        size_t cap = pk->scap ? pk->scap * 2 : 64;
        mt_pv **t = mt_calloc(cap, sizeof *t);
        if (!t) return MT_ERR_NOMEM;
        for (size_t j = 0; j < pk->scap; j++)
            if (pk->stab[j]) {
                size_t i = str_hash(pk->stab[j]->key) & (cap - 1);
                while (t[i]) i = (i + 1) & (cap - 1);
                t[i] = pk->stab[j];
            }
        free(pk->stab);
        pk->stab = t;
        pk->scap = cap;
    }
    size_t i = str_hash(s->key) & (pk->scap - 1);
    while (pk->stab[i]) i = (i + 1) & (pk->scap - 1);
    pk->stab[i] = s;
    pk->scount++;
    return MT_OK;
}

mt_pv *mt_pickle_find_storage(mt_pickle *pk, const char *key) { return storage_find(pk, key); }

// ---- the VM ------------------------------------------------------------------------------

typedef struct {
    mt_pickle *pk;
    const uint8_t *buf;
    size_t len, pos, op_pos;
    const char *what;
    int legacy;
    mt_pv **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    mt_pv **memo;
    size_t nmemo, memocap;
} vm;

#define VM_FAIL(code, ...) vm_fail(m, code, __VA_ARGS__)

static mt_status vm_fail(vm *m, mt_status code, const char *fmt, ...) MT_PRINTF(3, 4);
static mt_status vm_fail(vm *m, mt_status code, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_fail(code, "%s: pickle byte %zu (opcode 0x%02x): %s", m->what, m->op_pos,
                   m->op_pos < m->len ? m->buf[m->op_pos] : 0, msg);
}

static mt_status push(vm *m, mt_pv *v) {
    if (!v) return MT_ERR_NOMEM;
    if (m->sp == m->scap) {
        if (m->scap >= PK_MAX_STACK) return VM_FAIL(MT_ERR_FORMAT, "stack deeper than %zu", PK_MAX_STACK);
        size_t cap = m->scap ? m->scap * 2 : 64;
        if (!pk_charge(m->pk, (cap - m->scap) * sizeof(mt_pv *))) return MT_ERR_NOMEM;
        mt_pv **s = mt_realloc(m->stack, cap * sizeof *s);
        if (!s) return MT_ERR_NOMEM;
        m->stack = s;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return MT_OK;
}

static mt_status pop(vm *m, mt_pv **out) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) return VM_FAIL(MT_ERR_FORMAT, "stack underflow");
    *out = m->stack[--m->sp];
    return MT_OK;
}

static mt_status top(vm *m, mt_pv **out) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) return VM_FAIL(MT_ERR_FORMAT, "stack underflow");
    *out = m->stack[m->sp - 1];
    return MT_OK;
}

// Pops everything above the last MARK; items at m->stack[*from .. m->sp) until the caller
// resets sp.
static mt_status pop_mark(vm *m, size_t *from) {
    if (!m->nmarks) return VM_FAIL(MT_ERR_FORMAT, "no MARK on the stack");
    *from = m->marks[--m->nmarks];
    return MT_OK;
}

static mt_status need(vm *m, size_t n) {
    if (n > m->len - m->pos) return VM_FAIL(MT_ERR_FORMAT, "truncated: needs %zu more bytes, %zu left", n, m->len - m->pos);
    return MT_OK;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static mt_pv *mk_str(vm *m, mt_pv_kind kind, const uint8_t *p, size_t n) {
    mt_pv *v = pv_new(m->pk, kind);
    if (!v || !pk_charge(m->pk, n + 1)) return NULL;
    v->s = mt_malloc(n + 1);
    if (!v->s) return NULL;
    memcpy(v->s, p, n);
    v->s[n] = 0;
    v->slen = n;
    return v;
}

static mt_pv *mk_int(vm *m, int64_t x) {
    mt_pv *v = pv_new(m->pk, MT_PV_INT);
    if (v) v->i = x;
    return v;
}

// Reads a '\n'-terminated line (text opcodes).
static mt_status read_line(vm *m, const uint8_t **s, size_t *n) {
    const uint8_t *p = m->buf + m->pos, *e = memchr(p, '\n', m->len - m->pos);
    if (!e) return VM_FAIL(MT_ERR_FORMAT, "unterminated text line");
    *s = p;
    *n = (size_t)(e - p);
    m->pos += *n + 1;
    return MT_OK;
}

static mt_status memo_put(vm *m, uint64_t idx) {
    mt_pv *v = NULL;
    MT_TRY(top(m, &v));
    if (idx > m->nmemo + PK_MEMO_SLACK) return VM_FAIL(MT_ERR_FORMAT, "memo index %llu far beyond the %zu entries so far", (unsigned long long)idx, m->nmemo);
    if (idx >= m->memocap) {
        size_t cap = m->memocap ? m->memocap : 64;
        while (cap <= idx) cap *= 2;
        if (!pk_charge(m->pk, (cap - m->memocap) * sizeof(mt_pv *))) return MT_ERR_NOMEM;
        mt_pv **mm = mt_realloc(m->memo, cap * sizeof *mm);
        if (!mm) return MT_ERR_NOMEM;
        memset(mm + m->memocap, 0, (cap - m->memocap) * sizeof *mm);
        m->memo = mm;
        m->memocap = cap;
    }
    m->memo[idx] = v;
    if (idx >= m->nmemo) m->nmemo = idx + 1;
    return MT_OK;
}

static mt_status memo_get(vm *m, uint64_t idx) {
    if (idx >= m->nmemo || !m->memo[idx])
        return VM_FAIL(MT_ERR_FORMAT, "memo index %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static int global_is(const mt_pv *g, const char *name) {
    return g && g->kind == MT_PV_GLOBAL && !strcmp(g->s, name);
}

static int is_int(const mt_pv *v) { return v && (v->kind == MT_PV_INT || v->kind == MT_PV_BOOL); }

static mt_status int_tuple(vm *m, const mt_pv *t, int64_t *out, int *n, const char *what) {
    if (!t || (t->kind != MT_PV_TUPLE && t->kind != MT_PV_LIST))
        return VM_FAIL(MT_ERR_FORMAT, "tensor %s is not a tuple", what);
    if (t->n > MT_CKPT_MAX_DIMS) return VM_FAIL(MT_ERR_UNSUPPORTED, "tensor %s has %zu dimensions", what, t->n);
    for (size_t i = 0; i < t->n; i++) {
        if (!is_int(t->items[i])) return VM_FAIL(MT_ERR_FORMAT, "tensor %s[%zu] is not an int", what, i);
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return MT_OK;
}

static mt_status rebuild_tensor(vm *m, const mt_pv *args, mt_pv **out) {
    if (!args || args->kind != MT_PV_TUPLE || args->n < 4)
        return VM_FAIL(MT_ERR_FORMAT, "_rebuild_tensor needs (storage, offset, size, stride, ...)");
    mt_pv *st = args->items[0];
    if (st->kind != MT_PV_STORAGE) return VM_FAIL(MT_ERR_FORMAT, "tensor storage is a %s, not a storage", mt_pv_kind_name(st->kind));
    if (!is_int(args->items[1])) return VM_FAIL(MT_ERR_FORMAT, "tensor storage offset is not an int");
    mt_ckpt_tensor *t = mt_calloc(1, sizeof *t);
    if (!t) return MT_ERR_NOMEM;
    mt_pv *v = pv_new(m->pk, MT_PV_TENSOR);
    if (!v) {
        free(t);
        return MT_ERR_NOMEM;
    }
    v->t = t;
    v->root = st;
    t->dtype = st->dtype;
    t->offset = args->items[1]->i;
    t->storage_key = st->key;
    int nd = 0, ns = 0;
    MT_TRY(int_tuple(m, args->items[2], t->shape, &nd, "size"));
    MT_TRY(int_tuple(m, args->items[3], t->stride, &ns, "stride"));
    if (nd != ns) return VM_FAIL(MT_ERR_FORMAT, "tensor has %d sizes but %d strides", nd, ns);
    t->ndim = nd;
    *out = v;
    return MT_OK;
}

// REDUCE / NEWOBJ: only a handful of callables are modelled; everything else becomes inert.
static mt_status call(vm *m, mt_pv *fn, mt_pv *args, mt_pv **out) {
    if (global_is(fn, "torch._utils._rebuild_tensor_v2") || global_is(fn, "torch._utils._rebuild_tensor"))
        return rebuild_tensor(m, args, out);
    if (global_is(fn, "torch._utils._rebuild_parameter") ||
        global_is(fn, "torch._utils._rebuild_parameter_with_state")) {
        if (!args || args->kind != MT_PV_TUPLE || args->n < 1 || args->items[0]->kind != MT_PV_TENSOR)
            return VM_FAIL(MT_ERR_FORMAT, "_rebuild_parameter needs a tensor argument");
        *out = args->items[0];
        return MT_OK;
    }
    if (global_is(fn, "collections.OrderedDict") || global_is(fn, "builtins.dict") ||
        global_is(fn, "__builtin__.dict")) {
        mt_pv *d = pv_new(m->pk, MT_PV_DICT);
        if (!d) return MT_ERR_NOMEM;
        d->ordered = fn->s[0] == 'c';
        *out = d;
        return MT_OK; // items (if any) come by SETITEMS; args of OrderedDict() are always empty here
    }
    if (global_is(fn, "_codecs.encode") && args && args->kind == MT_PV_TUPLE && args->n >= 1 &&
        args->items[0]->kind == MT_PV_STR) {
        // bytes pickled as _codecs.encode(text, 'latin1'): map code points < 256 to bytes.
        const mt_pv *s = args->items[0];
        mt_pv *b = pv_new(m->pk, MT_PV_BYTES);
        if (!b || !pk_charge(m->pk, s->slen + 1)) return MT_ERR_NOMEM;
        b->s = mt_malloc(s->slen + 1);
        if (!b->s) return MT_ERR_NOMEM;
        size_t n = 0;
        for (size_t i = 0; i < s->slen; i++) {
            unsigned char c = (unsigned char)s->s[i];
            if (c < 0x80) b->s[n++] = (char)c;
            else if ((c & 0xe0) == 0xc0 && i + 1 < s->slen) {
                b->s[n++] = (char)(((c & 0x1f) << 6) | ((unsigned char)s->s[i + 1] & 0x3f));
                i++;
            } else b->s[n++] = '?';
        }
        b->s[n] = 0;
        b->slen = n;
        *out = b;
        return MT_OK;
    }
    mt_pv *o = pv_new(m->pk, MT_PV_OBJECT);
    if (!o) return MT_ERR_NOMEM;
    const char *name = fn->kind == MT_PV_GLOBAL || fn->kind == MT_PV_OBJECT ? fn->s : "<call>";
    o->s = mt_strdup(name ? name : "<call>");
    if (!o->s) return MT_ERR_NOMEM;
    o->slen = strlen(o->s);
    o->args = args;
    *out = o;
    return MT_OK;
}

static mt_status persistent_load(vm *m, mt_pv *pid, mt_pv **out) {
    if (!pid || pid->kind != MT_PV_TUPLE || pid->n < 1 || pid->items[0]->kind != MT_PV_STR)
        return VM_FAIL(MT_ERR_FORMAT, "persistent id is not a ('storage', ...) tuple");
    if (strcmp(pid->items[0]->s, "storage") != 0)
        return VM_FAIL(MT_ERR_UNSUPPORTED, "persistent id of type '%s' (whole pickled modules are not supported; "
                       "save a state_dict instead)", pid->items[0]->s);
    size_t want = m->legacy ? 6 : 5;
    if (pid->n != want) return VM_FAIL(MT_ERR_FORMAT, "storage persistent id has %zu fields, expected %zu", pid->n, want);
    mt_pv *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    if (type->kind != MT_PV_GLOBAL || key->kind != MT_PV_STR || !is_int(numel) || numel->i < 0)
        return VM_FAIL(MT_ERR_FORMAT, "malformed storage persistent id (type, key, numel)");
    const char *tn = strrchr(type->s, '.');
    tn = tn ? tn + 1 : type->s;
    mt_dtype dt;
    if (!mt_dtype_from_torch_storage(tn, &dt)) {
        if (!strcmp(tn, "UntypedStorage")) dt = MT_DT_U8;
        else return VM_FAIL(MT_ERR_UNSUPPORTED, "storage type '%s' is not supported", type->s);
    }
    mt_pv *st = storage_find(m->pk, key->s);
    if (st) {
        if (st->dtype != dt) return VM_FAIL(MT_ERR_FORMAT, "storage '%s' used with two dtypes", key->s);
    } else {
        st = pv_new(m->pk, MT_PV_STORAGE);
        if (!st) return MT_ERR_NOMEM;
        st->dtype = dt;
        st->key = mt_strdup(key->s);
        if (!st->key) return MT_ERR_NOMEM;
        st->numel = numel->i;
        MT_TRY(storage_add(m->pk, st));
    }
    if (m->legacy && pid->items[5]->kind == MT_PV_TUPLE) {
        // (view_key, offset, view_size): a view into the root storage
        mt_pv *vm_ = pid->items[5];
        if (vm_->n != 3 || vm_->items[0]->kind != MT_PV_STR || !is_int(vm_->items[1]) || !is_int(vm_->items[2]) ||
            vm_->items[1]->i < 0 || vm_->items[2]->i < 0)
            return VM_FAIL(MT_ERR_FORMAT, "malformed legacy storage view metadata");
        mt_pv *view = storage_find(m->pk, vm_->items[0]->s);
        if (!view) {
            view = pv_new(m->pk, MT_PV_STORAGE);
            if (!view) return MT_ERR_NOMEM;
            view->dtype = dt;
            view->key = mt_strdup(vm_->items[0]->s);
            if (!view->key) return MT_ERR_NOMEM;
            view->numel = vm_->items[2]->i;
            view->view_offset = vm_->items[1]->i;
            view->root = st;
            MT_TRY(storage_add(m->pk, view));
        }
        st = view;
    }
    *out = st;
    return MT_OK;
}

static mt_status make_seq(vm *m, mt_pv_kind kind, size_t from, mt_pv **out) {
    mt_pv *t = pv_new(m->pk, kind);
    if (!t) return MT_ERR_NOMEM;
    for (size_t i = from; i < m->sp; i++) MT_TRY(pv_push_item(m->pk, t, m->stack[i]));
    m->sp = from;
    *out = t;
    return MT_OK;
}

static mt_status setitems(vm *m, mt_pv *d, size_t from) {
    if ((m->sp - from) % 2) return VM_FAIL(MT_ERR_FORMAT, "odd number of items for SETITEMS");
    if (d->kind == MT_PV_DICT) {
        for (size_t i = from; i < m->sp; i += 2) MT_TRY(dict_set(m->pk, d, m->stack[i], m->stack[i + 1]));
    } else if (d->kind == MT_PV_OBJECT) {
        for (size_t i = from; i < m->sp; i++) MT_TRY(pv_push_item(m->pk, d, m->stack[i])); // inert
    } else return VM_FAIL(MT_ERR_FORMAT, "SETITEM on a %s", mt_pv_kind_name(d->kind));
    m->sp = from;
    return MT_OK;
}

static mt_status appends(vm *m, mt_pv *l, size_t from) {
    if (l->kind != MT_PV_LIST && l->kind != MT_PV_OBJECT)
        return VM_FAIL(MT_ERR_FORMAT, "APPEND on a %s", mt_pv_kind_name(l->kind));
    for (size_t i = from; i < m->sp; i++) MT_TRY(pv_push_item(m->pk, l, m->stack[i]));
    m->sp = from;
    return MT_OK;
}

static mt_status parse_text_int(vm *m, const uint8_t *s, size_t n, int64_t *out) {
    char tmp[64];
    if (n && s[n - 1] == 'L') n--; // py2 long suffix
    if (n == 0 || n >= sizeof tmp) return VM_FAIL(MT_ERR_FORMAT, "bad text integer");
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    long long v = strtoll(tmp, &end, 10);
    if (*end) return VM_FAIL(MT_ERR_FORMAT, "bad text integer '%s'", tmp);
    *out = v;
    return MT_OK;
}

static mt_status run(vm *m, mt_pv **result) {
    mt_pv *a = NULL, *b = NULL, *c = NULL;
    size_t from = 0;
    while (m->pos < m->len) {
        m->op_pos = m->pos;
        uint8_t op = m->buf[m->pos++];
        switch (op) {
        case 0x80: // PROTO
            MT_TRY(need(m, 1));
            if (m->buf[m->pos] > 5) return VM_FAIL(MT_ERR_UNSUPPORTED, "pickle protocol %d", m->buf[m->pos]);
            m->pos++;
            break;
        case 0x95: // FRAME (protocol 4): just a length hint
            MT_TRY(need(m, 8));
            m->pos += 8;
            break;
        case '.': // STOP
            MT_TRY(pop(m, result));
            return MT_OK;
        case '(':
            if (m->nmarks == m->mcap) {
                if (m->mcap >= PK_MAX_MARKS) return VM_FAIL(MT_ERR_FORMAT, "too many nested MARKs");
                size_t cap = m->mcap ? m->mcap * 2 : 32;
                size_t *mk = mt_realloc(m->marks, cap * sizeof *mk);
                if (!mk) return MT_ERR_NOMEM;
                m->marks = mk;
                m->mcap = cap;
            }
            m->marks[m->nmarks++] = m->sp;
            break;
        case '0': MT_TRY(pop(m, &a)); break; // POP
        case '1': MT_TRY(pop_mark(m, &from)); m->sp = from; break; // POP_MARK
        case '2': MT_TRY(top(m, &a)); MT_TRY(push(m, a)); break;   // DUP
        case '}': MT_TRY(push(m, pv_new(m->pk, MT_PV_DICT))); break;
        case ']': MT_TRY(push(m, pv_new(m->pk, MT_PV_LIST))); break;
        case ')': MT_TRY(push(m, pv_new(m->pk, MT_PV_TUPLE))); break;
        case 0x8f: MT_TRY(push(m, pv_new(m->pk, MT_PV_LIST))); break; // EMPTY_SET (as a list)
        case 'N': MT_TRY(push(m, pv_new(m->pk, MT_PV_NONE))); break;
        case 0x88: case 0x89:
            a = pv_new(m->pk, MT_PV_BOOL);
            if (a) a->i = op == 0x88;
            MT_TRY(push(m, a));
            break;
        case 'K': MT_TRY(need(m, 1)); MT_TRY(push(m, mk_int(m, m->buf[m->pos]))); m->pos += 1; break;
        case 'M': MT_TRY(need(m, 2)); MT_TRY(push(m, mk_int(m, (int64_t)rd_le(m->buf + m->pos, 2)))); m->pos += 2; break;
        case 'J':
            MT_TRY(need(m, 4));
            MT_TRY(push(m, mk_int(m, (int32_t)(uint32_t)rd_le(m->buf + m->pos, 4))));
            m->pos += 4;
            break;
        case 0x8a: case 0x8b: { // LONG1 / LONG4
            size_t w = op == 0x8a ? 1 : 4;
            MT_TRY(need(m, w));
            uint64_t n = rd_le(m->buf + m->pos, (int)w);
            m->pos += w;
            MT_TRY(need(m, n));
            if (n <= 8) {
                uint64_t v = n ? rd_le(m->buf + m->pos, (int)n) : 0;
                if (n && n < 8 && (m->buf[m->pos + n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
                MT_TRY(push(m, mk_int(m, (int64_t)v)));
            } else {
                // e.g. torch's legacy magic number 0x1950a86a20f9469cfc6c: kept as inert bytes
                a = mk_str(m, MT_PV_OBJECT, m->buf + m->pos, n);
                if (a) {
                    free(a->s);
                    a->s = mt_strdup("long");
                    a->slen = a->s ? 4 : 0;
                }
                MT_TRY(push(m, a));
            }
            m->pos += n;
            break;
        }
        case 'I': case 'L': { // text INT / LONG
            const uint8_t *s = NULL;
            size_t n = 0;
            int64_t v = 0;
            MT_TRY(read_line(m, &s, &n));
            if (op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) {
                a = pv_new(m->pk, MT_PV_BOOL);
                if (a) a->i = s[1] == '1';
                MT_TRY(push(m, a));
                break;
            }
            MT_TRY(parse_text_int(m, s, n, &v));
            MT_TRY(push(m, mk_int(m, v)));
            break;
        }
        case 'G': {
            MT_TRY(need(m, 8));
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++) bits = (bits << 8) | m->buf[m->pos + i]; // big-endian
            m->pos += 8;
            a = pv_new(m->pk, MT_PV_FLOAT);
            if (a) memcpy(&a->f, &bits, 8);
            MT_TRY(push(m, a));
            break;
        }
        case 'F': {
            const uint8_t *s = NULL;
            size_t n = 0;
            char tmp[64];
            MT_TRY(read_line(m, &s, &n));
            if (n >= sizeof tmp) return VM_FAIL(MT_ERR_FORMAT, "bad text float");
            memcpy(tmp, s, n);
            tmp[n] = 0;
            a = pv_new(m->pk, MT_PV_FLOAT);
            if (a) a->f = strtod(tmp, NULL);
            MT_TRY(push(m, a));
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: {
            int w = op == 0x8c || op == 'U' || op == 'C' ? 1 : op == 0x8d || op == 0x8e ? 8 : 4;
            MT_TRY(need(m, (size_t)w));
            uint64_t n = rd_le(m->buf + m->pos, w);
            if (op == 'T' && n > 0x7fffffffu) return VM_FAIL(MT_ERR_FORMAT, "negative string length");
            m->pos += (size_t)w;
            MT_TRY(need(m, n));
            mt_pv_kind k = op == 'B' || op == 'C' || op == 0x8e ? MT_PV_BYTES : MT_PV_STR;
            MT_TRY(push(m, mk_str(m, k, m->buf + m->pos, n)));
            m->pos += n;
            break;
        }
        case 'V': case 'S': { // text UNICODE / STRING (escapes are kept verbatim)
            const uint8_t *s = NULL;
            size_t n = 0;
            MT_TRY(read_line(m, &s, &n));
            if (op == 'S' && n >= 2 && (s[0] == '\'' || s[0] == '"')) {
                s++;
                n -= 2;
            }
            MT_TRY(push(m, mk_str(m, MT_PV_STR, s, n)));
            break;
        }
        case 't': MT_TRY(pop_mark(m, &from)); MT_TRY(make_seq(m, MT_PV_TUPLE, from, &a)); MT_TRY(push(m, a)); break;
        case 'l': MT_TRY(pop_mark(m, &from)); MT_TRY(make_seq(m, MT_PV_LIST, from, &a)); MT_TRY(push(m, a)); break;
        case 0x85: case 0x86: case 0x87: {
            size_t n = (size_t)(op - 0x84);
            size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
            if (m->sp < floor + n) return VM_FAIL(MT_ERR_FORMAT, "stack underflow");
            MT_TRY(make_seq(m, MT_PV_TUPLE, m->sp - n, &a));
            MT_TRY(push(m, a));
            break;
        }
        case 'd':
            MT_TRY(pop_mark(m, &from));
            a = pv_new(m->pk, MT_PV_DICT);
            if (!a) return MT_ERR_NOMEM;
            MT_TRY(setitems(m, a, from));
            MT_TRY(push(m, a));
            break;
        case 's':
            MT_TRY(pop(m, &b));
            MT_TRY(pop(m, &a));
            MT_TRY(top(m, &c));
            MT_TRY(push(m, a));
            MT_TRY(push(m, b));
            MT_TRY(setitems(m, c, m->sp - 2));
            break;
        case 'u':
            MT_TRY(pop_mark(m, &from));
            if (from == 0 || (m->nmarks && from <= m->marks[m->nmarks - 1]))
                return VM_FAIL(MT_ERR_FORMAT, "SETITEMS without a dict below the MARK");
            MT_TRY(setitems(m, m->stack[from - 1], from));
            break;
        case 'a':
            MT_TRY(pop(m, &b));
            MT_TRY(top(m, &a));
            MT_TRY(push(m, b));
            MT_TRY(appends(m, a, m->sp - 1));
            break;
        case 'e': case 0x90: // APPENDS, ADDITEMS
            MT_TRY(pop_mark(m, &from));
            if (from == 0 || (m->nmarks && from <= m->marks[m->nmarks - 1]))
                return VM_FAIL(MT_ERR_FORMAT, "APPENDS without a list below the MARK");
            MT_TRY(appends(m, m->stack[from - 1], from));
            break;
        case 'c': case 'i': { // GLOBAL / INST
            const uint8_t *mod = NULL, *name = NULL;
            size_t nm = 0, nn = 0;
            MT_TRY(read_line(m, &mod, &nm));
            MT_TRY(read_line(m, &name, &nn));
            a = mk_str(m, MT_PV_GLOBAL, mod, nm + 1 + nn);
            if (!a) return MT_ERR_NOMEM;
            a->s[nm] = '.';
            memcpy(a->s + nm + 1, name, nn);
            if (memchr(a->s, 0, a->slen)) return VM_FAIL(MT_ERR_FORMAT, "NUL byte in a global name");
            if (op == 'c') {
                MT_TRY(push(m, a));
            } else {
                MT_TRY(pop_mark(m, &from));
                MT_TRY(make_seq(m, MT_PV_TUPLE, from, &b));
                MT_TRY(call(m, a, b, &c));
                MT_TRY(push(m, c));
            }
            break;
        }
        case 0x93: { // STACK_GLOBAL
            MT_TRY(pop(m, &b));
            MT_TRY(pop(m, &a));
            if (a->kind != MT_PV_STR || b->kind != MT_PV_STR) return VM_FAIL(MT_ERR_FORMAT, "STACK_GLOBAL needs two strings");
            c = pv_new(m->pk, MT_PV_GLOBAL);
            if (!c || !pk_charge(m->pk, a->slen + b->slen + 2)) return MT_ERR_NOMEM;
            c->slen = a->slen + 1 + b->slen;
            c->s = mt_malloc(c->slen + 1);
            if (!c->s) return MT_ERR_NOMEM;
            snprintf(c->s, c->slen + 1, "%s.%s", a->s, b->s);
            c->slen = strlen(c->s);
            MT_TRY(push(m, c));
            break;
        }
        case 'o': { // OBJ: MARK cls args... 
            MT_TRY(pop_mark(m, &from));
            if (m->sp <= from) return VM_FAIL(MT_ERR_FORMAT, "OBJ without a class");
            a = m->stack[from];
            MT_TRY(make_seq(m, MT_PV_TUPLE, from + 1, &b));
            m->sp = from;
            MT_TRY(call(m, a, b, &c));
            MT_TRY(push(m, c));
            break;
        }
        case 'R': case 0x81: // REDUCE, NEWOBJ
            MT_TRY(pop(m, &b));
            MT_TRY(pop(m, &a));
            if (a->kind != MT_PV_GLOBAL && a->kind != MT_PV_OBJECT)
                return VM_FAIL(MT_ERR_FORMAT, "%s on a %s, not a callable", op == 'R' ? "REDUCE" : "NEWOBJ",
                               mt_pv_kind_name(a->kind));
            if (b->kind != MT_PV_TUPLE) return VM_FAIL(MT_ERR_FORMAT, "call arguments are a %s, not a tuple", mt_pv_kind_name(b->kind));
            MT_TRY(call(m, a, b, &c));
            MT_TRY(push(m, c));
            break;
        case 0x92: // NEWOBJ_EX cls args kwargs
            MT_TRY(pop(m, &c));
            MT_TRY(pop(m, &b));
            MT_TRY(pop(m, &a));
            if (a->kind != MT_PV_GLOBAL && a->kind != MT_PV_OBJECT) return VM_FAIL(MT_ERR_FORMAT, "NEWOBJ_EX on a non-callable");
            MT_TRY(call(m, a, b->kind == MT_PV_TUPLE ? b : NULL, &c));
            MT_TRY(push(m, c));
            break;
        case 'b': // BUILD: record the state, run nothing (no __setstate__)
            MT_TRY(pop(m, &b));
            MT_TRY(top(m, &a));
            if (a->kind == MT_PV_DICT || a->kind == MT_PV_OBJECT) a->state = b;
            break;
        case 'Q': // BINPERSID
            MT_TRY(pop(m, &a));
            MT_TRY(persistent_load(m, a, &b));
            MT_TRY(push(m, b));
            break;
        case 'P':
            return VM_FAIL(MT_ERR_UNSUPPORTED, "text PERSID (protocol 0) is not used by torch");
        case 'q': MT_TRY(need(m, 1)); MT_TRY(memo_put(m, m->buf[m->pos])); m->pos += 1; break;
        case 'r': MT_TRY(need(m, 4)); MT_TRY(memo_put(m, rd_le(m->buf + m->pos, 4))); m->pos += 4; break;
        case 0x94: MT_TRY(memo_put(m, m->nmemo)); break; // MEMOIZE
        case 'h': MT_TRY(need(m, 1)); MT_TRY(memo_get(m, m->buf[m->pos])); m->pos += 1; break;
        case 'j': MT_TRY(need(m, 4)); MT_TRY(memo_get(m, rd_le(m->buf + m->pos, 4))); m->pos += 4; break;
        case 'p': case 'g': {
            const uint8_t *s = NULL;
            size_t n = 0;
            int64_t idx = 0;
            MT_TRY(read_line(m, &s, &n));
            MT_TRY(parse_text_int(m, s, n, &idx));
            if (idx < 0) return VM_FAIL(MT_ERR_FORMAT, "negative memo index");
            MT_TRY(op == 'p' ? memo_put(m, (uint64_t)idx) : memo_get(m, (uint64_t)idx));
            break;
        }
        default:
            return VM_FAIL(MT_ERR_UNSUPPORTED, "unknown or unsupported pickle opcode 0x%02x", op);
        }
    }
    m->op_pos = m->pos;
    return VM_FAIL(MT_ERR_FORMAT, "truncated: no STOP opcode before the end of the data");
}

mt_status mt_pickle_parse(mt_pickle *pk, const uint8_t *buf, size_t len, int legacy, const char *what,
                          mt_pv **out, size_t *end) {
    vm m = {0};
    m.pk = pk;
    m.buf = buf;
    m.len = len;
    m.what = what ? what : "pickle";
    m.legacy = legacy;
    *out = NULL;
    size_t grant = PK_BUDGET_BASE + (len > (SIZE_MAX - pk->budget - PK_BUDGET_BASE) / PK_BUDGET_PER_BYTE
                                         ? SIZE_MAX - pk->budget - PK_BUDGET_BASE
                                         : len * PK_BUDGET_PER_BYTE);
    if (pk->budget < grant) pk->budget = grant; // one file's parses share the largest grant
    mt_status s = run(&m, out);
    if (pk->over) {
        s = mt_fail(MT_ERR_FORMAT,
                    "%s: pickle byte %zu: building its objects would need more than %zu MiB of memory for %zu KiB "
                    "of pickle data (the limit is 64 MiB + %d bytes per input byte); the file is not a checkpoint "
                    "torch.save wrote, or it is corrupt",
                    m.what, m.op_pos, pk->budget >> 20, len >> 10, PK_BUDGET_PER_BYTE);
        pk->over = 0;
    } else if (s == MT_ERR_NOMEM && !strstr(mt_last_error(), m.what))
        mt_fail_context(s, "%s: pickle byte %zu", m.what, m.op_pos);
    if (s == MT_OK && end) *end = m.pos;
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (s != MT_OK) *out = NULL;
    return s;
}
