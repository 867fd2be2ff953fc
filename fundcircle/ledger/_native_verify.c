/* Compiled "confirm clean" pass of fundcircle.ledger.checks.verify (optional extension).
 *
 * verify(path, sql_accounts, sql_reversed, sql_transactions, sql_seals, sql_postings) opens the
 * SQLite file read-only on its own connection, reads the rows checks.py reads (the SQL is passed
 * in; see walk() for the transactions+seals join), merges them per transaction like checks._walk
 * and checks every invariant _Checker.sealed checks. It
 * returns (transactions, postings, head_seq, head_hash) only when EVERYTHING holds, and None on
 * any anomaly or anything it does not handle (a value of an unexpected type, invalid UTF-8,
 * out-of-order rows, integer overflow, an I/O error): the caller then runs the Python pass,
 * which writes the detailed report. This code therefore never formats a problem; its one
 * property is "it says clean => the Python pass says clean, with the same counts and head".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* -- growable byte buffer ----------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

static int buf_put(Buf *b, const void *src, size_t n) {
    if (!buf_reserve(b, n)) return 0;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 1;
}

#define BUF_LIT(b, s) buf_put((b), (s), sizeof(s) - 1)

static int buf_int(Buf *b, int64_t v) {
    char tmp[24];
    char *end = tmp + sizeof tmp, *q = end;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--q = '-';
    return buf_put(b, q, (size_t)(end - q));
}

/* A JSON string literal exactly as Python's json.encoder.encode_basestring writes it
 * (ensure_ascii=False): \" \\ \b \f \n \r \t, other code points below 0x20 as \u00xx (lower-case
 * hex), everything else (UTF-8 bytes included) as is. */
static int buf_json_string(Buf *b, const unsigned char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (!buf_reserve(b, n * 6 + 2)) return 0;
    unsigned char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        default:
            if (c < 0x20) {
                *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hex[c >> 4]; *o++ = hex[c & 15];
            } else {
                *o++ = c;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 1;
}

/* Well-formed UTF-8 (Unicode Table 3-7): what Python's strict decoder accepts, so a text the
 * Python pass could not read is never declared clean here. */
static int utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return 0;
        if (i + need >= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

/* -- int64 -> index hash map (open addressing) ------------------------------------------ */

typedef struct {
    int64_t *keys;
    int64_t *vals;
    unsigned char *used;
    size_t cap, count;
} Map;

static uint64_t mix(int64_t k) {
    uint64_t x = (uint64_t)k;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static void map_free(Map *m) {
    free(m->keys); free(m->vals); free(m->used);
    memset(m, 0, sizeof *m);
}

static int map_init(Map *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 16) cap *= 2;
    m->keys = malloc(cap * sizeof(int64_t));
    m->vals = malloc(cap * sizeof(int64_t));
    m->used = calloc(cap, 1);
    m->cap = cap;
    m->count = 0;
    return m->keys && m->vals && m->used;
}

static int64_t *map_find(const Map *m, int64_t key) {
    size_t mask = m->cap - 1, i = (size_t)mix(key) & mask;
    while (m->used[i]) {
        if (m->keys[i] == key) return &m->vals[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

static int map_put(Map *m, int64_t key, int64_t val) {
    if ((m->count + 1) * 2 > m->cap) {
        Map bigger;
        if (!map_init(&bigger, m->cap)) { map_free(&bigger); return 0; }
        for (size_t i = 0; i < m->cap; i++)
            if (m->used[i] && !map_put(&bigger, m->keys[i], m->vals[i])) { map_free(&bigger); return 0; }
        map_free(m);
        *m = bigger;
    }
    size_t mask = m->cap - 1, i = (size_t)mix(key) & mask;
    while (m->used[i]) {
        if (m->keys[i] == key) { m->vals[i] = val; return 1; }
        i = (i + 1) & mask;
    }
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return 1;
}

/* -- state -------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *key, *key_json, *cur;
    size_t key_len, key_json_len, cur_len;
    int cur_id;          /* interned currency */
    int credit_normal, floor_zero;
    int64_t balance;     /* running debit-positive balance */
} Account;

typedef struct {
    int account;         /* index into accounts */
    unsigned char *cur;  /* posting's currency text (equals the account's) */
    size_t cur_len;
    int64_t amount, balance_after;
} Leg;

typedef struct { int64_t account_id, amount; } Pair;  /* for reversal comparisons */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st_acc, *st_rev, *st_tx, *st_seal, *st_post;
    Account *accounts;
    size_t n_accounts;
    Map account_index;   /* account id -> index */
    Map reversed_ids;    /* ids some transaction reverses -> 1 */
    Map originals;       /* reversed transaction id -> index into orig_meta */
    Map reversed_by;     /* reversed id -> 1 */
    int64_t *orig_meta;  /* triples: seq, offset into orig_pairs, count */
    size_t orig_meta_len, orig_meta_cap;
    Pair *orig_pairs;
    size_t orig_pairs_len, orig_pairs_cap;
    Leg *legs;
    size_t legs_cap;
    Pair *pairs;
    size_t pairs_cap;
    int64_t *cur_sums;   /* per interned currency, this transaction */
    int n_currencies;
    Buf canon;
    EVP_MD_CTX *md_ctx;
    const EVP_MD *md;
    EVP_MD *md_owned;
    /* results */
    int64_t count, posting_count, last_seq;
    unsigned char last_hash[32];
} State;

static unsigned char *dup_bytes(const void *src, size_t n) {
    unsigned char *p = malloc(n + 1);
    if (p) { memcpy(p, src, n); p[n] = 0; }
    return p;
}

/* Column access through sqlite3_column_value: the sqlite3_value_* calls skip the per-call
 * bookkeeping of sqlite3_column_*; safe here because the connection is private to this call
 * (SQLITE_OPEN_NOMUTEX: no protected/unprotected distinction). */
#define COL(st, i) sqlite3_column_value((st), (i))

/* A TEXT value as well-formed UTF-8, or NULL (wrong type / invalid). */
static const unsigned char *val_text(sqlite3_value *v, size_t *len) {
    if (sqlite3_value_type(v) != SQLITE_TEXT) return NULL;
    const unsigned char *s = sqlite3_value_text(v);
    int n = sqlite3_value_bytes(v);
    if (!s || n < 0 || !utf8_ok(s, (size_t)n)) return NULL;
    *len = (size_t)n;
    return s;
}

static int val_int(sqlite3_value *v, int64_t *out) {
    if (sqlite3_value_type(v) != SQLITE_INTEGER) return 0;
    *out = sqlite3_value_int64(v);
    return 1;
}

#define col_text(st, i, len) val_text(COL((st), (i)), (len))
#define col_int(st, i, out) val_int(COL((st), (i)), (out))

static int bytes_cmp(const unsigned char *a, size_t na, const unsigned char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c) return c;
    return na < nb ? -1 : na > nb ? 1 : 0;
}

static int load_accounts(State *S) {
    size_t cap = 64;
    S->accounts = calloc(cap, sizeof(Account));
    if (!S->accounts || !map_init(&S->account_index, 64)) return 0;
    /* interned currencies: index = cur_id, value = first account holding it */
    size_t cur_cap = 8;
    int *cur_owner = malloc(cur_cap * sizeof(int));
    if (!cur_owner) return 0;
    int rc, ok = 1;
    while ((rc = sqlite3_step(S->st_acc)) == SQLITE_ROW) {
        int64_t id, floor;
        size_t key_len, cur_len, side_len;
        const unsigned char *key, *cur, *side;
        if (!col_int(S->st_acc, 0, &id) || !(key = col_text(S->st_acc, 1, &key_len))
            || !(cur = col_text(S->st_acc, 2, &cur_len)) || !(side = col_text(S->st_acc, 3, &side_len))
            || !col_int(S->st_acc, 4, &floor) || map_find(&S->account_index, id)) { ok = 0; break; }
        if (S->n_accounts == cap) {
            Account *p = realloc(S->accounts, cap * 2 * sizeof(Account));
            if (!p) { ok = 0; break; }
            S->accounts = p;
            cap *= 2;
        }
        size_t index = S->n_accounts++;  /* counted at once: state_free frees a half-built entry */
        Account *a = &S->accounts[index];
        memset(a, 0, sizeof *a);
        a->key = dup_bytes(key, key_len);
        a->key_len = key_len;
        a->cur = dup_bytes(cur, cur_len);
        a->cur_len = cur_len;
        Buf kj = {0};
        if (!a->key || !a->cur || !buf_json_string(&kj, key, key_len)) { free(kj.p); ok = 0; break; }
        a->key_json = kj.p;
        a->key_json_len = kj.len;
        a->credit_normal = side_len == 6 && memcmp(side, "credit", 6) == 0;
        a->floor_zero = floor != 0;
        a->cur_id = -1;
        for (int c = 0; c < S->n_currencies; c++) {
            Account *o = &S->accounts[cur_owner[c]];
            if (bytes_cmp(o->cur, o->cur_len, cur, cur_len) == 0) { a->cur_id = c; break; }
        }
        if (a->cur_id < 0) {
            if ((size_t)S->n_currencies == cur_cap) {
                int *p = realloc(cur_owner, cur_cap * 2 * sizeof(int));
                if (!p) { ok = 0; break; }
                cur_owner = p;
                cur_cap *= 2;
            }
            cur_owner[S->n_currencies] = (int)index;
            a->cur_id = S->n_currencies++;
        }
        if (!map_put(&S->account_index, id, (int64_t)index)) { ok = 0; break; }
    }
    free(cur_owner);
    if (!ok || rc != SQLITE_DONE) return 0;
    S->cur_sums = calloc((size_t)S->n_currencies + 1, sizeof(int64_t));
    return S->cur_sums != NULL;
}

static int load_reversed(State *S) {
    int rc;
    if (!map_init(&S->reversed_ids, 64)) return 0;
    while ((rc = sqlite3_step(S->st_rev)) == SQLITE_ROW) {
        int64_t id;
        if (!col_int(S->st_rev, 0, &id) || !map_put(&S->reversed_ids, id, 1)) return 0;
    }
    return rc == SQLITE_DONE;
}

static int pair_cmp(const void *x, const void *y) {
    const Pair *a = x, *b = y;
    if (a->account_id != b->account_id) return a->account_id < b->account_id ? -1 : 1;
    return a->amount < b->amount ? -1 : a->amount > b->amount;
}

/* sorted, without duplicates (Python compares sets); returns the new length */
static size_t sort_unique(Pair *p, size_t n) {
    if (n == 0) return 0;
    qsort(p, n, sizeof(Pair), pair_cmp);
    size_t w = 1;
    for (size_t i = 1; i < n; i++)
        if (pair_cmp(&p[i], &p[w - 1]) != 0) p[w++] = p[i];
    return w;
}

/* leg_cmp's accounts (qsort has no context argument); per thread, so concurrent calls are safe */
static __thread const Account *t_accounts;

/* canonical order: (account key, currency, amount), strings by code point = UTF-8 bytes */
static int leg_cmp(const void *x, const void *y) {
    const Leg *a = x, *b = y;
    const Account *A = &t_accounts[a->account], *B = &t_accounts[b->account];
    int c = bytes_cmp(A->key, A->key_len, B->key, B->key_len);
    if (c) return c;
    c = bytes_cmp(a->cur, a->cur_len, b->cur, b->cur_len);
    if (c) return c;
    return a->amount < b->amount ? -1 : a->amount > b->amount;
}

/* One sealed transaction (checks._Checker.sealed); 0 = not clean. */
static int check_sealed(State *S, int64_t tx_id, const unsigned char *key, size_t key_len,
                        const unsigned char *kind, size_t kind_len, const unsigned char *eff, size_t eff_len,
                        int has_reverses, int64_t reverses_id, int64_t seq,
                        const unsigned char *prev, int prev_len /* -1: NULL */,
                        const unsigned char *hash, size_t hash_len, size_t n_legs) {
    if (seq != S->last_seq + 1) return 0;
    if (S->count == 0) {
        if (prev_len != -1) return 0;
    } else if (prev_len != 32 || memcmp(prev, S->last_hash, 32) != 0) {
        return 0;
    }
    if (n_legs < 2 || hash_len != 32) return 0;
    int64_t *sums = S->cur_sums;
    for (size_t i = 0; i < n_legs; i++) {
        Leg *l = &S->legs[i];
        Account *a = &S->accounts[l->account];
        if (l->cur_len != a->cur_len || memcmp(l->cur, a->cur, a->cur_len) != 0) return 0;
        int64_t nb;
        if (__builtin_add_overflow(a->balance, l->amount, &nb)) return 0;
        a->balance = nb;
        if (l->balance_after != nb) return 0;
        if (a->floor_zero) {
            if (a->credit_normal ? nb > 0 : nb < 0) return 0;
        }
        if (__builtin_add_overflow(sums[a->cur_id], l->amount, &sums[a->cur_id])) return 0;
    }
    for (size_t i = 0; i < n_legs; i++) {
        int c = S->accounts[S->legs[i].account].cur_id;
        if (sums[c] != 0) return 0;
    }
    int64_t reverses_seq = 0;
    if (has_reverses) {
        int64_t *o = map_find(&S->originals, reverses_id);
        if (!o || map_find(&S->reversed_by, reverses_id)) return 0;
        if (!map_put(&S->reversed_by, reverses_id, tx_id)) return 0;
        int64_t *meta = &S->orig_meta[*o * 3];
        if ((int64_t)n_legs != meta[2]) return 0;
        if (n_legs > S->pairs_cap) {
            Pair *p = realloc(S->pairs, n_legs * sizeof(Pair));
            if (!p) return 0;
            S->pairs = p;
            S->pairs_cap = n_legs;
        }
        for (size_t i = 0; i < n_legs; i++) {
            if (S->legs[i].amount == INT64_MIN) return 0;
            /* Python compares account ids; map back from the index */
            S->pairs[i].account_id = S->legs[i].account;
            S->pairs[i].amount = -S->legs[i].amount;
        }
        size_t u = sort_unique(S->pairs, n_legs);
        if ((int64_t)u != meta[2]) return 0;
        if (memcmp(S->pairs, &S->orig_pairs[meta[1]], u * sizeof(Pair)) != 0) return 0;
        reverses_seq = meta[0];
    }
    if (map_find(&S->reversed_ids, tx_id)) {
        /* store {(account, amount)} (account as its index: one index per id) */
        if (S->orig_pairs_len + n_legs > S->orig_pairs_cap) {
            size_t cap = S->orig_pairs_cap ? S->orig_pairs_cap : 256;
            while (cap < S->orig_pairs_len + n_legs) cap *= 2;
            Pair *p = realloc(S->orig_pairs, cap * sizeof(Pair));
            if (!p) return 0;
            S->orig_pairs = p;
            S->orig_pairs_cap = cap;
        }
        Pair *dst = &S->orig_pairs[S->orig_pairs_len];
        for (size_t i = 0; i < n_legs; i++) {
            dst[i].account_id = S->legs[i].account;
            dst[i].amount = S->legs[i].amount;
        }
        size_t u = sort_unique(dst, n_legs);
        if (S->orig_meta_len + 3 > S->orig_meta_cap) {
            size_t cap = S->orig_meta_cap ? S->orig_meta_cap * 2 : 192;
            int64_t *p = realloc(S->orig_meta, cap * sizeof(int64_t));
            if (!p) return 0;
            S->orig_meta = p;
            S->orig_meta_cap = cap;
        }
        if (map_find(&S->originals, tx_id)) return 0;  /* a second seal of one transaction */
        if (!map_put(&S->originals, tx_id, (int64_t)(S->orig_meta_len / 3))) return 0;
        S->orig_meta[S->orig_meta_len++] = seq;
        S->orig_meta[S->orig_meta_len++] = (int64_t)S->orig_pairs_len;
        S->orig_meta[S->orig_meta_len++] = (int64_t)u;
        S->orig_pairs_len += u;
    }
    /* canonical v1 bytes, as chain.canonical_bytes_fast builds them */
    if (n_legs > 1) {
        t_accounts = S->accounts;
        if (n_legs <= 8) {
            for (size_t i = 1; i < n_legs; i++) {
                Leg tmp = S->legs[i];
                size_t j = i;
                while (j > 0 && leg_cmp(&S->legs[j - 1], &tmp) > 0) { S->legs[j] = S->legs[j - 1]; j--; }
                S->legs[j] = tmp;
            }
        } else {
            qsort(S->legs, n_legs, sizeof(Leg), leg_cmp);
        }
    }
    Buf *b = &S->canon;
    b->len = 0;
    if (!BUF_LIT(b, "{\"effective_on\":\"") || !buf_put(b, eff, eff_len) || !BUF_LIT(b, "\",\"key\":")
        || !buf_json_string(b, key, key_len) || !BUF_LIT(b, ",\"kind\":") || !buf_json_string(b, kind, kind_len)
        || !BUF_LIT(b, ",\"postings\":[")) return 0;
    for (size_t i = 0; i < n_legs; i++) {
        Leg *l = &S->legs[i];
        Account *a = &S->accounts[l->account];
        if ((i && !BUF_LIT(b, ",")) || !BUF_LIT(b, "[") || !buf_put(b, a->key_json, a->key_json_len)
            || !BUF_LIT(b, ",\"") || !buf_put(b, l->cur, l->cur_len) || !BUF_LIT(b, "\",")
            || !buf_int(b, l->amount) || !BUF_LIT(b, "]")) return 0;
    }
    if (!BUF_LIT(b, "],\"reverses\":")) return 0;
    if (has_reverses ? !buf_int(b, reverses_seq) : !BUF_LIT(b, "null")) return 0;
    if (!BUF_LIT(b, ",\"seq\":") || !buf_int(b, seq) || !BUF_LIT(b, ",\"v\":1}")) return 0;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!EVP_DigestInit_ex(S->md_ctx, S->md, NULL)
        || (prev_len > 0 && !EVP_DigestUpdate(S->md_ctx, prev, (size_t)prev_len))
        || !EVP_DigestUpdate(S->md_ctx, b->p, b->len) || !EVP_DigestFinal_ex(S->md_ctx, digest, &digest_len))
        return 0;
    if (digest_len != 32 || memcmp(digest, hash, 32) != 0) return 0;
    memcpy(S->last_hash, hash, 32);
    S->last_seq = seq;
    S->count++;
    S->posting_count += (int64_t)n_legs;
    return 1;
}

/* Stream transactions, seals and postings merged by transaction id: the rows of checks._walk.
 * checks.py reads "transactions LEFT JOIN seals ORDER BY t.id"; here the transactions (by id) and
 * the seals (by seq) are two plain scans, half the work of an index probe per row. The result is
 * the same rows whenever the ledger is clean: every transaction has exactly one seal and seals in
 * seq order name strictly increasing transactions; anything else (an unsealed transaction, a seal
 * of no transaction, seq order differing from id order) returns 0 and the Python pass decides.
 * 0 = not clean. */
static int walk(State *S) {
    int rc_p = sqlite3_step(S->st_post);
    int rc_s = sqlite3_step(S->st_seal);
    int rc_t;
    sqlite3_stmt *t = S->st_tx, *sl = S->st_seal, *p = S->st_post;
    while ((rc_t = sqlite3_step(t)) == SQLITE_ROW) {
        int64_t tx_id, reverses_id = 0, seq, seal_tx;
        size_t key_len, kind_len, eff_len;
        const unsigned char *key, *kind, *eff;
        if (!col_int(t, 0, &tx_id)) return 0;
        /* this transaction's postings (currency: the account's own copy, so stepping is safe) */
        size_t n_legs = 0;
        while (rc_p == SQLITE_ROW) {
            int64_t ptx, account_id, amount, after;
            size_t cur_len;
            const unsigned char *cur;
            if (!col_int(p, 0, &ptx)) return 0;
            if (ptx != tx_id) {
                if (ptx < tx_id) return 0;  /* out of order (Python: slow pass) */
                break;
            }
            if (!col_int(p, 1, &account_id) || !(cur = col_text(p, 2, &cur_len)) || !col_int(p, 3, &amount)
                || !col_int(p, 4, &after)) return 0;
            int64_t *idx = map_find(&S->account_index, account_id);
            if (!idx) return 0;
            Account *a = &S->accounts[*idx];
            if (cur_len != a->cur_len || memcmp(cur, a->cur, cur_len) != 0) return 0;  /* currency problem */
            if (n_legs == S->legs_cap) {
                size_t cap = S->legs_cap ? S->legs_cap * 2 : 16;
                Leg *q = realloc(S->legs, cap * sizeof(Leg));
                if (!q) return 0;
                S->legs = q;
                S->legs_cap = cap;
            }
            Leg *l = &S->legs[n_legs++];
            l->account = (int)*idx;
            l->amount = amount;
            l->balance_after = after;
            l->cur = a->cur;
            l->cur_len = cur_len;
            rc_p = sqlite3_step(p);
        }
        if (rc_p != SQLITE_ROW && rc_p != SQLITE_DONE) return 0;
        /* its seal: the next one in seq order must name exactly this transaction */
        if (rc_s != SQLITE_ROW || !col_int(sl, 1, &seal_tx) || seal_tx != tx_id) return 0;
        if (!(key = col_text(t, 1, &key_len)) || !(kind = col_text(t, 2, &kind_len))
            || !(eff = col_text(t, 3, &eff_len)) || !col_int(sl, 0, &seq)) return 0;
        sqlite3_value *rev = COL(t, 4), *prev_v = COL(sl, 2), *hash_v = COL(sl, 3);
        int has_rev = sqlite3_value_type(rev) != SQLITE_NULL;
        if (has_rev && !val_int(rev, &reverses_id)) return 0;
        int prev_type = sqlite3_value_type(prev_v);
        const unsigned char *prev = NULL;
        int prev_len = -1;
        if (prev_type == SQLITE_BLOB) {
            prev = sqlite3_value_blob(prev_v);
            prev_len = sqlite3_value_bytes(prev_v);
        } else if (prev_type != SQLITE_NULL) {
            return 0;
        }
        if (sqlite3_value_type(hash_v) != SQLITE_BLOB) return 0;
        const unsigned char *hash = sqlite3_value_blob(hash_v);
        size_t hash_len = (size_t)sqlite3_value_bytes(hash_v);
        if (!check_sealed(S, tx_id, key, key_len, kind, kind_len, eff, eff_len, has_rev, reverses_id, seq,
                          prev, prev_len, hash, hash_len, n_legs)) return 0;
        rc_s = sqlite3_step(sl);
    }
    /* leftovers: postings or seals of no transaction (or out of order) */
    return rc_t == SQLITE_DONE && rc_p == SQLITE_DONE && rc_s == SQLITE_DONE;
}

static void state_free(State *S) {
    sqlite3_finalize(S->st_acc); sqlite3_finalize(S->st_rev);
    sqlite3_finalize(S->st_tx); sqlite3_finalize(S->st_seal); sqlite3_finalize(S->st_post);
    if (S->db) { sqlite3_exec(S->db, "COMMIT", NULL, NULL, NULL); sqlite3_close(S->db); }
    for (size_t i = 0; i < S->n_accounts; i++) {
        free(S->accounts[i].key); free(S->accounts[i].key_json); free(S->accounts[i].cur);
    }
    free(S->accounts);
    map_free(&S->account_index); map_free(&S->reversed_ids); map_free(&S->originals); map_free(&S->reversed_by);
    free(S->orig_meta); free(S->orig_pairs); free(S->legs); free(S->pairs); free(S->cur_sums);
    free(S->canon.p);
    if (S->md_ctx) EVP_MD_CTX_free(S->md_ctx);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    if (S->md_owned) EVP_MD_free(S->md_owned);
#endif
}

static int run(State *S, const char *path, const char *sqls[5]) {
    if (sqlite3_open_v2(path, &S->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) return 0;
    sqlite3_busy_timeout(S->db, 15000);
    /* read pages through a memory map instead of read() copies (the whole file is scanned) */
    sqlite3_exec(S->db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
    /* one read transaction: the five statements see one snapshot */
    if (sqlite3_exec(S->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return 0;
    sqlite3_stmt **st[5] = {&S->st_acc, &S->st_rev, &S->st_tx, &S->st_seal, &S->st_post};
    static const int columns[5] = {5, 1, 5, 4, 5};
    for (int i = 0; i < 5; i++)
        if (sqlite3_prepare_v2(S->db, sqls[i], -1, st[i], NULL) != SQLITE_OK
            || sqlite3_column_count(*st[i]) != columns[i]) return 0;
    S->md_ctx = EVP_MD_CTX_new();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    /* fetched once: EVP_sha256() would be looked up again on every EVP_DigestInit_ex */
    S->md = S->md_owned = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
    S->md = EVP_sha256();
#endif
    if (!S->md_ctx || !S->md) return 0;
    if (!load_accounts(S) || !load_reversed(S)) return 0;
    if (!map_init(&S->originals, S->reversed_ids.count) || !map_init(&S->reversed_by, S->reversed_ids.count))
        return 0;
    return walk(S);
}

static PyObject *native_verify(PyObject *self, PyObject *args) {
    const char *path, *sqls[5];
    if (!PyArg_ParseTuple(args, "ssssss:verify", &path, &sqls[0], &sqls[1], &sqls[2], &sqls[3], &sqls[4]))
        return NULL;
    State S;
    memset(&S, 0, sizeof S);
    int clean;
    Py_BEGIN_ALLOW_THREADS
    clean = run(&S, path, sqls);
    state_free(&S);
    Py_END_ALLOW_THREADS
    if (!clean) Py_RETURN_NONE;
    return Py_BuildValue("(LLLy#)", (long long)S.count, (long long)S.posting_count, (long long)S.last_seq,
                         (const char *)S.last_hash, (Py_ssize_t)(S.count ? 32 : 0));
}

static PyMethodDef methods[] = {
    {"verify", native_verify, METH_VARARGS,
     "verify(path, sql_accounts, sql_reversed, sql_transactions, sql_seals, sql_postings) -> (transactions, "
     "postings, "
     "head_seq, head_hash) if every ledger invariant holds, else None (run the Python pass)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_verify",
                                    "Compiled confirm-clean pass of fundcircle.ledger.checks.verify.", -1, methods};

PyMODINIT_FUNC PyInit__native_verify(void) { return PyModule_Create(&module); }
