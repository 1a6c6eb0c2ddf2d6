/*
 * parts.c -- a user of the installed profile model, report, classifier and
 * pools (wlprof::profile, ::report, ::classify, ::pools): classifies a
 * hand-made profile that waits 90 % of its wall time, round-trips it
 * through the JSON report, builds a profile from samples of its own
 * (wl_thread_tally, the profiler's side of profile.h), appends to a
 * wl_bytes, and has the output rules (wlprof/outputs.h) refuse two outputs
 * on one file. Prints the verdict's executor; exits non-zero on any failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <wlprof/bytes.h>
#include <wlprof/classify.h>
#include <wlprof/outputs.h>
#include <wlprof/pools.h>
#include <wlprof/profile.h>
#include <wlprof/report.h>

int main(void)
{
    wl_profile p;
    memset(&p, 0, sizeof(p));
    p.wall_s = 10;
    p.user_s = 0.9;
    p.sys_s = 0.1;
    p.running_s = 1;
    p.waiting_s = 9;
    wl_profile_derive(&p);
    json_t *j = wl_report_to_json(&p);
    wl_profile back;
    char err[256];
    if (!j || wl_report_from_json(j, &back, err, sizeof(err)) < 0) {
        fprintf(stderr, "parts: report round trip: %s\n", j ? err : "no JSON");
        return 1;
    }
    json_decref(j);
    wl_classify_opts o = wl_classify_defaults();
    wl_verdict v;
    if (wl_classify(&back, &o, &v) < 0) {
        fprintf(stderr, "parts: classify failed\n");
        return 1;
    }
    /* The profiler's side of profile.h: a profile from one's own samples. */
    wl_thread_tally t = {0};
    wl_thread_now asleep = {.state = 'S', .kind = WL_WAIT_SLEEP};
    wl_tally_totals m = {.label = "parts", .interval_s = 0.01, .wall_s = 1};
    wl_profile own;
    if (wl_thread_tally_add(&t, &asleep) < 0 || wl_profile_from_tally(&t, &m, &own) < 0 ||
        own.wait_frac != 1 || own.waits[0].kind != WL_WAIT_SLEEP)
        return 1;
    wl_thread_tally_free(&t);
    wl_profile_free(&own);
    wl_bytes b = {0};
    if (wl_bytes_append(&b, "ok", 2) < 0 || b.len != 2)
        return 1;
    printf("kind=%s wait=%.2f poll=%d\n", wl_kind_name(v.kind), back.wait_frac,
           wl_is_readiness_call("epoll_wait"));
    wl_bytes_free(&b);
    wl_outputs outs = {0};
    wl_outputs_add(&outs, "-o", "-");
    wl_outputs_add(&outs, "--json", "/dev/stdout");
    if (wl_outputs_check(&outs, err, sizeof(err)) != -EINVAL) {
        fprintf(stderr, "parts: \"-\" and /dev/stdout were not refused as one output\n");
        return 1;
    }
    wl_verdict_free(&v);
    wl_profile_free(&back);
    wl_profile_free(&p);
    return 0;
}
