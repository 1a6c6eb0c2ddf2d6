/*
 * test_symcache.c -- the symboliser's per-build-id cache (agent/symbolize.c):
 * a run writes what it resolved, the next run answers from the file
 * without asking libdw (proved by editing the file), a file with another
 * header is ignored, WLPROF_SYMCACHE=0 writes nothing, and a name-only
 * lookup (what the reader asks for frames it does not print) leaves no
 * entry that would later read as "no line". Each test is
 * its own forked process (the cache directory is read once per process).
 */
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "symbolize.h"

__attribute__((noinline)) int symcache_probe(int x)
{
    return x * 3 + 1;
}

__attribute__((noinline)) int symcache_other(int x)
{
    return x * 5 + 2;
}

static char exe[4096];
static uint64_t probe_rel;

/* The test binary's path and symcache_probe's module-relative address. */
static void locate(void)
{
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    Dl_info di;
    ck_assert(dladdr((void *)symcache_probe, &di));
    probe_rel = (uint64_t)((uintptr_t)symcache_probe - (uintptr_t)di.dli_fbase);
}

static char *lookup_name(void)
{
    wl_symbolizer *s = wl__sym_new();
    ck_assert_ptr_nonnull(s);
    char *func, *file;
    int line;
    ck_assert_int_eq(wl__sym_lookup(s, exe, probe_rel, &func, &file, &line), 0);
    free(file);
    wl__sym_free(s); /* writes the cache */
    return func;
}

/* The one cache file in dir (the test binary's build-id), or "" */
static const char *cache_file(const char *dir)
{
    static char path[4400];
    path[0] = '\0';
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    closedir(d);
    return path;
}

/* Rewrites the file, replacing from with to everywhere. */
static void edit(const char *path, const char *from, const char *to)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[65536], out[70000];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t o = 0;
    for (char *p = buf; *p;) {
        char *hit = strstr(p, from);
        size_t keep = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(out + o, p, keep);
        o += keep;
        p += keep;
        if (hit) {
            memcpy(out + o, to, strlen(to));
            o += strlen(to);
            p += strlen(from);
        }
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(out, 1, o, f), o);
    fclose(f);
}

START_TEST(test_second_run_answers_from_the_cache)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir());
    setenv("WLPROF_SYMCACHE_DIR", dir, 1);
    locate();
    char *name = lookup_name();
    ck_assert_str_eq(name, "symcache_probe");
    free(name);
    const char *path = cache_file(dir);
    ck_assert_str_ne(path, "");
    /* The same address now comes from the file, not from the binary. */
    edit(path, "\tsymcache_probe\t", "\tfrom_the_cache\t");
    name = lookup_name();
    ck_assert_str_eq(name, "from_the_cache");
    free(name);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_other_header_is_ignored)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir());
    setenv("WLPROF_SYMCACHE_DIR", dir, 1);
    locate();
    free(lookup_name());
    const char *path = cache_file(dir);
    edit(path, "\tsymcache_probe\t", "\tfrom_the_cache\t");
    edit(path, "wlprof-symcache 1 ", "wlprof-symcache 0 ");
    char *name = lookup_name();
    ck_assert_str_eq(name, "symcache_probe");
    free(name);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_cache_off_writes_nothing)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir());
    setenv("WLPROF_SYMCACHE_DIR", dir, 1);
    setenv("WLPROF_SYMCACHE", "0", 1);
    locate();
    char *name = lookup_name();
    ck_assert_str_eq(name, "symcache_probe");
    free(name);
    ck_assert_str_eq(cache_file(dir), "");
    rmdir(dir);
}
END_TEST

START_TEST(test_name_only_lookup_caches_no_line)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir());
    setenv("WLPROF_SYMCACHE_DIR", dir, 1);
    locate();
    Dl_info di;
    ck_assert(dladdr((void *)symcache_other, &di));
    uint64_t other_rel = (uint64_t)((uintptr_t)symcache_other - (uintptr_t)di.dli_fbase);
    wl_symbolizer *s = wl__sym_new();
    char *func, *file;
    int other_line;
    /* Whether this build has line information at all (another function). */
    ck_assert_int_eq(wl__sym_lookup(s, exe, other_rel, &func, &file, &other_line), 0);
    free(func);
    free(file);
    ck_assert_int_eq(wl__sym_name(s, exe, probe_rel, &func), 0);
    ck_assert_str_eq(func, "symcache_probe");
    free(func);
    wl__sym_free(s); /* writes the cache: symcache_other's entry, not the probe's */
    const char *path = cache_file(dir);
    ck_assert_str_ne(path, "");
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char want[32], line[8192];
    snprintf(want, sizeof(want), "%" PRIx64 "\t", probe_rel);
    while (fgets(line, sizeof(line), f))
        ck_assert_msg(strncmp(line, want, strlen(want)) != 0, "name-only entry cached: %s", line);
    fclose(f);
    /* A later full lookup still finds the probe's line, as one for the
     * other function did. */
    s = wl__sym_new();
    int probe_line;
    ck_assert_int_eq(wl__sym_lookup(s, exe, probe_rel, &func, &file, &probe_line), 0);
    ck_assert_str_eq(func, "symcache_probe");
    ck_assert_int_eq(probe_line > 0, other_line > 0);
    ck_assert_int_eq(file != NULL, other_line > 0);
    free(func);
    free(file);
    wl__sym_free(s);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *symcache_suite(void)
{
    Suite *s = suite_create("symcache");
    TCase *tc = tcase_create("symcache");
    tcase_add_test(tc, test_second_run_answers_from_the_cache);
    tcase_add_test(tc, test_other_header_is_ignored);
    tcase_add_test(tc, test_cache_off_writes_nothing);
    tcase_add_test(tc, test_name_only_lookup_caches_no_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(symcache_suite());
}
