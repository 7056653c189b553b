/*
 * hs_test.h - a tiny test framework: CHECK macros that report and return, a test table,
 * and a main that runs every test and exits non-zero on any failure.
 *
 *   static void test_something(void) { CHECK(1 + 1 == 2); CHECK_EQ_INT(f(), 3); }
 *   HS_TESTS(test_something, test_other)
 */
#ifndef HS_TEST_H
#define HS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set by the CHECK macros; read by the runner (test programs may have globals). */
extern int hs_test_failed;
extern int hs_test_checks;

#define HS_FAIL_AT(...)                                                                      \
    do {                                                                                     \
        hs_test_failed = 1;                                                                  \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                    \
        fprintf(stderr, __VA_ARGS__);                                                        \
        fprintf(stderr, "\n");                                                               \
    } while (0)

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        hs_test_checks++;                                                                    \
        if (!(cond)) {                                                                       \
            HS_FAIL_AT("CHECK(%s) failed", #cond);                                           \
            return;                                                                          \
        }                                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                 \
    do {                                                                                     \
        hs_test_checks++;                                                                    \
        if (!(cond)) {                                                                       \
            HS_FAIL_AT(__VA_ARGS__);                                                         \
            return;                                                                          \
        }                                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                   \
    do {                                                                                     \
        long long hs_a_ = (long long)(a), hs_b_ = (long long)(b);                            \
        hs_test_checks++;                                                                    \
        if (hs_a_ != hs_b_) {                                                                \
            HS_FAIL_AT("%s == %s failed: %lld != %lld", #a, #b, hs_a_, hs_b_);               \
            return;                                                                          \
        }                                                                                    \
    } while (0)

#define CHECK_STATUS(expr, want) CHECK_EQ_INT((expr), (want))
#define CHECK_OK(expr) CHECK_EQ_INT((expr), HAILO_SUCCESS)

#define CHECK_CONTAINS(haystack, needle)                                                     \
    do {                                                                                     \
        hs_test_checks++;                                                                    \
        if (strstr((haystack), (needle)) == NULL) {                                          \
            HS_FAIL_AT("\"%s\" does not contain \"%s\"", (haystack), (needle));              \
            return;                                                                          \
        }                                                                                    \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} hs_test_case;

int hs_test_run(const char *program, const hs_test_case *tests, size_t count);

#define HS_TEST_ENTRY(fn) {#fn, fn},
#define HS_TESTS(...)                                                                        \
    int main(void)                                                                           \
    {                                                                                        \
        static const hs_test_case tests[] = {HS_TEST_MAP(HS_TEST_ENTRY, __VA_ARGS__)};       \
        return hs_test_run(__FILE__, tests, sizeof tests / sizeof tests[0]);                 \
    }

/* HS_TEST_MAP(M, a, b, ...) -> M(a) M(b) ... (up to 64 tests per program) */
#define HS_TM_1(M, x) M(x)
#define HS_TM_2(M, x, ...) M(x) HS_TM_1(M, __VA_ARGS__)
#define HS_TM_3(M, x, ...) M(x) HS_TM_2(M, __VA_ARGS__)
#define HS_TM_4(M, x, ...) M(x) HS_TM_3(M, __VA_ARGS__)
#define HS_TM_5(M, x, ...) M(x) HS_TM_4(M, __VA_ARGS__)
#define HS_TM_6(M, x, ...) M(x) HS_TM_5(M, __VA_ARGS__)
#define HS_TM_7(M, x, ...) M(x) HS_TM_6(M, __VA_ARGS__)
#define HS_TM_8(M, x, ...) M(x) HS_TM_7(M, __VA_ARGS__)
#define HS_TM_9(M, x, ...) M(x) HS_TM_8(M, __VA_ARGS__)
#define HS_TM_10(M, x, ...) M(x) HS_TM_9(M, __VA_ARGS__)
#define HS_TM_11(M, x, ...) M(x) HS_TM_10(M, __VA_ARGS__)
#define HS_TM_12(M, x, ...) M(x) HS_TM_11(M, __VA_ARGS__)
#define HS_TM_13(M, x, ...) M(x) HS_TM_12(M, __VA_ARGS__)
#define HS_TM_14(M, x, ...) M(x) HS_TM_13(M, __VA_ARGS__)
#define HS_TM_15(M, x, ...) M(x) HS_TM_14(M, __VA_ARGS__)
#define HS_TM_16(M, x, ...) M(x) HS_TM_15(M, __VA_ARGS__)
#define HS_TM_17(M, x, ...) M(x) HS_TM_16(M, __VA_ARGS__)
#define HS_TM_18(M, x, ...) M(x) HS_TM_17(M, __VA_ARGS__)
#define HS_TM_19(M, x, ...) M(x) HS_TM_18(M, __VA_ARGS__)
#define HS_TM_20(M, x, ...) M(x) HS_TM_19(M, __VA_ARGS__)
#define HS_TM_21(M, x, ...) M(x) HS_TM_20(M, __VA_ARGS__)
#define HS_TM_22(M, x, ...) M(x) HS_TM_21(M, __VA_ARGS__)
#define HS_TM_23(M, x, ...) M(x) HS_TM_22(M, __VA_ARGS__)
#define HS_TM_24(M, x, ...) M(x) HS_TM_23(M, __VA_ARGS__)
#define HS_TM_25(M, x, ...) M(x) HS_TM_24(M, __VA_ARGS__)
#define HS_TM_26(M, x, ...) M(x) HS_TM_25(M, __VA_ARGS__)
#define HS_TM_27(M, x, ...) M(x) HS_TM_26(M, __VA_ARGS__)
#define HS_TM_28(M, x, ...) M(x) HS_TM_27(M, __VA_ARGS__)
#define HS_TM_29(M, x, ...) M(x) HS_TM_28(M, __VA_ARGS__)
#define HS_TM_30(M, x, ...) M(x) HS_TM_29(M, __VA_ARGS__)
#define HS_TM_31(M, x, ...) M(x) HS_TM_30(M, __VA_ARGS__)
#define HS_TM_32(M, x, ...) M(x) HS_TM_31(M, __VA_ARGS__)
#define HS_TM_33(M, x, ...) M(x) HS_TM_32(M, __VA_ARGS__)
#define HS_TM_34(M, x, ...) M(x) HS_TM_33(M, __VA_ARGS__)
#define HS_TM_35(M, x, ...) M(x) HS_TM_34(M, __VA_ARGS__)
#define HS_TM_36(M, x, ...) M(x) HS_TM_35(M, __VA_ARGS__)
#define HS_TM_37(M, x, ...) M(x) HS_TM_36(M, __VA_ARGS__)
#define HS_TM_38(M, x, ...) M(x) HS_TM_37(M, __VA_ARGS__)
#define HS_TM_39(M, x, ...) M(x) HS_TM_38(M, __VA_ARGS__)
#define HS_TM_40(M, x, ...) M(x) HS_TM_39(M, __VA_ARGS__)
#define HS_TM_41(M, x, ...) M(x) HS_TM_40(M, __VA_ARGS__)
#define HS_TM_42(M, x, ...) M(x) HS_TM_41(M, __VA_ARGS__)
#define HS_TM_43(M, x, ...) M(x) HS_TM_42(M, __VA_ARGS__)
#define HS_TM_44(M, x, ...) M(x) HS_TM_43(M, __VA_ARGS__)
#define HS_TM_45(M, x, ...) M(x) HS_TM_44(M, __VA_ARGS__)
#define HS_TM_46(M, x, ...) M(x) HS_TM_45(M, __VA_ARGS__)
#define HS_TM_47(M, x, ...) M(x) HS_TM_46(M, __VA_ARGS__)
#define HS_TM_48(M, x, ...) M(x) HS_TM_47(M, __VA_ARGS__)
#define HS_TM_N(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, \
                _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, _33, _34,   \
                _35, _36, _37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47, _48, N, ...)     \
    HS_TM_##N
#define HS_TEST_MAP(M, ...)                                                                  \
    HS_TM_N(__VA_ARGS__, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32,  \
            31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12,   \
            11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)(M, __VA_ARGS__)

#endif /* HS_TEST_H */
