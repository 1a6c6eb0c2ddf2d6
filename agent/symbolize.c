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
 * Cache per build-id: what a module's addresses symbolised to is kept in
 * a small text file named by the module's build-id (in
 * $WLPROF_SYMCACHE_DIR, else $XDG_CACHE_HOME/wlprof/symbols, else
 * ~/.cache/wlprof/symbols; WLPROF_SYMCACHE=0 turns it off), and the next
 * run answers those addresses from it without touching DWARF. Why: libdw
 * decompresses every debug section of a module on its first line lookup;
 * for libc with Debian's libc6-dbg that was 55 % of the whole command's CPU
 * after a 1 s target exited (about 50 ms, for two frames' file:line). The
 * same build-id is the same file, so an entry stays right; the file's
 * header also records the separate debug file's size and mtime under
 * /usr/lib/debug/.build-id, so installing or removing debug info starts
 * afresh. Names the module could not resolve are not cached (they carry
 * the module's file name). Each run rewrites a changed file whole
 * (temporary + rename), so concurrent runs at worst drop each other's
 * additions.
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
#include <sys/stat.h>
#include <unistd.h>

#include "bmap.h"

/* One symbolised address of a module. */
struct sym_entry {
    uint64_t rel;
    char *func; /* NULL: the module has no name for it */
    char *file;
    int line;
    int lines;  /* file and line were looked up (0: the name only, so far) */
};

/* A function's extent, for addresses no run has looked up yet in a module
 * without line information: the name is all there is to know. */
struct sym_range {
    uint64_t start, size;
    char *func;
};

struct sym_module {
    Dwfl *dwfl;        /* NULL when the module could not be opened */
    Dwfl_Module *mod;
    char *cache_path;  /* NULL: no build-id or no cache */
    char *cache_header;
    wl_bmap by_rel;    /* rel (8 bytes) -> index into ents */
    struct sym_entry *ents;
    size_t nents, cap_ents;
    size_t nloaded;    /* ents[0..nloaded) came from the cache file */
    struct sym_range *ranges; /* functions seen, sorted by start once loaded */
    size_t nranges, cap_ranges, nranges_loaded;
    int nodwarf;       /* the module has no line information at all */
    int nodwarf_loaded;
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

static int range_cmp(const void *a, const void *b);

static int cacheable(const char *str)
{
    return !str || (!strchr(str, '\t') && !strchr(str, '\n') && strcmp(str, "-") != 0);
}

/* Rewrites a module's cache file when this run added entries. */
static void cache_store(struct sym_module *m)
{
    if (!m->cache_path ||
        (m->nents == m->nloaded && m->nranges == m->nranges_loaded && m->nodwarf == m->nodwarf_loaded))
        return;
    char tmp[4400];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", m->cache_path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%s\n", m->cache_header);
    if (m->nodwarf)
        fprintf(f, "N\n");
    if (m->nranges > 1)
        qsort(m->ranges, m->nranges, sizeof(*m->ranges), range_cmp);
    for (size_t i = 0; i < m->nranges; i++)
        if (cacheable(m->ranges[i].func) && (i == 0 || m->ranges[i].start != m->ranges[i - 1].start))
            fprintf(f, "R\t%" PRIx64 "\t%" PRIx64 "\t%s\n", m->ranges[i].start, m->ranges[i].size,
                    m->ranges[i].func);
    for (size_t i = 0; i < m->nents; i++) {
        const struct sym_entry *e = &m->ents[i];
        if (!e->lines || !cacheable(e->func) || !cacheable(e->file))
            continue; /* a name-only entry would read as "no line" next run */
        fprintf(f, "%" PRIx64 "\t%d\t%s\t%s\n", e->rel, e->line, e->func ? e->func : "-",
                e->file ? e->file : "-");
    }
    if (fclose(f) != 0 || rename(tmp, m->cache_path) != 0)
        unlink(tmp);
}

void wl__sym_free(wl_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmods; i++) {
        struct sym_module *m = &s->mods[i];
        cache_store(m);
        for (size_t k = 0; k < m->nents; k++) {
            free(m->ents[k].func);
            free(m->ents[k].file);
        }
        free(m->ents);
        for (size_t k = 0; k < m->nranges; k++)
            free(m->ranges[k].func);
        free(m->ranges);
        wl__bmap_free(&m->by_rel);
        free(m->cache_path);
        free(m->cache_header);
        if (m->dwfl)
            dwfl_end(m->dwfl);
    }
    free(s->mods);
    wl__bmap_free(&s->by_path);
    free(s);
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* The cache directory, or NULL when caching is off. Created on demand. */
static const char *cache_dir(void)
{
    static char dir[4096];
    static int state; /* 0 unknown, 1 ready, -1 off */
    if (state)
        return state > 0 ? dir : NULL;
    state = -1;
    const char *off = getenv("WLPROF_SYMCACHE");
    if (off && strcmp(off, "0") == 0)
        return NULL;
    const char *d = getenv("WLPROF_SYMCACHE_DIR");
    if (d && *d) {
        snprintf(dir, sizeof(dir), "%s", d);
    } else if ((d = getenv("XDG_CACHE_HOME")) && *d) {
        snprintf(dir, sizeof(dir), "%s/wlprof/symbols", d);
    } else if ((d = getenv("HOME")) && *d) {
        snprintf(dir, sizeof(dir), "%s/.cache/wlprof/symbols", d);
    } else {
        return NULL;
    }
    /* mkdir -p */
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(dir, 0700);
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return NULL;
    state = 1;
    return dir;
}

static int ents_reserve(struct sym_module *m)
{
    if (m->nents < m->cap_ents)
        return 0;
    size_t cap = m->cap_ents ? m->cap_ents * 2 : 64;
    struct sym_entry *e = realloc(m->ents, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    memset(e + m->cap_ents, 0, (cap - m->cap_ents) * sizeof(*e));
    m->ents = e;
    m->cap_ents = cap;
    return 0;
}

static int add_entry(struct sym_module *m, uint64_t rel, char *func, char *file, int line)
{
    if (ents_reserve(m) != 0)
        return -ENOMEM;
    uint32_t idx = (uint32_t)m->nents;
    int r = wl__bmap_intern(&m->by_rel, &rel, sizeof(rel), &idx);
    if (r < 0)
        return r;
    if (r == 1)
        return 1; /* already there (a duplicate line in the file) */
    m->ents[m->nents++] = (struct sym_entry){rel, func, file, line, 1};
    return 0;
}

static int add_range(struct sym_module *m, uint64_t start, uint64_t size, const char *func)
{
    if (m->nranges == m->cap_ranges) {
        size_t cap = m->cap_ranges ? m->cap_ranges * 2 : 64;
        struct sym_range *r = realloc(m->ranges, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        m->ranges = r;
        m->cap_ranges = cap;
    }
    char *f = strdup(func);
    if (!f)
        return -ENOMEM;
    m->ranges[m->nranges++] = (struct sym_range){start, size, f};
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct sym_range *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Finds the module's cache file by build-id and loads it. */
static void cache_open(struct sym_module *m)
{
    const char *dir = cache_dir();
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dir ? dwfl_module_build_id(m->mod, &bits, &vaddr) : 0;
    if (n <= 1 || n > 64)
        return;
    char hex[130];
    for (int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", bits[i]);
    char debug[256], header[512], path[4300];
    struct stat st;
    snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
    if (stat(debug, &st) == 0)
        snprintf(header, sizeof(header), "wlprof-symcache 1 debug %lld %lld", (long long)st.st_size,
                 (long long)st.st_mtime);
    else
        snprintf(header, sizeof(header), "wlprof-symcache 1 debug none");
    snprintf(path, sizeof(path), "%s/%s", dir, hex);
    m->cache_path = strdup(path);
    m->cache_header = strdup(header);
    if (!m->cache_path || !m->cache_header) {
        free(m->cache_path);
        m->cache_path = NULL;
        return;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[8192];
    if (!fgets(line, sizeof(line), f) || strncmp(line, header, strlen(header)) != 0 ||
        line[strlen(header)] != '\n') {
        fclose(f);
        return; /* another format or other debug info: start afresh */
    }
    while (fgets(line, sizeof(line), f)) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break; /* truncated */
        *nl = '\0';
        if (strcmp(line, "N") == 0) {
            m->nodwarf = m->nodwarf_loaded = 1;
            continue;
        }
        if (line[0] == 'R' && line[1] == '\t') {
            char *end, *end2;
            uint64_t start = strtoull(line + 2, &end, 16);
            uint64_t size = *end == '\t' ? strtoull(end + 1, &end2, 16) : 0;
            if (!size || *end2 != '\t' || add_range(m, start, size, end2 + 1) != 0)
                break;
            continue;
        }
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
        if (!t3)
            break;
        *t1 = *t2 = *t3 = '\0';
        char *end;
        uint64_t rel = strtoull(line, &end, 16);
        if (*end)
            break;
        int ln = atoi(t1 + 1);
        char *func = strcmp(t2 + 1, "-") ? strdup(t2 + 1) : NULL;
        char *file = strcmp(t3 + 1, "-") ? strdup(t3 + 1) : NULL;
        if (add_entry(m, rel, func, file, ln) != 0) {
            free(func);
            free(file);
        }
    }
    fclose(f);
    m->nloaded = m->nents;
    m->nranges_loaded = m->nranges;
    if (m->nranges > 1)
        qsort(m->ranges, m->nranges, sizeof(*m->ranges), range_cmp);
}

/* The loaded function containing rel, or NULL. Only ranges from the file
 * are searched (they are sorted); this run's own come after them. */
static const struct sym_range *range_find(const struct sym_module *m, uint64_t rel)
{
    size_t lo = 0, hi = m->nranges_loaded;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct sym_range *r = &m->ranges[mid];
        if (rel < r->start)
            hi = mid;
        else if (rel >= r->start + r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
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
    memset(m, 0, sizeof(*m));
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
    cache_open(m);
    return m;
}

/* What the module says about rel, straight from libdw. */
static int resolve_name(struct sym_module *m, uint64_t rel, char **name)
{
    GElf_Off off;
    GElf_Sym sym;
    const char *n = dwfl_module_addrinfo(m->mod, (Dwarf_Addr)rel, &off, &sym, NULL, NULL, NULL);
    if (n && *n) {
        *name = strdup(n);
        if (!*name)
            return -ENOMEM;
        char *at = strchr(*name, '@'); /* "f@@GLIBC_2.34" -> "f" */
        if (at && at != *name)
            *at = '\0';
        if (sym.st_size > 0 && off < sym.st_size && m->cache_path && !range_find(m, rel))
            add_range(m, rel - off, sym.st_size, *name); /* best effort */
    }
    return 0;
}

/* File and line of rel. The first call in a module with DWARF loads it
 * (libdw inflates compressed debug sections: tens of ms for a big one). */
static int resolve_line(struct sym_module *m, uint64_t rel, char **file, int *line)
{
    if (m->nodwarf)
        return 0;
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
    } else {
        Dwarf_Addr bias;
        m->nodwarf = dwfl_module_getdwarf(m->mod, &bias) == NULL;
    }
    return 0;
}

static int lookup(wl_symbolizer *s, const char *path, uint64_t rel, char **func, char **file,
                  int *line, int want_line)
{
    *func = NULL;
    *file = NULL;
    *line = 0;
    struct sym_module *m = module_for(s, path);
    const char *name = NULL;
    if (m && m->mod) {
        if (ents_reserve(m) != 0)
            return -ENOMEM;
        uint32_t idx = (uint32_t)m->nents;
        int r = wl__bmap_intern(&m->by_rel, &rel, sizeof(rel), &idx);
        if (r < 0)
            return -ENOMEM;
        if (r == 0) { /* new key, index nents: resolve it now */
            struct sym_entry *e = &m->ents[m->nents++];
            e->rel = rel;
            e->lines = 0;
            const struct sym_range *known = m->nodwarf || !want_line ? range_find(m, rel) : NULL;
            if (known) /* a function a past run named */
                e->func = strdup(known->func);
            if (known ? !e->func : resolve_name(m, rel, &e->func) != 0)
                return -ENOMEM; /* what was filled is freed with the module */
        }
        struct sym_entry *e = &m->ents[idx];
        if (want_line && !e->lines) {
            e->lines = 1;
            if (resolve_line(m, rel, &e->file, &e->line) != 0)
                return -ENOMEM;
        }
        name = e->func;
        if (e->file) {
            *file = strdup(e->file);
            if (!*file)
                return -ENOMEM;
            *line = e->line;
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

int wl__sym_lookup(wl_symbolizer *s, const char *path, uint64_t rel, char **func, char **file,
                   int *line)
{
    return lookup(s, path, rel, func, file, line, 1);
}

int wl__sym_name(wl_symbolizer *s, const char *path, uint64_t rel, char **func)
{
    char *file = NULL;
    int line;
    int err = lookup(s, path, rel, func, &file, &line, 0);
    free(file); /* set when an earlier lookup read the line */
    return err;
}
