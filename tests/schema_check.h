/*
 * schema_check.h -- validates a JSON value against the subset of JSON
 * Schema our documented schemas use: type (one or a list), required,
 * properties, items, enum, minimum, maximum, minItems. Enough to hold the
 * reports to docs/report-schema.json without a validator library (Debian has none for C).
 */
#ifndef WL_SCHEMA_CHECK_H
#define WL_SCHEMA_CHECK_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int schema_type_is(const json_t *v, const char *t)
{
    if (strcmp(t, "object") == 0) return json_is_object(v);
    if (strcmp(t, "array") == 0) return json_is_array(v);
    if (strcmp(t, "string") == 0) return json_is_string(v);
    if (strcmp(t, "integer") == 0) return json_is_integer(v);
    if (strcmp(t, "number") == 0) return json_is_number(v);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
    if (strcmp(t, "null") == 0) return json_is_null(v);
    return 0;
}

/* Returns 0 when v satisfies schema; else 1 with a reason (path first) in err. */
static int schema_check(const json_t *schema, const json_t *v, const char *path, char *err,
                        size_t errlen)
{
    const json_t *type = json_object_get(schema, "type");
    if (type) {
        int ok = 0;
        if (json_is_string(type)) {
            ok = schema_type_is(v, json_string_value(type));
        } else {
            size_t i;
            const json_t *t;
            json_array_foreach(type, i, t) ok |= schema_type_is(v, json_string_value(t));
        }
        if (!ok) {
            snprintf(err, errlen, "%s: wrong type", path);
            return 1;
        }
    }
    const json_t *en = json_object_get(schema, "enum");
    if (en) {
        int ok = 0;
        size_t i;
        const json_t *e;
        json_array_foreach(en, i, e) ok |= json_equal(e, v);
        if (!ok) {
            snprintf(err, errlen, "%s: not one of the allowed values", path);
            return 1;
        }
    }
    if (json_is_number(v)) {
        const json_t *mn = json_object_get(schema, "minimum");
        const json_t *mx = json_object_get(schema, "maximum");
        double d = json_number_value(v);
        if ((mn && d < json_number_value(mn) - 1e-9) || (mx && d > json_number_value(mx) + 1e-9)) {
            snprintf(err, errlen, "%s: %g out of range", path, d);
            return 1;
        }
    }
    if (json_is_object(v)) {
        size_t i;
        const json_t *r;
        json_array_foreach(json_object_get(schema, "required"), i, r) {
            if (!json_object_get(v, json_string_value(r))) {
                snprintf(err, errlen, "%s.%s: required key missing", path, json_string_value(r));
                return 1;
            }
        }
        const char *key;
        const json_t *sub;
        json_object_foreach((json_t *)json_object_get(schema, "properties"), key, sub) {
            const json_t *child = json_object_get(v, key);
            char p[512];
            snprintf(p, sizeof(p), "%s.%s", path, key);
            if (child && schema_check(sub, child, p, err, errlen))
                return 1;
        }
    }
    if (json_is_array(v)) {
        const json_t *items = json_object_get(schema, "items");
        const json_t *min_items = json_object_get(schema, "minItems");
        if (min_items && json_array_size(v) < (size_t)json_integer_value(min_items)) {
            snprintf(err, errlen, "%s: too few items", path);
            return 1;
        }
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            char p[512];
            snprintf(p, sizeof(p), "%s[%zu]", path, i);
            if (items && schema_check(items, item, p, err, errlen))
                return 1;
        }
    }
    return 0;
}

#endif
