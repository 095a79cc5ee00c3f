#include "train/encoder_yaml.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

int mt_encoder_config_is_yaml(const char *path) {
    size_t n = strlen(path);
    return (n >= 5 && !strcmp(path + n - 5, ".yaml")) || (n >= 4 && !strcmp(path + n - 4, ".yml"));
}

// A plain scalar that reads as a number or a boolean becomes one; anything quoted stays a string.
static cJSON *scalar_value(const yaml_event_t *ev) {
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (!strcmp(v, "true") || !strcmp(v, "True")) return cJSON_CreateBool(1);
        if (!strcmp(v, "false") || !strcmp(v, "False")) return cJSON_CreateBool(0);
        if (!strcmp(v, "null") || !strcmp(v, "~") || !*v) return cJSON_CreateNull();
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (end != v && *end == 0 && errno == 0) return cJSON_CreateNumber(d);
    }
    return cJSON_CreateString(v);
}

mt_status mt_encoder_yaml_to_json(const char *name, const char *text, size_t len, char **json) {
    *json = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return mt_fail(MT_ERR_NOMEM, "%s: cannot start the YAML parser", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    cJSON *obj = cJSON_CreateObject();
    mt_status st = obj ? MT_OK : MT_ERR_NOMEM;
    int depth = 0, done = 0;
    char *key = NULL;
    while (st == MT_OK && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            st = mt_fail(MT_ERR_FORMAT, "%s:%zu:%zu: malformed YAML: %s", name, p.problem_mark.line + 1,
                         p.problem_mark.column + 1, p.problem ? p.problem : "parse error");
            break;
        }
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_MAPPING_START_EVENT:
            if (++depth > 1)
                st = mt_fail(MT_ERR_FORMAT, "%s:%zu:%zu: '%s' holds a nested block; the encoder config file is a flat "
                             "list of keys (hidden_size: 1024, num_attention_heads: 16, num_layers: 24, "
                             "max_position_embeddings: 512)", name, line, col, key ? key : "?");
            break;
        case YAML_MAPPING_END_EVENT: depth--; break;
        case YAML_SEQUENCE_START_EVENT:
            st = mt_fail(MT_ERR_FORMAT, "%s:%zu:%zu: '%s' is a list; encoder config values are single numbers or words",
                         name, line, col, key ? key : "?");
            break;
        case YAML_ALIAS_EVENT:
            st = mt_fail(MT_ERR_FORMAT, "%s:%zu:%zu: aliases are not supported in an encoder config file", name, line, col);
            break;
        case YAML_SCALAR_EVENT:
            if (depth != 1) {
                st = mt_fail(MT_ERR_FORMAT, "%s:%zu:%zu: expected a mapping of keys to values (hidden_size: 1024 ...)",
                             name, line, col);
            } else if (!key) {
                key = strdup((const char *)ev.data.scalar.value);
                if (!key) st = mt_fail(MT_ERR_NOMEM, "out of memory");
            } else {
                if (cJSON_GetObjectItemCaseSensitive(obj, key))
                    st = mt_fail(MT_ERR_FORMAT, "%s:%zu: key '%s' is given twice", name, line, key);
                else {
                    cJSON *v = scalar_value(&ev);
                    if (!v || !cJSON_AddItemToObject(obj, key, v)) st = mt_fail(MT_ERR_NOMEM, "out of memory");
                }
                free(key);
                key = NULL;
            }
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    free(key);
    yaml_parser_delete(&p);
    if (st == MT_OK) {
        *json = cJSON_PrintUnformatted(obj);
        if (!*json) st = mt_fail(MT_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(obj);
    return st;
}
