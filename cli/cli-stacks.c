/*
 * cli-stacks.c -- the subcommands' stack-profile steps (cli-stacks.h),
 * built only with the stack agent (the wl_stacks target); without it
 * cli-stacks.h gives stubs instead.
 *
 * `profile` arms the agent before the run (wl__cli_stacks_begin), and after it
 * reads back what the agent recorded and writes --folded/--speedscope into
 * the temporaries it opened before the run (wl__cli_stacks_end). `report` reads
 * the stack table a saved report carries (wl__cli_stacks_from_report) and
 * re-exports it. Kept apart from the /proc profile, which every build has.
 */
#include <errno.h>
#include <string.h>

#include "cli-stacks.h"

void wl__cli_stacks_init(cli_stacks *s)
{
    memset(s, 0, sizeof(*s));
}

void wl__cli_stacks_free(cli_stacks *s)
{
    wl_stacks_free(&s->st);
    s->have = 0;
}

int wl__cli_stacks_begin(cli_stacks *s, int off, const char *folded, const char *speedscope,
                     const char *cmd, double hz)
{
    memset(&s->sess, 0, sizeof(s->sess));
    if (off)
        return 0;
    char notice[512];
    wl_stacks_session_begin(&s->sess, cmd, hz > 0 ? hz : 100.0, notice, sizeof(notice));
    if (notice[0] && !s->sess.active && (folded || speedscope)) {
        wl__cli_error("profile", "%s: cannot write %s", notice, folded ? folded : speedscope);
        return -1;
    }
    if (notice[0])
        fprintf(stderr, "wlprof: %s\n", notice);
    return 0;
}

int wl__cli_stacks_save(const char *cmd, wl_atomic_file *af, const wl_stacks *st, int format,
                    const char *name)
{
    char err[512];
    if (!af->f)
        return 0;
    int rc = format == CLI_STACKS_SPEEDSCOPE ? wl_stacks_write_speedscope(st, af->f, name)
             : wl_stacks_write_folded_roots(st, af->f, format == CLI_STACKS_FOLDED_PLAIN
                                                           ? WL_FOLDED_ROOTS_NONE
                                                           : WL_FOLDED_ROOTS_THREAD);
    if (rc < 0) {
        wl__cli_error(cmd, "cannot write %s: %s", af->path, strerror(-rc));
        wl_atomic_abort(af);
        return -1;
    }
    if (wl_atomic_commit(af, err, sizeof(err)) < 0) {
        wl__cli_error(cmd, "%s", err);
        return -1;
    }
    return 0;
}

int wl__cli_stacks_export(const cli_stacks *s, const char *cmd, wl_atomic_file *af, int format,
                      const char *name)
{
    return wl__cli_stacks_save(cmd, af, &s->st, format, name);
}

/* No process took the agent (e.g. the command exec'd a static program):
 * known only now. Says so rather than write empty files. */
static int no_agent_ran(wl_atomic_file *folded, wl_atomic_file *speedscope, const char *name)
{
    wl__cli_error("profile", "no process of '%s' ran the stack agent: %s%s%s%s not written", name,
              folded->f ? "--folded " : "", folded->f ? folded->path : "",
              folded->f && speedscope->f ? ", --speedscope " : speedscope->f ? "--speedscope " : "",
              speedscope->f ? speedscope->path : "");
    wl_atomic_abort(folded);
    wl_atomic_abort(speedscope);
    return WL_EXIT_FAILURE;
}

int wl__cli_stacks_end(cli_stacks *s, wl_atomic_file *folded, wl_atomic_file *speedscope,
                   const char *name)
{
    memset(&s->st, 0, sizeof(s->st));
    if (!s->sess.active) {
        wl_atomic_abort(folded);
        wl_atomic_abort(speedscope);
        return 0;
    }
    int rc = wl_stacks_session_end(&s->sess, &s->st);
    if (rc < 0)
        wl__cli_error("profile", "cannot read the agent's stacks: %s", strerror(-rc));
    /* The session's directory was made: what it recorded is the run's. */
    s->have = s->sess.dir[0] != '\0';
    if ((folded->f || speedscope->f) && s->st.processes == 0)
        return no_agent_ran(folded, speedscope, name);
    if ((folded->f || speedscope->f) && s->st.samples == 0)
        fprintf(stderr, "wlprof: no stack samples were recorded (the command ran too briefly, "
                        "or exec'd a program that cannot take the agent): the stacks output is "
                        "empty\n");
    int status = 0;
    if (wl__cli_stacks_save("profile", folded, &s->st, CLI_STACKS_FOLDED, name) < 0)
        status = WL_EXIT_FAILURE;
    if (wl__cli_stacks_save("profile", speedscope, &s->st, CLI_STACKS_SPEEDSCOPE, name) < 0)
        status = WL_EXIT_FAILURE;
    return status;
}

json_t *wl__cli_stacks_sections(const cli_stacks *s)
{
    return s->have ? wl_stacks_to_json(&s->st, 200, 200) : NULL;
}

void wl__cli_stacks_print_functions(const cli_stacks *s, FILE *f, int sort_total, int width)
{
    if (s->have)
        wl_stacks_print_functions(&s->st, f, 10, sort_total, width);
}

int wl__cli_stacks_from_report(cli_stacks *s, const json_t *root, const char *path, int needed)
{
    char err[256] = "";
    int rc = wl_stacks_from_json(root, &s->st, err, sizeof(err));
    s->have = rc == 0;
    if (rc == -EINVAL || rc == -ENOMEM || (!s->have && needed)) {
        wl__cli_error("report", "%s: %s", path, err);
        return -1;
    }
    return 0;
}

void wl__cli_stacks_print_table(const cli_stacks *s, FILE *f)
{
    if (s->have)
        wl_stacks_print_table(&s->st, f, 10);
}
