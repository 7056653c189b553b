/* hs_test.c - the runner of hs_test.h. */
#include "hs_test.h"

int hs_test_failed;
int hs_test_checks;

int hs_test_run(const char *program, const hs_test_case *tests, size_t count)
{
    size_t failed = 0;
    for (size_t i = 0; i < count; i++) {
        hs_test_failed = 0;
        tests[i].fn();
        if (hs_test_failed) {
            failed++;
            fprintf(stderr, "FAIL %s\n", tests[i].name);
        }
    }
    printf("%s: %zu tests, %zu failed, %d checks\n", program, count, failed, hs_test_checks);
    return failed == 0 ? 0 : 1;
}
