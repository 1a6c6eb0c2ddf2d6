/*
 * demangle.c -- C++ symbol names for people: "_ZN4node5StartEiPPc" ->
 * "node::Start(int, char**)".
 *
 * The demangler is libstdc++'s __cxa_demangle (the Itanium C++ ABI's own,
 * what c++filt, gdb and elfutils' tools use), looked up with dlopen so
 * wlprof stays a C program with no link-time C++ dependency: libstdc++6 is
 * on every Debian system (apt itself needs it). Without it names stay
 * mangled. Only "_Z" names are tried; others pass through untouched.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "symbolize.h"

typedef char *(*cxa_demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

static cxa_demangle_fn demangler(void)
{
    static int looked;
    static cxa_demangle_fn fn;
    if (!looked) {
        looked = 1;
        /* RTLD_NOLOAD first: a C++ target's reader may have it already. */
        void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
        if (!h)
            h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (h)
            fn = (cxa_demangle_fn)dlsym(h, "__cxa_demangle");
    }
    return fn;
}

char *wl__demangle(const char *name)
{
    if (!name || strncmp(name, "_Z", 2) != 0)
        return NULL;
    cxa_demangle_fn fn = demangler();
    if (!fn)
        return NULL;
    int status = 0;
    char *out = fn(name, NULL, NULL, &status);
    if (status != 0) {
        free(out);
        return NULL;
    }
    return out;
}
