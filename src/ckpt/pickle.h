// A safe reader for Python pickle protocol 2 as written by torch.save, and the value tree it
// builds. Nothing is ever executed: a GLOBAL is only a name. torch's tensor rebuilders,
// storages, OrderedDict and _codecs.encode are recognised; every other callable (argparse
// Namespace, numpy, enums, os.system, builtins.eval ...) yields an inert MT_PV_OBJECT that
// records its name and arguments.
//
// All values of one parse live in one arena (mt_pickle) and are freed together, so shared
// (memoised) and even self-containing values are fine. Walk them with a depth limit.
#ifndef MT_CKPT_PICKLE_H
#define MT_CKPT_PICKLE_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "ckpt/tensor.h"

typedef enum {
    MT_PV_NONE = 0,
    MT_PV_BOOL,
    MT_PV_INT,     // fits int64 (larger LONG1 values are MT_PV_OBJECT "long")
    MT_PV_FLOAT,
    MT_PV_STR,     // UTF-8 bytes, NUL-terminated copy
    MT_PV_BYTES,   // _codecs.encode(str, 'latin1') or BINSTRING/SHORT_BINBYTES
    MT_PV_LIST,
    MT_PV_TUPLE,
    MT_PV_DICT,    // plain dict or OrderedDict (ordered == 1); insertion order kept
    MT_PV_GLOBAL,  // a named callable/class, never resolved
    MT_PV_OBJECT,  // result of calling/instantiating a global we do not model: inert
    MT_PV_STORAGE, // a torch storage (persistent id)
    MT_PV_TENSOR,
    MT_PV_MARK,    // internal
} mt_pv_kind;

typedef struct mt_pv mt_pv;
struct mt_pv {
    mt_pv_kind kind;
    int ordered;         // DICT: OrderedDict
    int64_t i;           // BOOL, INT
    double f;            // FLOAT
    char *s;             // STR/BYTES data; GLOBAL/OBJECT "module.name"
    size_t slen;
    mt_pv **items;       // LIST/TUPLE items; DICT keys at 2k, values at 2k+1
    size_t n, cap;       // LIST/TUPLE: count; DICT: number of pairs
    mt_pv *args;         // OBJECT: the argument tuple (or NULL)
    mt_pv *state;        // OBJECT/DICT: BUILD state (e.g. Namespace's __dict__, OrderedDict _metadata)
    // STORAGE
    mt_dtype dtype;
    char *key;           // storage key (zip: data/<key>; legacy: position in key list)
    int64_t numel;       // elements declared in the pickle
    int64_t view_offset; // legacy view storages: element offset into the root storage
    mt_pv *root;         // legacy view: the root storage; else NULL
    const uint8_t *data; // resolved by the file layer (NULL until then)
    int64_t data_numel;  // elements available at data
    // TENSOR
    mt_ckpt_tensor *t;
};

typedef struct mt_pickle mt_pickle;

// Runs the VM over buf[0..len). `legacy` selects the legacy persistent-id form (6-tuples).
// `what` names the source in error messages (file name and member). On success *end receives
// the offset just after STOP (the legacy format concatenates pickles).
mt_status mt_pickle_parse(mt_pickle *pk, const uint8_t *buf, size_t len, int legacy, const char *what,
                          mt_pv **out, size_t *end) MT_WARN_UNUSED;
mt_pickle *mt_pickle_new(void);
void mt_pickle_free(mt_pickle *pk);
// Every storage / tensor value created so far (for the file layer to resolve).
size_t mt_pickle_count(const mt_pickle *pk);
mt_pv *mt_pickle_value(const mt_pickle *pk, size_t i);

// The storage with this key (root storages and legacy views), or NULL.
mt_pv *mt_pickle_find_storage(mt_pickle *pk, const char *key);

// Dict lookup by string key (NULL when absent or not a dict).
mt_pv *mt_pv_get(const mt_pv *dict, const char *key);
// Reads a Namespace-like object's attribute: OBJECT with a dict BUILD state, or a dict.
mt_pv *mt_pv_attr(const mt_pv *obj, const char *name);
int mt_pv_is_number(const mt_pv *v);
double mt_pv_number(const mt_pv *v);
const char *mt_pv_kind_name(mt_pv_kind k);

#endif
