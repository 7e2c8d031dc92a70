/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Varlink is what meshd reads from any local user on its socket (docs/api.md).
 * The input is a byte stream from a client; the first byte chooses how it
 * is cut into reads. Every message that comes off the buffer goes through
 * the call and reply checks, and what passes is formatted again and must
 * read back the same. However the stream is cut, the messages that come
 * off must be the same as when it arrives in one read. */

#include "fuzz.h"
#include "varlink.h"

typedef struct Popped {
        int r;
        char *text; /* the message printed again, when r == 1 */
} Popped;

typedef struct PoppedList {
        Popped *items;
        size_t n, allocated;
} PoppedList;

static void popped_list_done(PoppedList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i].text);
        free(l->items);
        *l = (PoppedList) {};
}

static char *print_json(const cJSON *j) {
        char *s = cJSON_PrintUnformatted(j);
        fuzz_check(s);
        return s;
}

/* One message through varlink_format_*() and back through the buffer. */
static cJSON *reread(const char *text, size_t len) {
        VarlinkBuffer b = {};
        cJSON *j = NULL;

        fuzz_check(varlink_buffer_append(&b, text, len) == 0);
        fuzz_check(varlink_buffer_pop(&b, &j) == 1);
        fuzz_check(b.size == 0);
        varlink_buffer_done(&b);
        return j;
}

static void check_call(const cJSON *msg) {
        _cleanup_free_ char *text = NULL, *before = NULL, *after = NULL;
        _cleanup_json_ cJSON *again = NULL;
        const char *method = NULL, *method2 = NULL;
        const cJSON *parameters = NULL, *parameters2 = NULL;
        size_t len;
        int r;

        r = varlink_parse_call(msg, &method, &parameters);
        fuzz_check(r == 0 || r == -EBADMSG || r == -EOPNOTSUPP);
        if (r < 0)
                return;

        fuzz_check(method && cJSON_IsObject(parameters));
        fuzz_check(varlink_format_call(method, parameters, &text, &len) == 0);
        fuzz_check(len == strlen(text) + 1);
        again = reread(text, len);
        fuzz_check(varlink_parse_call(again, &method2, &parameters2) == 0);
        fuzz_check(streq(method, method2));
        before = print_json(parameters);
        after = print_json(parameters2);
        fuzz_check(streq(before, after));
}

static void check_reply(const cJSON *msg) {
        _cleanup_free_ char *text = NULL, *before = NULL, *after = NULL;
        _cleanup_json_ cJSON *again = NULL;
        const char *error = NULL, *error2 = NULL;
        const cJSON *parameters = NULL, *parameters2 = NULL;
        size_t len;
        int r;

        r = varlink_parse_reply(msg, &error, &parameters);
        fuzz_check(r == 0 || r == -EBADMSG);
        if (r < 0)
                return;

        fuzz_check(cJSON_IsObject(parameters));
        fuzz_check(varlink_format_reply(parameters, error, &text, &len) == 0);
        fuzz_check(len == strlen(text) + 1);
        again = reread(text, len);
        fuzz_check(varlink_parse_reply(again, &error2, &parameters2) == 0);
        fuzz_check(streq_ptr(error, error2));
        before = print_json(parameters);
        after = print_json(parameters2);
        fuzz_check(streq(before, after));
}

/* Takes every complete message off b; appends to l when record, else
 * compares with l from *next on. */
static void pop_all(VarlinkBuffer *b, PoppedList *l, bool record, size_t *next) {
        for (;;) {
                _cleanup_json_ cJSON *j = NULL;
                _cleanup_free_ char *text = NULL;
                size_t before = b->size;
                int r;

                r = varlink_buffer_pop(b, &j);
                fuzz_check(r >= 0 || r == -EBADMSG);
                if (r == 0) {
                        fuzz_check(b->size == before && (before == 0 || !memchr(b->data, 0, before)));
                        return;
                }
                /* Good or bad, the message and its NUL are gone. */
                fuzz_check(b->size < before);
                if (r == 1) {
                        fuzz_check(cJSON_IsObject(j));
                        check_call(j);
                        check_reply(j);
                        text = print_json(j);
                }

                if (record) {
                        if (l->n == l->allocated) {
                                size_t n = MAX(l->allocated * 2, (size_t) 8);
                                Popped *p = realloc(l->items, n * sizeof(Popped));
                                fuzz_check(p);
                                l->items = p;
                                l->allocated = n;
                        }
                        l->items[l->n++] = (Popped) { .r = r, .text = TAKE_PTR(text) };
                } else {
                        fuzz_check(*next < l->n);
                        fuzz_check(l->items[*next].r == r);
                        fuzz_check(streq_ptr(l->items[*next].text, text));
                        (*next)++;
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(popped_list_done) PoppedList whole = {};
        VarlinkBuffer b = {};
        uint32_t state;
        size_t next = 0;

        if (size < 1)
                return 0;
        fuzz_quiet_logs();
        state = data[0];
        data++;
        size--;

        /* One read of everything: what the messages are. */
        fuzz_check(varlink_buffer_append(&b, data, size) == 0);
        pop_all(&b, &whole, true, NULL);
        varlink_buffer_done(&b);

        /* Reads of 1 to 64 bytes, in an order the first byte picks. */
        for (size_t offset = 0; offset < size;) {
                size_t n;

                state = state * 1103515245U + 12345U;
                n = MIN(size - offset, (size_t) (state >> 16) % 64 + 1);
                fuzz_check(varlink_buffer_append(&b, data + offset, n) == 0);
                offset += n;
                pop_all(&b, &whole, false, &next);
        }
        fuzz_check(next == whole.n);
        varlink_buffer_done(&b);
        return 0;
}
