/*
 * pyoffsets_check.c -- the Python frame reader's hard-coded offset table
 * (pyreader/pylayout.h) against the offsets CPython's own internal headers
 * give, compiled with Py_BUILD_CORE against one installed version's headers
 * (python3.11-dev's, or another build's include/python3.X): the build
 * registers one such test per header directory it finds.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>

#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#include <check.h>

#include "pylayout.h"

START_TEST(test_pyoffsets_match_the_headers)
{
    const wl_py_layout *L = wl_py_layout_for(PY_VERSION_HEX);
    ck_assert_msg(L != NULL, "no layout for %s", PY_VERSION);
    ck_assert_uint_eq(L->rt_interp_head, offsetof(_PyRuntimeState, interpreters.head));
#if PY_VERSION_HEX < 0x030c0000
    ck_assert_uint_eq(L->rt_gil, offsetof(_PyRuntimeState, ceval.gil));
#else
    ck_assert_uint_eq(L->rt_gil, offsetof(_PyRuntimeState, _main_interpreter._gil));
#endif
    ck_assert_uint_eq(L->gil_size, sizeof(struct _gil_runtime_state));
    ck_assert_uint_eq(L->interp_next, offsetof(PyInterpreterState, next));
    ck_assert_uint_eq(L->interp_threads_head, offsetof(PyInterpreterState, threads.head));
    ck_assert_uint_eq(L->ts_next, offsetof(PyThreadState, next));
    ck_assert_uint_eq(L->ts_thread_id, offsetof(PyThreadState, thread_id));
    ck_assert_uint_eq(L->ts_native_thread_id, offsetof(PyThreadState, native_thread_id));
    ck_assert_uint_eq(L->ts_native_thread_id, L->ts_thread_id + 8); /* read together */
#if PY_VERSION_HEX < 0x030d0000
    ck_assert_int_eq(L->ts_cframe, (int)offsetof(PyThreadState, cframe));
    ck_assert_uint_eq(L->cur_frame, offsetof(_PyCFrame, current_frame));
    ck_assert_uint_eq(L->fr_code, offsetof(_PyInterpreterFrame, f_code));
    ck_assert_uint_eq(L->fr_instr, offsetof(_PyInterpreterFrame, prev_instr));
#else
    ck_assert_int_eq(L->ts_cframe, -1);
    ck_assert_uint_eq(L->cur_frame, offsetof(PyThreadState, current_frame));
    ck_assert_uint_eq(L->fr_code, offsetof(_PyInterpreterFrame, f_executable));
    ck_assert_uint_eq(L->fr_instr, offsetof(_PyInterpreterFrame, instr_ptr));
#endif
    ck_assert_uint_eq(L->fr_previous, offsetof(_PyInterpreterFrame, previous));
    ck_assert_uint_eq(L->fr_owner, offsetof(_PyInterpreterFrame, owner));
#if PY_VERSION_HEX < 0x030c0000
    ck_assert_int_eq(L->fr_is_entry, (int)offsetof(_PyInterpreterFrame, is_entry));
    ck_assert_int_eq(L->owner_cstack, -1);
#else
    ck_assert_int_eq(L->fr_is_entry, -1);
    ck_assert_int_eq(L->owner_cstack, FRAME_OWNED_BY_CSTACK);
#endif
    ck_assert_uint_eq(L->fr_size, offsetof(_PyInterpreterFrame, localsplus));
    ck_assert_uint_eq(L->co_filename, offsetof(PyCodeObject, co_filename));
    ck_assert_uint_eq(L->co_qualname, offsetof(PyCodeObject, co_qualname));
    ck_assert_uint_eq(L->co_firstlineno, offsetof(PyCodeObject, co_firstlineno));
    ck_assert_uint_eq(L->co_linetable, offsetof(PyCodeObject, co_linetable));
    ck_assert_uint_eq(L->co_code, offsetof(PyCodeObject, co_code_adaptive));
    ck_assert_uint_eq(L->uni_length, offsetof(PyASCIIObject, length));
    ck_assert_uint_eq(L->uni_state, offsetof(PyASCIIObject, state));
    ck_assert_uint_eq(L->uni_ascii_data, sizeof(PyASCIIObject));
    ck_assert_uint_eq(L->uni_compact_data, sizeof(PyCompactUnicodeObject));
    ck_assert_uint_eq(L->bytes_size, offsetof(PyVarObject, ob_size));
    ck_assert_uint_eq(L->bytes_sval, offsetof(PyBytesObject, ob_sval));
    /* the str state bits the reader decodes: kind 2..4, compact 5, ascii 6 */
    PyASCIIObject a;
    uint32_t st;
    memset(&a, 0, sizeof(a));
    a.state.kind = 4;
    a.state.compact = 1;
    a.state.ascii = 1;
    memcpy(&st, &a.state, 4);
    ck_assert_uint_eq(st, (4u << 2) | (1u << 5) | (1u << 6));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pyoffsets");
    TCase *tc = tcase_create(PY_VERSION);
    tcase_add_test(tc, test_pyoffsets_match_the_headers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
