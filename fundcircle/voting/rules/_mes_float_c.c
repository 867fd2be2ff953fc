/* Compiled FloatRuns.run of fundcircle/voting/rules/mes_float.py (optional extension).
 *
 * Runs(sup_ptr, sup_idx, sup_w, weight, cost, tie_rank, groups, by_cost) holds one election's
 * float side, validated and copied once: each candidate p's supporting groups are
 * sup_idx[sup_ptr[p]:sup_ptr[p+1]] (int64, in the engine's order) with their weights sup_w
 * (float64); weight[p] and cost[p] are its exact integers (int64, below 2**53), tie_rank[p] its
 * place in the order (tie, index). Runs.run(b) is the numpy FloatRuns.run at the per-voter budget
 * b: the list of candidates bought, in order, or None when a bound cannot settle a decision.
 *
 * Same algorithm, same operations and the same error formulas as the numpy code (read its module
 * docstring for the error model). Sums: numpy's .sum() is its pairwise sum, reproduced here
 * operation for operation (pairwise_sum2); numpy's masked dot products (xw @ short) go through
 * BLAS in an order that depends on the machine (left to right below 16 terms on this one), here
 * they are the same pairwise sum over the masked terms (left to right below 8). Every
 * bound there is k*2u*Σ for k terms, which covers any order of summation, so either order is
 * certified; they may differ only in the last bits of α, i.e. in which razor-edge cases return
 * None. Must be compiled without FMA contraction or fast-math (setup.py: -ffp-contract=off
 * -fno-fast-math) so that each expression rounds exactly as the Python one does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__FAST_MATH__)
#error "_mes_float_c must not be compiled with -ffast-math: its error bounds assume IEEE rounding"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "_mes_float_c needs each double operation rounded to double (no x87 excess precision)"
#endif

/* 2u: twice the unit roundoff of float64 (mes_float._U2) */
#define U2 (1.0 / 4503599627370496.0) /* 2**-52 */
/* integers from here on are not all exact in float64 (mes_float._EXACT_LIMIT) */
#define EXACT_LIMIT ((int64_t)1 << 53)

/* -- the heap: entries (key, tie rank, version), p's rank unique, as the Python tuples
 *    (key, tie, p, version) order them ------------------------------------------------------ */

typedef struct {
    double key;
    int64_t rank;
    int64_t ver;
    Py_ssize_t p;
} Entry;

static inline int entry_less(const Entry *a, const Entry *b) {
    if (a->key < b->key) return 1;
    if (b->key < a->key) return 0;
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->ver < b->ver;
}

typedef struct {
    Entry *e;
    Py_ssize_t len, cap;
} Heap;

static int heap_push(Heap *h, Entry x) {
    if (h->len == h->cap) {
        Py_ssize_t cap = h->cap ? 2 * h->cap : 64;
        Entry *e = PyMem_Realloc(h->e, (size_t)cap * sizeof(Entry));
        if (!e) return 0;
        h->e = e;
        h->cap = cap;
    }
    Py_ssize_t i = h->len++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (!entry_less(&x, &h->e[parent])) break;
        h->e[i] = h->e[parent];
        i = parent;
    }
    h->e[i] = x;
    return 1;
}

static Entry heap_pop(Heap *h) {
    Entry top = h->e[0];
    Entry last = h->e[--h->len];
    Py_ssize_t n = h->len, i = 0;
    if (n) {
        for (;;) {
            Py_ssize_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && entry_less(&h->e[c + 1], &h->e[c])) c++;
            if (!entry_less(&h->e[c], &last)) break;
            h->e[i] = h->e[c];
            i = c;
        }
        h->e[i] = last;
    }
    return top;
}

/* -- numpy's pairwise sum (numpy/_core/src/umath/loops_utils.h.src), operation for operation -- */

/* numpy's pairwise sum over the entries where mask is set (the others add +0.0, which changes no
 * sum: a sum of finite doubles is never -0.0 unless every term is). Its eight accumulators break
 * the chain of dependent additions that a left-to-right sum waits on; for fewer than 8 terms it
 * is the left-to-right sum. */
static double pairwise_sum_masked(const double *a, const unsigned char *mask, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.;
        for (Py_ssize_t i = 0; i < n; i++) res += mask[i] ? a[i] : 0.0;
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        Py_ssize_t i;
        for (int j = 0; j < 8; j++) r[j] = mask[j] ? a[j] : 0.0;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += mask[i + j] ? a[i + j] : 0.0;
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += mask[i] ? a[i] : 0.0;
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum_masked(a, mask, n2) + pairwise_sum_masked(a + n2, mask + n2, n - n2);
}

/* numpy's pairwise sums of two arrays (all entries: mask NULL, as a.sum() and b.sum(); or the
 * masked ones, as pairwise_sum_masked) in one pass */
#define TERM(v, i) (mask == NULL || mask[i] ? (v)[i] : 0.0)
static void pairwise_sum2(const double *a, const double *b, const unsigned char *mask, Py_ssize_t n,
                          double *sa, double *sb) {
    if (n < 8) {
        double ra = 0., rb = 0.;
        for (Py_ssize_t i = 0; i < n; i++) {
            ra += TERM(a, i);
            rb += TERM(b, i);
        }
        *sa = ra;
        *sb = rb;
        return;
    }
    if (n <= 128) {
        double ra[8], rb[8];
        Py_ssize_t i;
        for (int j = 0; j < 8; j++) {
            ra[j] = TERM(a, j);
            rb[j] = TERM(b, j);
        }
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) {
                ra[j] += TERM(a, i + j);
                rb[j] += TERM(b, i + j);
            }
        double resa = ((ra[0] + ra[1]) + (ra[2] + ra[3])) + ((ra[4] + ra[5]) + (ra[6] + ra[7]));
        double resb = ((rb[0] + rb[1]) + (rb[2] + rb[3])) + ((rb[4] + rb[5]) + (rb[6] + rb[7]));
        for (; i < n; i++) {
            resa += TERM(a, i);
            resb += TERM(b, i);
        }
        *sa = resa;
        *sb = resb;
        return;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    double a1, b1, a2, b2;
    pairwise_sum2(a, b, mask, n2, &a1, &b1);
    pairwise_sum2(a + n2, b + n2, mask ? mask + n2 : NULL, n - n2, &a2, &b2);
    *sa = a1 + a2;
    *sb = b1 + b2;
}
#undef TERM

/* -- the prepared election ----------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t m, groups, nnz, max_deg;
    int by_cost;
    int64_t *sup_ptr, *sup_idx; /* candidate -> supporting groups */
    double *sup_w;
    int64_t *weight, *cost, *rank;
    double *cost_f, *opening_alpha, *opening_key;
    int64_t *grp_ptr, *grp_idx; /* group -> candidates it approves (the transpose) */
    /* candidate p's neighbours (sharing a supporter), built on first use and kept for every run:
       nb_data[nb_start[p] : nb_start[p] + nb_len[p]]; nb_start[p] = -1 until built */
    Py_ssize_t *nb_start, *nb_len, *nb_data, nb_used, nb_cap;
    unsigned char *nb_mark;
    /* scratch of one run */
    double *budgets; /* group g's budget at [2g], a bound on its error at [2g + 1]: one cache line */
    double *alpha_of, *alpha_err;
    double *x, *e, *xw, *ew, *low;
    unsigned char *short_of; /* per supporter entry (nnz): short at p's last evaluation */
    unsigned char *has_short, *done, *stale, *exact, *mask;
    int64_t *version;
    Py_ssize_t *close, *bought;
    Heap heap;
} Runs;

static void runs_free_arrays(Runs *r) {
    void **arrays[] = {
        (void **)&r->sup_ptr, (void **)&r->sup_idx, (void **)&r->sup_w, (void **)&r->weight,
        (void **)&r->cost, (void **)&r->rank, (void **)&r->cost_f, (void **)&r->opening_alpha,
        (void **)&r->opening_key, (void **)&r->grp_ptr, (void **)&r->grp_idx, (void **)&r->nb_start,
        (void **)&r->nb_len, (void **)&r->nb_data, (void **)&r->nb_mark, (void **)&r->budgets,
        (void **)&r->alpha_of, (void **)&r->alpha_err, (void **)&r->x,
        (void **)&r->e, (void **)&r->xw, (void **)&r->ew, (void **)&r->low, (void **)&r->short_of,
        (void **)&r->has_short, (void **)&r->done, (void **)&r->stale, (void **)&r->exact,
        (void **)&r->mask, (void **)&r->version, (void **)&r->close, (void **)&r->bought,
        (void **)&r->heap.e,
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        PyMem_Free(*arrays[i]);
        *arrays[i] = NULL;
    }
    r->heap.len = r->heap.cap = 0;
}

static void runs_dealloc(Runs *r) {
    runs_free_arrays(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

/* A 1-D C-contiguous buffer of 8-byte items: signed integers (want_int) or doubles, copied into
 * a fresh array. Returns its length, or -1 with an exception set. */
static Py_ssize_t copy_buffer(PyObject *obj, const char *name, int want_int, void **out) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_ND | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous 1-D array of %s", name,
                     want_int ? "int64" : "float64");
        return -1;
    }
    const char *f = view.format ? view.format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    int ok = view.ndim == 1 && view.itemsize == 8 && f[1] == '\0' &&
             (want_int ? (f[0] == 'q' || f[0] == 'l') : f[0] == 'd');
    if (!ok) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous 1-D array of %s", name,
                     want_int ? "int64" : "float64");
        return -1;
    }
    Py_ssize_t n = view.shape[0];
    void *copy = PyMem_Malloc(n ? (size_t)n * 8 : 1);
    if (!copy) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, view.buf, (size_t)n * 8);
    PyBuffer_Release(&view);
    *out = copy;
    return n;
}

static int check_csr(const int64_t *ptr, Py_ssize_t rows, Py_ssize_t nnz, const char *name) {
    if (ptr[0] != 0 || ptr[rows] != nnz) {
        PyErr_Format(PyExc_ValueError, "%s must start at 0 and end at the number of entries", name);
        return 0;
    }
    for (Py_ssize_t i = 0; i < rows; i++)
        if (ptr[i + 1] < ptr[i]) {
            PyErr_Format(PyExc_ValueError, "%s must not decrease", name);
            return 0;
        }
    return 1;
}

#define ALLOC(field, count, type)                                                      \
    do {                                                                               \
        r->field = PyMem_Calloc((size_t)((count) > 0 ? (count) : 1), sizeof(type));    \
        if (!r->field) {                                                               \
            PyErr_NoMemory();                                                          \
            goto fail;                                                                 \
        }                                                                              \
    } while (0)

static PyObject *runs_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"sup_ptr", "sup_idx", "sup_w", "weight", "cost", "tie_rank", "groups",
                             "by_cost", NULL};
    PyObject *o_ptr, *o_idx, *o_w, *o_weight, *o_cost, *o_rank;
    Py_ssize_t groups;
    int by_cost;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOnp:Runs", kwlist, &o_ptr, &o_idx, &o_w,
                                     &o_weight, &o_cost, &o_rank, &groups, &by_cost))
        return NULL;
    if (groups < 0) {
        PyErr_SetString(PyExc_ValueError, "groups must be at least 0");
        return NULL;
    }
    Runs *r = (Runs *)type->tp_alloc(type, 0);
    if (!r) return NULL;
    r->by_cost = by_cost;
    r->groups = groups;
    Py_ssize_t n_ptr, nnz, n_w, m, n_cost, n_rank;
    if ((n_ptr = copy_buffer(o_ptr, "sup_ptr", 1, (void **)&r->sup_ptr)) < 0) goto fail;
    if ((nnz = copy_buffer(o_idx, "sup_idx", 1, (void **)&r->sup_idx)) < 0) goto fail;
    if ((n_w = copy_buffer(o_w, "sup_w", 0, (void **)&r->sup_w)) < 0) goto fail;
    if ((m = copy_buffer(o_weight, "weight", 1, (void **)&r->weight)) < 0) goto fail;
    if ((n_cost = copy_buffer(o_cost, "cost", 1, (void **)&r->cost)) < 0) goto fail;
    if ((n_rank = copy_buffer(o_rank, "tie_rank", 1, (void **)&r->rank)) < 0) goto fail;
    r->m = m;
    r->nnz = nnz;
    if (n_ptr != m + 1 || n_w != nnz || n_cost != m || n_rank != m) {
        PyErr_SetString(PyExc_ValueError,
                        "lengths disagree: sup_ptr needs one more entry than weight, cost and "
                        "tie_rank; sup_w as many as sup_idx");
        goto fail;
    }
    if (!check_csr(r->sup_ptr, m, nnz, "sup_ptr")) goto fail;
    ALLOC(mask, groups, unsigned char);
    ALLOC(grp_ptr, groups + 1, int64_t);
    ALLOC(grp_idx, nnz, int64_t);
    ALLOC(cost_f, m, double);
    ALLOC(opening_alpha, m, double);
    ALLOC(opening_key, m, double);
    r->max_deg = 0;
    for (Py_ssize_t p = 0; p < m; p++) {
        if (r->weight[p] < 1 || r->weight[p] >= EXACT_LIMIT || r->cost[p] < 1 || r->cost[p] >= EXACT_LIMIT) {
            PyErr_SetString(PyExc_ValueError, "every weight and cost must be at least 1 and below 2**53");
            goto fail;
        }
        Py_ssize_t deg = (Py_ssize_t)(r->sup_ptr[p + 1] - r->sup_ptr[p]);
        if (deg > r->max_deg) r->max_deg = deg;
        double total = 0.0; /* integers below 2**53: exact in any order */
        for (int64_t i = r->sup_ptr[p]; i < r->sup_ptr[p + 1]; i++) {
            int64_t g = r->sup_idx[i];
            double w = r->sup_w[i];
            if (g < 0 || g >= groups) {
                PyErr_SetString(PyExc_ValueError, "sup_idx holds a group out of range");
                goto fail;
            }
            if (r->mask[g]) {
                PyErr_SetString(PyExc_ValueError, "a candidate lists a supporting group twice");
                goto fail;
            }
            r->mask[g] = 1;
            if (!(w >= 1.0 && w < 9007199254740992.0) || w != floor(w)) {
                PyErr_SetString(PyExc_ValueError, "every group weight must be an integer from 1 to below 2**53");
                goto fail;
            }
            total += w;
            if (total >= 9007199254740992.0) break; /* caught just below */
            r->grp_ptr[g + 1]++;
        }
        for (int64_t i = r->sup_ptr[p]; i < r->sup_ptr[p + 1]; i++) r->mask[r->sup_idx[i]] = 0;
        if (total != (double)r->weight[p]) {
            PyErr_SetString(PyExc_ValueError, "weight[p] must be the sum of p's supporting group weights");
            goto fail;
        }
        r->cost_f[p] = (double)r->cost[p];
        /* mes_float: opening_alpha = cost/weight; the exact opening price 1/W or C/W, correctly
           rounded as float(Fraction) is */
        r->opening_alpha[p] = r->cost_f[p] / (double)r->weight[p];
        r->opening_key[p] = by_cost ? 1.0 / (double)r->weight[p] : r->opening_alpha[p];
    }
    /* the transpose: each group's candidates (stale marking after a purchase) */
    for (Py_ssize_t g = 0; g < groups; g++) r->grp_ptr[g + 1] += r->grp_ptr[g];
    {
        int64_t *fill = PyMem_Malloc((size_t)(groups > 0 ? groups : 1) * sizeof(int64_t));
        if (!fill) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(fill, r->grp_ptr, (size_t)groups * sizeof(int64_t));
        for (Py_ssize_t p = 0; p < m; p++)
            for (int64_t i = r->sup_ptr[p]; i < r->sup_ptr[p + 1]; i++) r->grp_idx[fill[r->sup_idx[i]]++] = p;
        PyMem_Free(fill);
    }
    ALLOC(nb_start, m, Py_ssize_t);
    ALLOC(nb_len, m, Py_ssize_t);
    ALLOC(nb_mark, m, unsigned char);
    for (Py_ssize_t p = 0; p < m; p++) r->nb_start[p] = -1;
    ALLOC(budgets, 2 * groups, double);
    ALLOC(alpha_of, m, double);
    ALLOC(alpha_err, m, double);
    ALLOC(x, r->max_deg, double);
    ALLOC(e, r->max_deg, double);
    ALLOC(xw, r->max_deg, double);
    ALLOC(ew, r->max_deg, double);
    ALLOC(low, r->max_deg, double);
    ALLOC(short_of, nnz, unsigned char);
    ALLOC(has_short, m, unsigned char);
    ALLOC(done, m, unsigned char);
    ALLOC(stale, m, unsigned char);
    ALLOC(exact, m, unsigned char);
    ALLOC(version, m, int64_t);
    ALLOC(close, m, Py_ssize_t);
    ALLOC(bought, m, Py_ssize_t);
    return (PyObject *)r;
fail:
    Py_DECREF(r);
    return NULL;
}

/* -- one run -------------------------------------------------------------------------------- */

/* p's neighbours: the candidates its supporting groups approve, p aside (0 on no memory) */
static int neighbours(Runs *r, Py_ssize_t p) {
    if (r->nb_start[p] >= 0) return 1;
    unsigned char *mark = r->nb_mark;
    Py_ssize_t start = r->nb_used, len = 0;
    mark[p] = 1;
    for (int64_t i = r->sup_ptr[p]; i < r->sup_ptr[p + 1]; i++) {
        int64_t g = r->sup_idx[i];
        for (int64_t j = r->grp_ptr[g]; j < r->grp_ptr[g + 1]; j++) {
            Py_ssize_t q = (Py_ssize_t)r->grp_idx[j];
            if (mark[q]) continue;
            mark[q] = 1;
            if (start + len == r->nb_cap) {
                Py_ssize_t cap = r->nb_cap ? 2 * r->nb_cap : 1024;
                Py_ssize_t *data = PyMem_Realloc(r->nb_data, (size_t)cap * sizeof(Py_ssize_t));
                if (!data) {
                    for (Py_ssize_t t = 0; t < len; t++) mark[r->nb_data[start + t]] = 0;
                    mark[p] = 0;
                    return 0;
                }
                r->nb_data = data;
                r->nb_cap = cap;
            }
            r->nb_data[start + len++] = q;
        }
    }
    for (Py_ssize_t t = 0; t < len; t++) mark[r->nb_data[start + t]] = 0;
    mark[p] = 0;
    r->nb_start[p] = start;
    r->nb_len[p] = len;
    r->nb_used = start + len;
    return 1;
}

typedef struct {
    double alpha, err;
    int exact; /* nobody short: the price is the exact opening price */
} Evaluated;

enum { EVAL_UNDECIDED = 0, EVAL_UNAFFORDABLE = 1, EVAL_OK = 2 };

/* mes_float.FloatRuns._evaluate. On EVAL_OK with somebody short, p's short mask is in
 * short_of[sup_ptr[p]...] and has_short[p] is set. */
static int evaluate(Runs *r, Py_ssize_t p, double slack, double alpha_below, Evaluated *out) {
    const int64_t *s = r->sup_idx + r->sup_ptr[p];
    const double *w = r->sup_w + r->sup_ptr[p];
    Py_ssize_t k = (Py_ssize_t)(r->sup_ptr[p + 1] - r->sup_ptr[p]);
    double *x = r->x, *e = r->e, *xw = r->xw, *ew = r->ew, *low = r->low;
    unsigned char *sh = r->short_of + r->sup_ptr[p];
    double cost = r->cost_f[p];
    double total_w = (double)r->weight[p];
    double alpha = cost / total_w;
    double low_min = INFINITY;
    for (Py_ssize_t i = 0; i < k; i++) {
        const double *be = r->budgets + 2 * s[i];
        x[i] = be[0];
        e[i] = be[1];
        low[i] = x[i] - e[i];
        if (low[i] < low_min) low_min = low[i];
        xw[i] = x[i] * w[i]; /* used below unless nobody is short */
        ew[i] = e[i] * w[i];
    }
    if (low_min >= alpha + U2 * alpha + slack) { /* nobody short: α = cost/weight exactly */
        out->alpha = alpha;
        out->err = U2 * alpha;
        out->exact = 1;
        r->has_short[p] = 0;
        return EVAL_OK;
    }
    double dk = (double)k, money, money_err;
    pairwise_sum2(xw, ew, NULL, k, &money, &money_err); /* xw.sum(), ew.sum() */
    money_err = money_err + dk * U2 * (money + cost) + slack;
    if (money + money_err < cost) return EVAL_UNAFFORDABLE;
    if (money - money_err < cost) return EVAL_UNDECIDED; /* too close to tell */
    if (alpha_below > alpha) alpha = alpha_below;
    Py_ssize_t count = 0, now;
    for (Py_ssize_t i = 0; i < k; i++) count += (sh[i] = x[i] < alpha);
    double paid, paying_w;
    for (;;) {
        double short_w; /* integers below 2**53: exact in any order */
        pairwise_sum2(xw, w, sh, k, &paid, &short_w);
        paying_w = total_w - short_w;
        if (paying_w <= 0) return EVAL_UNDECIDED; /* the split is off: the exact engine decides */
        alpha = (cost - paid) / paying_w;
        now = 0;
        for (Py_ssize_t i = 0; i < k; i++) now += (sh[i] = x[i] < alpha);
        if (now == count) break;
        if (now < count) return EVAL_UNDECIDED; /* α fell by a rounding: a budget within roundings of α */
        count = now;
    }
    double short_err = pairwise_sum_masked(ew, sh, k);
    double err = (short_err + dk * U2 * (paid + cost)) / paying_w + U2 * alpha + slack;
    double hi = alpha + err, lo = alpha - err;
    Py_ssize_t below_hi = 0, below_lo = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        below_hi += low[i] < hi;
        below_lo += x[i] + e[i] <= lo;
    }
    if (below_hi != count || below_lo != count) return EVAL_UNDECIDED;
    out->alpha = alpha;
    out->err = err;
    out->exact = 0;
    r->has_short[p] = 1;
    return EVAL_OK;
}

/* refresh of FloatRuns.run: 1 done, 0 undecided (the run returns None), -1 out of memory */
static int refresh(Runs *r, Py_ssize_t q, double slack, double *key_err) {
    Evaluated ev;
    int got = evaluate(r, q, slack, r->alpha_of[q] - r->alpha_err[q], &ev);
    if (got == EVAL_UNDECIDED) return 0;
    r->version[q]++;
    r->stale[q] = 0;
    if (got == EVAL_UNAFFORDABLE) { /* budgets only fall: unaffordable for the rest of the run */
        r->done[q] = 1;
        return 1;
    }
    r->alpha_of[q] = ev.alpha;
    r->alpha_err[q] = ev.err;
    r->exact[q] = (unsigned char)ev.exact;
    double key;
    if (ev.exact) {
        key = r->opening_key[q];
    } else {
        key = r->by_cost ? ev.alpha / r->cost_f[q] : ev.alpha;
        double err = (r->by_cost ? ev.err / r->cost_f[q] : ev.err) + 2 * U2 * key;
        if (err > *key_err) *key_err = err;
    }
    Entry entry = {key, r->rank[q], r->version[q], q};
    return heap_push(&r->heap, entry) ? 1 : -1;
}

/* (exact price of q, tie, q) < (exact price of p, tie, p): 1/W or C/W compared by cross-
 * multiplication (each factor below 2**53: the products fit 128 bits) */
static int exact_before(const Runs *r, Py_ssize_t q, Py_ssize_t p) {
    __int128 lhs, rhs;
    if (r->by_cost) { /* 1/Wq < 1/Wp  <=>  Wp < Wq */
        lhs = (__int128)r->weight[p];
        rhs = (__int128)r->weight[q];
    } else { /* Cq/Wq < Cp/Wp  <=>  Cq·Wp < Cp·Wq */
        lhs = (__int128)r->cost[q] * r->weight[p];
        rhs = (__int128)r->cost[p] * r->weight[q];
    }
    if (lhs != rhs) return lhs < rhs;
    return r->rank[q] < r->rank[p];
}

/* FloatRuns.run: the number of candidates bought (in r->bought), -1 undecided, -2 no memory */
static Py_ssize_t run(Runs *r, int64_t b_int) {
    Py_ssize_t m = r->m, n_bought = 0;
    double b = (double)b_int;
    double slack = 8 * U2 * b;
    double grow_by = 2 * U2 * b;
    double key_err = 0.0;
    Heap *heap = &r->heap;
    for (Py_ssize_t g = 0; g < r->groups; g++) {
        r->budgets[2 * g] = b;
        r->budgets[2 * g + 1] = 0.0;
    }
    heap->len = 0;
    for (Py_ssize_t p = 0; p < m; p++) {
        r->done[p] = (__int128)r->weight[p] * b_int < (__int128)r->cost[p]; /* exact */
        r->stale[p] = 0;
        r->version[p] = 0;
        r->exact[p] = 1;
        r->has_short[p] = 0;
        r->alpha_of[p] = r->opening_alpha[p];
        r->alpha_err[p] = U2 * r->opening_alpha[p];
        if (!r->done[p]) {
            Entry entry = {r->opening_key[p], r->rank[p], 0, p};
            if (!heap_push(heap, entry)) return -2;
        }
    }
    while (heap->len) {
        Entry entry = heap_pop(heap);
        Py_ssize_t p = entry.p;
        if (r->done[p] || entry.ver != r->version[p]) continue;
        if (r->stale[p]) {
            int got = refresh(r, p, slack, &key_err);
            if (got <= 0) return got ? -2 : -1;
            continue;
        }
        /* p leads the heap; it must lead every project still in play for certain */
        while (heap->len && (r->done[heap->e[0].p] || heap->e[0].ver != r->version[heap->e[0].p]))
            heap_pop(heap);
        double margin = 2 * key_err;
        if (heap->len && heap->e[0].key - entry.key <= margin) {
            Py_ssize_t n_close = 0, n_rivals = 0;
            for (Py_ssize_t i = 0; i < heap->len; i++) {
                const Entry *c = &heap->e[i];
                if (c->key - entry.key <= margin && !r->done[c->p] && c->ver == r->version[c->p]) {
                    r->close[n_close++] = c->p;
                    n_rivals += r->stale[c->p];
                }
            }
            if (n_rivals) {
                for (Py_ssize_t i = 0; i < n_close; i++) {
                    Py_ssize_t q = r->close[i];
                    if (!r->stale[q]) continue;
                    int got = refresh(r, q, slack, &key_err);
                    if (got <= 0) return got ? -2 : -1;
                }
                if (!heap_push(heap, entry)) return -2;
                continue;
            }
            for (Py_ssize_t i = 0; i < n_close; i++) {
                Py_ssize_t q = r->close[i];
                if (!r->exact[p] || !r->exact[q] || exact_before(r, q, p)) return -1;
            }
        }
        /* buy p: the short supporters pay all they have (exactly 0 left), the others α */
        const int64_t *s = r->sup_idx + r->sup_ptr[p];
        const unsigned char *sh = r->short_of + r->sup_ptr[p];
        Py_ssize_t k = (Py_ssize_t)(r->sup_ptr[p + 1] - r->sup_ptr[p]);
        double alpha = r->alpha_of[p], add = r->alpha_err[p] + grow_by;
        int any_short = r->has_short[p];
        for (Py_ssize_t i = 0; i < k; i++) {
            double *be = r->budgets + 2 * s[i];
            if (any_short && sh[i]) {
                be[0] = 0.0;
                be[1] = 0.0;
            } else {
                be[0] = be[0] - alpha;
                be[1] = be[1] + add;
            }
        }
        r->done[p] = 1;
        r->bought[n_bought++] = p;
        /* every candidate sharing a supporter with p may have a new price */
        if (!neighbours(r, p)) return -2;
        const Py_ssize_t *nb = r->nb_data + r->nb_start[p];
        unsigned char *stale = r->stale;
        for (Py_ssize_t i = 0, n = r->nb_len[p]; i < n; i++) stale[nb[i]] = 1;
    }
    return n_bought;
}

static PyObject *runs_run(Runs *r, PyObject *arg) {
    int overflow = 0;
    long long b = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (b == -1 && PyErr_Occurred()) return NULL;
    if (overflow || b < 0 || b >= EXACT_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "per_voter_scaled must be an integer from 0 to below 2**53");
        return NULL;
    }
    Py_ssize_t n = run(r, (int64_t)b);
    if (n == -2) return PyErr_NoMemory();
    if (n == -1) Py_RETURN_NONE;
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromSsize_t(r->bought[i]);
        if (!v) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static PyMethodDef runs_methods[] = {
    {"run", (PyCFunction)runs_run, METH_O,
     "run(per_voter_scaled) -> list of the candidates bought in order, or None when a bound cannot "
     "settle a decision (FloatRuns.run)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RunsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fundcircle.voting.rules._mes_float_c.Runs",
    .tp_basicsize = sizeof(Runs),
    .tp_dealloc = (destructor)runs_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Runs(sup_ptr, sup_idx, sup_w, weight, cost, tie_rank, groups, by_cost): one election's "
              "certified float MES runs (mes_float.FloatRuns)",
    .tp_methods = runs_methods,
    .tp_new = runs_new,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mes_float_c",
                                    "Compiled certified float MES runs (mes_float.FloatRuns.run).", -1,
                                    NULL};

PyMODINIT_FUNC PyInit__mes_float_c(void) {
    if (PyType_Ready(&RunsType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (!mod) return NULL;
    Py_INCREF(&RunsType);
    if (PyModule_AddObject(mod, "Runs", (PyObject *)&RunsType) < 0) {
        Py_DECREF(&RunsType);
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
