/*
 * textout.c -- terminal width and word wrapping for the text reports.
 *
 * Summaries fit 80 columns; a wider terminal (TIOCGWINSZ) gets its width,
 * up to 160, so long reasons wrap less. Shared by every text printer
 * (reports/, the classifier's verdict, the functions table).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "wlprof/profile_model.h"

int wl_text_width(FILE *f)
{
    struct winsize ws;
    int w = 80;
    if (f && isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 80)
        w = ws.ws_col;
    return w > 160 ? 160 : w;
}

void wl_text_wrap(FILE *f, int width, const char *first, const char *rest, const char *text)
{
    int col = fprintf(f, "%s", first);
    int start = col;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == 0)
            break;
        if (col > start && col + 1 + (int)n > width) {
            fputc('\n', f);
            col = fprintf(f, "%s", rest);
            start = col;
        } else if (col > start) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, n, f);
        col += (int)n;
        p += n;
    }
    fputc('\n', f);
}
