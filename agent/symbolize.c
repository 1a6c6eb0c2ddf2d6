/*
 * symbolize.c -- see symbolize.h.
 *
 * One Dwfl session per module path, the module reported at bias 0, so a
 * module-relative address is looked up the same way for a PIE, a shared
 * library or a fixed-address executable (whose bias is 0 anyway). libdwfl
 * reads .symtab, falls back to .dynsym (and MiniDebugInfo), finds separate
 * debug info by build-id under /usr/lib/debug, and maps addresses to
 * source lines through DWARF when present. Modules that cannot be opened
 * (deleted files, [vdso]) are remembered as such and yield "name+0xOFF".
 *
 * Threading: none; one symbolizer per reader.
 */
#include "symbolize.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmap.h"

struct sym_module {
    Dwfl *dwfl;        /* NULL when the module could not be opened */
    Dwfl_Module *mod;
};

struct wl_symbolizer {
    wl_bmap by_path;           /* path -> index into mods */
    struct sym_module *mods;
    size_t nmods, cap;
};

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

wl_symbolizer *wl__sym_new(void)
{
    return calloc(1, sizeof(wl_symbolizer));
}

void wl__sym_free(wl_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].dwfl)
            dwfl_end(s->mods[i].dwfl);
    free(s->mods);
    wl__bmap_free(&s->by_path);
    free(s);
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static struct sym_module *module_for(wl_symbolizer *s, const char *path)
{
    uint32_t idx = (uint32_t)s->nmods;
    int r = wl__bmap_intern(&s->by_path, path, strlen(path), &idx);
    if (r < 0)
        return NULL;
    if (r == 1)
        return &s->mods[idx];
    if (s->nmods == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct sym_module *m = realloc(s->mods, cap * sizeof(*m));
        if (!m)
            return NULL; /* the map now points past the end: never looked up again */
        s->mods = m;
        s->cap = cap;
    }
    struct sym_module *m = &s->mods[s->nmods++];
    m->dwfl = NULL;
    m->mod = NULL;
    if (path[0] != '/')
        return m; /* [vdso] and friends: nothing on disk */
    Dwfl *d = dwfl_begin(&callbacks);
    if (!d)
        return m;
    dwfl_report_begin(d);
    Dwfl_Module *mod = dwfl_report_elf(d, base_name(path), path, -1, 0, false);
    dwfl_report_end(d, NULL, NULL);
    if (!mod) {
        dwfl_end(d);
        return m;
    }
    m->dwfl = d;
    m->mod = mod;
    return m;
}

int wl__sym_lookup(wl_symbolizer *s, const char *path, uint64_t rel, char **func, char **file,
                   int *line)
{
    *func = NULL;
    *file = NULL;
    *line = 0;
    struct sym_module *m = module_for(s, path);
    const char *name = NULL;
    if (m && m->mod) {
        GElf_Off off;
        GElf_Sym sym;
        name = dwfl_module_addrinfo(m->mod, (Dwarf_Addr)rel, &off, &sym, NULL, NULL, NULL);
        Dwfl_Line *l = dwfl_module_getsrc(m->mod, (Dwarf_Addr)rel);
        if (l) {
            int ln = 0;
            const char *src = dwfl_lineinfo(l, NULL, &ln, NULL, NULL, NULL);
            if (src && ln > 0) {
                *file = strdup(src);
                if (!*file)
                    return -ENOMEM;
                *line = ln;
            }
        }
    }
    if (name && *name) {
        *func = strdup(name);
        char *at = *func ? strchr(*func, '@') : NULL; /* "f@@GLIBC_2.34" -> "f" */
        if (at && at != *func)
            *at = '\0';
        char *plain = *func ? wl__demangle(*func) : NULL; /* C++: "ns::f(int)" */
        if (plain) {
            free(*func);
            *func = plain;
        }
    } else {
        char buf[300];
        snprintf(buf, sizeof(buf), "%s+0x%" PRIx64, base_name(path), rel);
        *func = strdup(buf);
    }
    if (!*func) {
        free(*file);
        *file = NULL;
        return -ENOMEM;
    }
    return 0;
}
