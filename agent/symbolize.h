/*
 * symbolize.h -- module-relative addresses to function, file and line, with
 * elfutils libdwfl. Private to wl_stacks.
 */
#ifndef WL_SYMBOLIZE_H
#define WL_SYMBOLIZE_H

#include <stdint.h>

typedef struct wl_symbolizer wl_symbolizer;

/* A cache of opened modules. NULL on allocation failure. */
wl_symbolizer *wl__sym_new(void);
void wl__sym_free(wl_symbolizer *s);

/* Symbolises rel (address minus the module's load bias) in the module at
 * path. Always fills *func (malloc'ed: the symbol, or "base+0xOFF" when
 * unknown); *file is malloc'ed or NULL; *line 0 when unknown. Returns 0 or
 * -ENOMEM. */
int wl__sym_lookup(wl_symbolizer *s, const char *path, uint64_t rel, char **func, char **file,
                   int *line);

/* The function name only, as wl__sym_lookup gives it, without reading
 * line information (which, for a module with DWARF, means loading it). */
int wl__sym_name(wl_symbolizer *s, const char *path, uint64_t rel, char **func);

/* The demangled form of a C++ symbol (malloc'ed), or NULL when name is
 * not a mangled C++ name or no demangler is available. */
char *wl__demangle(const char *name);

#endif
